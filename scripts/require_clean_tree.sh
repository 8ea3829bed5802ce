#!/usr/bin/env bash
# Sourced by every script that regenerates committed numbers: they must be tied to a commit.
# Refuses when any file outside results/ differs from HEAD (tracked edits, or untracked files
# that are not ignored), so each run's config records a plain commit as its git_commit
# (bench/run/environment.py git_commit; "+dirty.<hash>" only ever comes from runs made by hand).
# BENCH_ALLOW_DIRTY=1 skips the check for a trial run whose numbers will not be committed.
if [ "${BENCH_ALLOW_DIRTY:-0}" != 1 ]; then
  changed=$(git status --porcelain -- . ':(exclude)results' | head -n 5)
  if [ -n "$changed" ]; then
    echo "error: the tree has uncommitted changes outside results/ (e.g. ${changed//$'\n'/, }); commit them" \
      "first so the regenerated numbers are tied to a commit (or set BENCH_ALLOW_DIRTY=1 for a trial run)" >&2
    exit 2
  fi
fi

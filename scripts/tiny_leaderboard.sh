#!/usr/bin/env bash
# The committed tiny leaderboard (results/tiny): the runs of results/tiny/suite.toml (what they are:
# its `about`; `bench reproduce results/tiny` re-runs them and compares), then the table and the plot.
# About an hour on 2 CPU cores.
set -euo pipefail
source "$(dirname "$0")/require_clean_tree.sh"
bench=${BENCH:-bench}
out=results/tiny
"$bench" run --config "$out/suite.toml"
"$bench" leaderboard "$out/runs" --format md --out "$out/leaderboard.md"
"$bench" leaderboard "$out/runs" --format csv --out "$out/leaderboard.csv"
"$bench" plot "$out/runs" --out "$out/robust_vs_eps.png"

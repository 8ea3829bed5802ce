#!/usr/bin/env bash
# Everything the project and its full test suite need on a fresh machine (Debian, Python 3.10+):
# the venv with the [dev] extra, OpenFlamingo and RobustBench without their pins, and Debian's
# headless Chromium with its driver for the website's tests. README's first command and .ci/run
# both call it, so the README's test command skips nothing. Idempotent: a second call only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet -e ".[dev]"
# OpenFlamingo's only release pins torch==2.0.1 in its metadata; its code runs on current torch, so
# it is installed without its dependencies (its own needs, einops and einops-exts, come with it).
.venv/bin/pip install --quiet --no-deps open_flamingo==2.0.1 einops einops-exts
# RobustBench's package, for the test that our copy of its ImageNet sample list (tasks/data/) is still
# its file and is read as its loader reads it; its own pins (timm, gdown, geotorch) are not needed.
.venv/bin/pip install --quiet --no-deps robustbench==1.1.1
# ... and Debian's WordNet 3.0 database, against which a test checks the tiny world's verb lemmas
# (tiny-okvqa's stemming data).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || \
   [ ! -f /usr/share/wordnet/index.verb ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if ! (export DEBIAN_FRONTEND=noninteractive; $sudo apt-get update -qq && \
        $sudo apt-get install -y -qq chromium chromium-driver wordnet-base) >/dev/null; then
    echo "warning: could not install Debian's chromium, chromium-driver and wordnet-base (needs root); the" \
         "website's tests (tests/test_site*.py) and the WordNet lemma test will be skipped" >&2
  fi
fi

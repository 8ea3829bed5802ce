#!/usr/bin/env bash
# The committed gradient-masking report of the tiny zoo (results/tiny/audit.md and .json):
# bench audit on the classification runs of results/tiny, first 100 samples of each.
set -euo pipefail
bench=${BENCH:-bench}
"$bench" audit results/tiny/runs --suite tiny --n-samples 100 --out results/tiny/audit.md

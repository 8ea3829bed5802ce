#!/usr/bin/env bash
# The committed website of the tiny leaderboard (results/tiny/site) and its screenshot in the
# README (docs/leaderboard-site.png, taken by headless Chromium when it is installed).
set -euo pipefail
source "$(dirname "$0")/require_clean_tree.sh"
bench=${BENCH:-bench}
rm -rf results/tiny/site
# the audit's warnings flag encoders on the index (bench site reads only the reports it is given)
"$bench" site results/tiny/runs --out results/tiny/site --audit results/tiny/audit.json
if command -v chromium >/dev/null; then
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,520 \
    --screenshot="$PWD/docs/leaderboard-site.png" "file://$PWD/results/tiny/site/index.html" 2>/dev/null
  echo "wrote docs/leaderboard-site.png"
fi

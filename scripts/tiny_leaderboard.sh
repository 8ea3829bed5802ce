#!/usr/bin/env bash
# The committed tiny leaderboard (results/tiny): the whole tiny zoo on every tiny
# classification dataset, clean and under aa (APGD-CE + APGD-T) at 2/255 and 4/255.
# The settings are those of results/tiny/reproduce.json, which `bench reproduce` re-runs.
set -euo pipefail
bench=${BENCH:-bench}
out=results/tiny
"$bench" run --suite tiny --encoder clip,tecoa-2,tecoa-4,fare-2,fare-4,sim-clip-2,sim-clip-4 \
  --task tiny-shape,tiny-colour,tiny-count --attack aa --eps 0,2/255,4/255 \
  --n-samples 100 --steps 100 --seed 0 --batch-size 32 --out "$out/runs"
"$bench" leaderboard "$out/runs" --format md --out "$out/leaderboard.md"
"$bench" leaderboard "$out/runs" --format csv --out "$out/leaderboard.csv"
"$bench" plot "$out/runs" --out "$out/robust_vs_eps.png"

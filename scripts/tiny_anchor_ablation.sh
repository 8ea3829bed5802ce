#!/usr/bin/env bash
# Sim-CLIP's anchor on the tiny suite: the paper's shared siamese encoder against the public
# code's frozen original (the zoo's sim-clip-4), same recipe, same evaluation as results/tiny.
# sim-clip-4's runs are results/tiny's (this command would give the same records), so only the
# shared-anchor model is run here; the table reads both folders.
set -euo pipefail
source "$(dirname "$0")/require_clean_tree.sh"
bench=${BENCH:-bench}
shared=runs/tiny-zoo/sim-clip-4-shared
"$bench" train --suite tiny --method sim-clip --anchor shared --base clip --eps 4/255 --steps 250 --batch-size 64 \
  --lr 1e-4 --wd 1e-4 --warmup 25 --inner-steps 10 --inner-step-size 1/255 --save-dtype float16 --seed 0 --out "$shared"
"$bench" run --suite tiny --encoder "$shared/vision.safetensors" --task tiny-shape,tiny-colour,tiny-count \
  --attack aa --eps 0,2/255,4/255 --n-samples 100 --steps 100 --seed 0 --batch-size 32 --out results/tiny-anchor/runs
"$bench" leaderboard results/tiny/runs results/tiny-anchor/runs --encoders "sim-clip-4,$shared/vision.safetensors" \
  --tasks tiny-shape,tiny-colour,tiny-count --ci --format md --out results/tiny-anchor/leaderboard.md

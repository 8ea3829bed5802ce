#!/usr/bin/env bash
# Retrain the tiny robust zoo (TeCoA, FARE, Sim-CLIP at eps 2/255 and 4/255) from the shipped
# tiny CLIP and copy the weights and cards into bench/tiny/weights. About 20 minutes on 2 CPU
# cores; the result is bit-identical on the same machine kind (see each card's "command").
set -euo pipefail
source "$(dirname "$0")/require_clean_tree.sh"
out=${1:-runs/tiny-zoo}
bench=${BENCH:-bench}
for method in tecoa fare sim-clip; do
  for eps in 2 4; do
    name="$method-$eps"
    "$bench" train --suite tiny --method "$method" --base clip --eps "$eps/255" --steps 250 --batch-size 64 \
      --lr 1e-4 --wd 1e-4 --warmup 25 --inner-steps 10 --inner-step-size 1/255 --save-dtype float16 \
      --seed 0 --out "$out/$name"
    cp "$out/$name/vision.safetensors" "bench/tiny/weights/$name.safetensors"
    cp "$out/$name/card.json" "bench/tiny/weights/$name.json"
  done
done

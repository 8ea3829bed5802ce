#!/usr/bin/env bash
# Retrain tiny-llava (frozen tiny clip -> MLP projector -> 2-layer Llama) on the training split of
# every tiny VLM task and copy it into bench/tiny/weights. About 13 minutes on 2 shared CPU cores;
# bit-identical on the same machine kind (see the card's "command").
set -euo pipefail
source "$(dirname "$0")/require_clean_tree.sh"
out=${1:-runs/tiny-llava}
bench=${BENCH:-bench}
"$bench" train --method vlm --out "$out"
cp "$out/tiny-llava.safetensors" bench/tiny/weights/tiny-llava.safetensors
cp "$out/tiny-llava.json" bench/tiny/weights/tiny-llava.json

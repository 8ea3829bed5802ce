#!/usr/bin/env bash
# The committed tiny leaderboard (results/tiny): the whole tiny zoo on every tiny
# classification dataset (tiny-background is held out from every tiny model's training), clean
# and under aa (APGD-CE + APGD-T) at 2/255 and 4/255, and on image-text retrieval; then the same
# encoders inside tiny-llava on captioning, VQA, TextVQA, VizWiz, OK-VQA, POPE and ScienceQA under
# the attack ensemble on the LM loss. Retrieval and the tiny-llava tasks run clean and at 4/255
# (the eps of the Sim-CLIP table; about an hour on 2 CPU cores). The settings are those of
# results/tiny/reproduce.json, which `bench reproduce` re-runs. Pass "vlm" to run only the
# tiny-llava part.
set -euo pipefail
source "$(dirname "$0")/require_clean_tree.sh"
bench=${BENCH:-bench}
out=results/tiny
encoders=clip,tecoa-2,tecoa-4,fare-2,fare-4,sim-clip-2,sim-clip-4
if [ "${1:-all}" != "vlm" ]; then
  "$bench" run --suite tiny --encoder "$encoders" --task tiny-shape,tiny-colour,tiny-count,tiny-background --attack aa \
    --eps 0,2/255,4/255 --n-samples 100 --steps 100 --seed 0 --batch-size 32 --out "$out/runs"
  "$bench" run --suite tiny --encoder "$encoders" --task tiny-retrieval --attack aa \
    --eps 0,4/255 --n-samples 100 --steps 100 --seed 0 --batch-size 32 --out "$out/runs"
fi
"$bench" run --suite tiny --encoder "$encoders" --vlm tiny-llava \
  --task tiny-captions,tiny-vqa,tiny-textvqa,tiny-vizwiz,tiny-okvqa,tiny-pope,tiny-scienceqa \
  --attack aa --eps 0,4/255 --n-samples 50 --steps 100 --seed 0 --batch-size 25 --out "$out/runs"
"$bench" leaderboard "$out/runs" --format md --out "$out/leaderboard.md"
"$bench" leaderboard "$out/runs" --format csv --out "$out/leaderboard.csv"
"$bench" plot "$out/runs" --out "$out/robust_vs_eps.png"

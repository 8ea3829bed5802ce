#!/usr/bin/env bash
# The committed gradient-masking reports: bench audit on the zero-shot runs of results/tiny
# (results/tiny/audit.md and .json) and on the collapsed shared-anchor Sim-CLIP of
# results/tiny-anchor (results/tiny-anchor/audit.md; its checkpoint comes from
# scripts/tiny_anchor_ablation.sh), first 100 samples of each run.
set -euo pipefail
source "$(dirname "$0")/require_clean_tree.sh"
bench=${BENCH:-bench}
"$bench" audit results/tiny/runs --suite tiny --n-samples 100 --out results/tiny/audit.md
shared=runs/tiny-zoo/sim-clip-4-shared/vision.safetensors
"$bench" audit results/tiny-anchor/runs --suite tiny --n-samples 100 --encoders "$shared" --out results/tiny-anchor/audit.md

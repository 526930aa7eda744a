#!/usr/bin/env bash
# Evaluate the pretrained-encoder runs of scripts/train_pretrained.sh, the shipped default and
# the previous eccv16 default on the held-out sets (weights/MODEL_CARD.md's tables).
#
# Usage: scripts/eval_pretrained.sh [RUNS_DIR] [MODEL...]   (default: runs-pre/, every run there)
#
# 1. bsds500/test: AuC, rebalanced AuC, PSNR, SSIM, colourfulness (256 px protocol), gray and
#    random baselines, every model.
# 2. the interpretability split: the held-out fifth of imagenet-sample (colorcli.labels: every
#    fifth class by sorted synset, 200 photos, never trained on), top-1/top-5 of an ImageNet
#    EfficientNet-Lite0, with AuC and colourfulness.
# Reports go to RUNS_DIR/eval-bsds500/ and RUNS_DIR/eval-interp/ (results.json, results.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs-pre}
shift || true
DATA=../shared/data
MODELS=()
for m in "$@"; do MODELS+=(--model "$m"); done
if [ ${#MODELS[@]} -eq 0 ]; then
  for run in "$RUNS"/*/model.pt; do MODELS+=(--model "$run"); done
fi
HELD="$RUNS/imagenet-heldout"
if [ ! -d "$HELD" ]; then
  mkdir -p "$HELD"
  python - "$DATA/imagenet-sample" "$HELD" <<'PY'
import sys
from pathlib import Path

from colorcli.imageio import find_images
from colorcli.labels import class_index, split_files, synset_of

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
files = find_images([src])
_, held = split_files(files, class_index(s for s in map(synset_of, files) if s))
for f in held:
    (dst / f.name).symlink_to(f.resolve())
print(f"{len(held)} held-out photos linked in {dst}")
PY
fi
colorcli eval "$DATA/bsds500/test" "${MODELS[@]}" --metric all --out "$RUNS/eval-bsds500" \
  --overwrite --device cpu
colorcli eval "$HELD" "${MODELS[@]}" --metric interpretability --metric auc \
  --metric colorfulness --out "$RUNS/eval-interp" --overwrite --device cpu

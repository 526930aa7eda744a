#!/usr/bin/env bash
# Reproduce the pretrained-encoder default (effnet-unet) and its equal-compute comparison
# (weights/MODEL_CARD.md) on a CPU.
#
# Usage: scripts/train_pretrained.sh [main|compare|ship|all] [RUNS_DIR]   (default: all runs-pre/)
#
# Data: scripts/prepare_small_data.py --mix pretrained writes data-pre/ (short side 256):
#   imagenet-sample without its held-out fifth (colorcli.labels: every fifth class), bsds500
#   train + val, extra/scenes, extra/people and every 4th photo of extra/clothing (2,703 photos).
# Every run: effnet-unet (EfficientNet-Lite0 encoder, folded 1-channel stem), batch 16, 160 px
#   crops, Adam (0.9, 0.99) lr 1e-3 (encoder x 0.2), weight decay 1e-4, lambda 0.75, one torch thread, the
#   published learning-rate shape (drops at 200/450 and 375/450 of --steps).
# main:    the default: pretrained, classification (soft targets, rebalanced), MAIN_STEPS steps.
# compare: COMPARE_STEPS steps each, equal compute, one after another:
#   pre-class   the main recipe                     scratch-class  the same from random init
#   pre-l1      L1 regression on the pretrained encoder
#   pre-class-old  the main recipe on the eccv16 default's sets only (no extra/ photos)
# The two stages run side by side (each takes one core). Rerunning resumes unfinished runs.
# ship:    scripts/ship_default.py picks the annealed-mean temperature of a run (SHIP_RUN, default
#   main) on its own validation split (the best rebalanced AuC whose plain AuC is within 1 point
#   of gray's), stores it in float16 with network size 256 as
#   weights/colorcli-default.safetensors, exports its ONNX twin
#   (colorcli export-onnx), then scripts/eval_pretrained.sh evaluates every run on bsds500/test
#   and on the interpretability split.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=${1:-all}
RUNS=${2:-runs-pre}
MAIN_STEPS=${MAIN_STEPS:-4000}
COMPARE_STEPS=${COMPARE_STEPS:-800}
export OMP_NUM_THREADS=1
[ -d data-pre ] || python scripts/prepare_small_data.py --mix pretrained --out data-pre
ALL=(data-pre/imagenet-sample data-pre/bsds500/train data-pre/bsds500/val data-pre/extra/scenes
     data-pre/extra/people data-pre/extra/clothing)
OLD=(data-pre/imagenet-sample data-pre/bsds500/train data-pre/bsds500/val)
COMMON=(--arch effnet-unet --batch-size 16 --crop 160 --lr 1e-3 --betas 0.9,0.99 --lambda 0.75
        --val-split 0.05 --val-images 64 --log-every 25 --workers 1 --seed 0 --device cpu)
mkdir -p "$RUNS"
run() {  # name, steps, extra options (data folders first)...
  local name=$1 steps=$2; shift 2
  if [ -f "$RUNS/$name/resume.pt" ]; then
    colorcli train --resume "$RUNS/$name" --steps "$steps" >> "$RUNS/$name.log" 2>&1
  else
    colorcli train "$@" "${COMMON[@]}" --steps "$steps" --out "$RUNS/$name" --overwrite \
      > "$RUNS/$name.log" 2>&1
  fi
}
main() {
  run main "$MAIN_STEPS" "${ALL[@]}" --save-every 250 --val-every 500 --keep-checkpoints
}
compare() {
  local every=(--save-every 200 --val-every "$COMPARE_STEPS")
  run pre-class "$COMPARE_STEPS" "${ALL[@]}" "${every[@]}"
  run scratch-class "$COMPARE_STEPS" "${ALL[@]}" "${every[@]}" --no-pretrained
  run pre-l1 "$COMPARE_STEPS" "${ALL[@]}" "${every[@]}" --objective regression --loss l1
  run pre-class-old "$COMPARE_STEPS" "${OLD[@]}" "${every[@]}"
}
ship() {
  python scripts/ship_default.py "$RUNS/${SHIP_RUN:-main}" --out weights/colorcli-default.safetensors \
    --temperatures 0.38 0.5 0.7 1.0 --max-auc-drop 1 --input-size 256 | tee "$RUNS/ship.md"
  colorcli export-onnx weights/colorcli-default.safetensors weights/colorcli-default.onnx
  scripts/eval_pretrained.sh "$RUNS" weights/colorcli-default.safetensors "$RUNS"/*/model.pt
}
case "$STAGE" in
  main) main ;;
  compare) compare ;;
  ship) ship ;;
  all) main & compare; wait; ship ;;
  *) echo "usage: $0 [main|compare|ship|all] [RUNS_DIR]" >&2; exit 2 ;;
esac

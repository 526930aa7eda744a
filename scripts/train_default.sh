#!/usr/bin/env bash
# Reproduce the shipped default model and the objective comparison of weights/MODEL_CARD.md.
#
# Trains three colorizers of equal compute (same eccv16 trunk at width 0.25, same steps, batch,
# crop, learning rate and data order) on imagenet-sample + bsds500/train + bsds500/val only:
#   full     classification, soft targets, class rebalancing (lambda 0.5)   (Zhang et al. "full")
#   class    classification, soft targets, no rebalancing
#   l1       regression with an L1 loss on the same trunk
# then evaluates them against the gray/random baselines on the held-out bsds500/test.
#
# Usage: scripts/train_default.sh [RUNS_DIR]   (default: runs/; CPU, about 70 min on 2 cores)
# The three runs go in parallel, one torch thread each. STEPS=... overrides the step count.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-runs}
STEPS=${STEPS:-1000}
DATA=../shared/data
COMMON=(
  "$DATA/imagenet-sample" "$DATA/bsds500/train" "$DATA/bsds500/val"
  --width 0.25 --batch-size 16 --crop 176 --steps "$STEPS" --lr 1e-3
  --val-split 0.05 --val-images 64 --val-every 250 --save-every 250 --log-every 25
  --workers 1 --seed 0 --device cpu
)
export OMP_NUM_THREADS=1
run() {  # name, extra options...
  local name=$1; shift
  if [ -f "$RUNS/$name/resume.pt" ]; then
    colorcli train --resume "$RUNS/$name" --steps "$STEPS" > "$RUNS/$name.log" 2>&1
  else
    colorcli train "${COMMON[@]}" --out "$RUNS/$name" "$@" > "$RUNS/$name.log" 2>&1
  fi
}
mkdir -p "$RUNS"
run full --objective classification &
run class --objective classification --no-rebalance &
run l1 --objective regression --arch eccv16 --loss l1 &
wait
colorcli eval "$DATA/bsds500/test" --metric all --out "$RUNS/eval-bsds500-test" \
  --model "$RUNS/full/model.pt" --model "$RUNS/class/model.pt" --model "$RUNS/l1/model.pt"

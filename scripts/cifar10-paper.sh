#!/usr/bin/env bash
# The CIFAR-10 protocol of the ARD papers (RSLAD, AdaAD, MMARD), for a GPU: a ResNet-18 student
# distilled from a TRADES WideResNet-34-10 teacher, ε = 8/255, PGD step 2/255, 10 inner steps, SGD
# 0.1 with momentum 0.9 and the method's weight decay, batch 128, 300 epochs with the rate divided by
# 10 at epochs 215, 260 and 285 (RSLAD's schedule, which MMARD follows), random crop and flip; then
# clean, PGD-20 and AutoAttack (standard version, seed 0, batches of 250) on the 10,000 test images.
# The run folder keeps a checkpoint per epoch: run the script again to resume a stopped run.
# README.md ("The CIFAR-10 protocol") gives its cost.
#
# Usage: scripts/cifar10-paper.sh TEACHER.safetensors CIFAR_DIR [METHOD=mmard] [SEED=0]
#   TEACHER: TRADES' WRN-34-10 (github.com/yaodongyu/TRADES) as a safetensors state_dict (its unused
#            sub_block1.* tensors are reported and ignored); CIFAR_DIR: CIFAR-10 in any form mmard
#            reads (the Python or binary version, unpacked or its .tar.gz).
#   DEVICE=cuda (default) or cpu; MMARD=path to the binary (default: a --features cuda build).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,17p' "$0"; exit 2; }
TEACHER=$1; DATA=$2; METHOD=${3:-mmard}; SEED=${4:-0}
DEVICE=${DEVICE:-cuda}
if [ -z "${MMARD:-}" ]; then
  features=(); [ "$DEVICE" = cpu ] || features=(--features cuda)
  cargo build --release -q "${features[@]}"
  MMARD=target/release/mmard
fi
OUT=runs/cifar10-paper/$METHOD-s$SEED
mkdir -p "$OUT"
resume=(); [ -f "$OUT/checkpoint.safetensors" ] && resume=(--resume)
"$MMARD" --device "$DEVICE" distill --method "$METHOD" --teacher "$TEACHER" --student resnet18 \
  --dataset cifar10 --data-dir "$DATA" --epochs 300 --batch-size 128 --lr 0.1 --momentum 0.9 \
  --schedule step --milestones 215,260,285 --gamma 0.1 --eps 0.031372549 --step 0.0078431373 --steps 10 \
  --augment true --eval-limit 1000 --seed "$SEED" --out "$OUT" "${resume[@]}"
"$MMARD" --device "$DEVICE" eval --weights "$OUT/model.safetensors" --dataset cifar10 --data-dir "$DATA" \
  --eps 0.031372549 --attacks clean,pgd20,aa --aa-batch 250 --seed 0 --json "$OUT/eval.json"

#!/usr/bin/env bash
# Data parallelism on one machine, beside PyTorch: the same MMARD step (SmallCNN 16/32/64 student,
# SmallCNN 32/64/128 teacher, Fashion-MNIST-sized input, batch 128, K = 10) as 1 process × 2
# threads and as 2 ranks × 1 thread sharing the batch: `mmard bench step` alone and under
# `mpirun -np 2`, bench/pytorch_step.py alone and under `torchrun --nproc_per_node 2` (gloo).
# Alternated for ROUNDS rounds; prints each run's median step time (BENCHMARKS.md, eleventh
# session). Needs a `--features mpi` build (cargo build --release --features mpi) and PYTHON with
# torch.
set -euo pipefail
cd "$(dirname "$0")/.."
M=${MMARD:-target/release/mmard}
PY=${PYTHON:-python3}
STEP=(--student small_cnn --student-config '{"widths":[16,32,64]}' --teacher small_cnn
      --teacher-config '{"widths":[32,64,128]}' --method mmard --batch 128 --pgd-steps 10 --input 1x28x28 --json)
total() { "$PY" -c "import json,sys; print(round(json.loads(sys.stdin.read().strip().splitlines()[-1])['total'], 3))"; }
for r in $(seq "${ROUNDS:-3}"); do
  a=$("$M" --threads 2 bench step "${STEP[@]}" | total)
  b=$(mpirun --allow-run-as-root -np 2 "$M" --threads 1 bench step "${STEP[@]}" | total)
  c=$("$PY" bench/pytorch_step.py "${STEP[@]}" --threads 2 --mmard "$M" | total)
  d=$("$(dirname "$PY")/torchrun" --nproc_per_node 2 bench/pytorch_step.py "${STEP[@]}" --threads 1 --mmard "$M" 2>/dev/null | total)
  echo "round $r (s per step): mmard 1x2 $a, mmard 2x1 $b, pytorch 1x2 $c, pytorch 2x1 $d"
done

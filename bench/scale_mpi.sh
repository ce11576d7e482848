#!/usr/bin/env bash
# Data parallelism on one machine: 1 process × 2 threads against `mpirun -np 2` × 1 thread, the
# same MMARD SmallCNN run (2,048 Fashion-MNIST images, batches of 128), alternated for ROUNDS
# rounds; prints each run's images/s (BENCHMARKS.md, eleventh session). Needs a `--features mpi`
# build: cargo build --release --features mpi
set -euo pipefail
cd "$(dirname "$0")/.."
M=${MMARD:-target/release/mmard}
OUT=$(mktemp -d)
A=(distill --method mmard --teacher assets/teacher_fmnist_small_cnn_pgd_at.safetensors --student small_cnn
   --dataset fashion-mnist --limit 2048 --batch-size 128 --epochs 1 --eval-limit 0)
rate() { python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['images_per_s'])" "$1/metrics.jsonl"; }
for r in $(seq "${ROUNDS:-3}"); do
  "$M" --threads 2 "${A[@]}" --out "$OUT/one-$r" > /dev/null 2>&1
  mpirun --allow-run-as-root -np 2 "$M" --threads 1 "${A[@]}" --out "$OUT/two-$r" > /dev/null 2>&1
  echo "round $r: 1 process x 2 threads $(rate "$OUT/one-$r") img/s, 2 ranks x 1 thread $(rate "$OUT/two-$r") img/s"
done
rm -rf "$OUT"

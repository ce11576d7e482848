#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs on a GPU machine: the release binary, the CUDA test binary
# and the criterion op benches, with --features cuda, copied to gpu-bin/ (git-ignored). Needs the pinned nvcc (README.md,
# "CUDA"); NVCC may point at it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --features cuda
test_bin=$(cargo test --release --features cuda --test cuda_parity --no-run --message-format=json 2>/dev/null \
    | python3 -c "import json,sys; print([m['executable'] for m in map(json.loads, sys.stdin) if m.get('executable') and m['target']['name'] == 'cuda_parity'][0])")
bench_bin=$(cargo bench --features cuda --bench ops --no-run --message-format=json 2>/dev/null \
    | python3 -c "import json,sys; print([m['executable'] for m in map(json.loads, sys.stdin) if m.get('executable') and m['target']['name'] == 'ops'][0])")
mkdir -p gpu-bin
cp target/release/mmard gpu-bin/mmard
cp "$test_bin" gpu-bin/cuda_parity
cp "$bench_bin" gpu-bin/ops_bench
ls -l gpu-bin

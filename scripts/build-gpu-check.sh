#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs on a GPU machine: the release binary, the CUDA test binary
# and the criterion op benches, with --features cuda, stripped of symbols and debug info and packed
# as gpu-bin/bundle.tar.xz (git-ignored), with gpu-bin/bundle.txt saying what is in it. Only 64 MiB
# in all reaches the GPU machine, tree included: the script fails when the bundle and the tracked
# tree pass LIMIT_MIB (48), and prints both sizes. Needs the pinned nvcc (README.md, "CUDA"); NVCC
# may point at it. Carry gpu-bin/bundle.tar.xz with the tree; gpu-check.sh unpacks it.
# --aa also stages gpu-bin/aa for gpu-check.sh's AutoAttack part (the GPU machine has neither the
# reference nor the data): the pyautoattack package, the Fashion-MNIST test files, and a SmallCNN
# trained with PGD-AT in PyTorch (scripts/compare_torchattacks.py, a few minutes on 2 cores); PY is a
# Python with torch and safetensors. Then carry gpu-bin whole.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_MIB=${LIMIT_MIB:-48}
exe() { # the executable cargo built for target $1, from its JSON messages
    python3 -c "import json,sys; print([m['executable'] for m in map(json.loads, sys.stdin) if m.get('executable') and m['target']['name'] == '$1'][-1])"
}
mmard_bin=$(cargo build --release --features cuda --message-format=json | exe mmard)
test_bin=$(cargo test --release --features cuda --test cuda_parity --no-run --message-format=json 2>/dev/null | exe cuda_parity)
bench_bin=$(cargo bench --features cuda --bench ops --no-run --message-format=json 2>/dev/null | exe ops)
rm -rf gpu-bin && mkdir -p gpu-bin/stage
cp "$mmard_bin" gpu-bin/stage/mmard
cp "$test_bin" gpu-bin/stage/cuda_parity
cp "$bench_bin" gpu-bin/stage/ops_bench
# the debug line tables of the release profile are most of each file; the GPU machine has no debugger for them
strip --strip-all gpu-bin/stage/*
{
    echo "bundle: $(git describe --always --dirty 2>/dev/null || echo unknown), built $(date -u +%Y-%m-%dT%H:%MZ)"
    (cd gpu-bin/stage && ls -l mmard cuda_parity ops_bench | awk '{print "  " $NF ": " $5 " bytes"}')
} > gpu-bin/bundle.txt
tar -cJf gpu-bin/bundle.tar.xz -C gpu-bin/stage mmard cuda_parity ops_bench
rm -rf gpu-bin/stage
if [ "${1:-}" = --aa ]; then
    PY=${PY:-python3}
    mkdir -p gpu-bin/aa
    cp /usr/share/datasets/fashion-mnist/t10k-* gpu-bin/aa/
    # the reference's package without its 45 MB of example models
    "$PY" -m pip download -q --no-deps -d gpu-bin/aa pyautoattack==0.2.0
    "$PY" -c "import glob, zipfile; z = zipfile.ZipFile(glob.glob('gpu-bin/aa/pyautoattack-*.whl')[0])
z.extractall('gpu-bin/aa/site', [n for n in z.namelist() if n.startswith('pyautoattack/') and '/examples/' not in n])"
    rm gpu-bin/aa/pyautoattack-*.whl
    (cd scripts && "$PY" -c "from compare_torchattacks import train_smallcnn; from safetensors.torch import save_file
m = train_smallcnn(10000, 0.1); save_file({k: v.contiguous() for k, v in m.state_dict().items()}, '../gpu-bin/aa/smallcnn.safetensors')")
    echo "  aa: $(ls gpu-bin/aa | tr '\n' ' ')" >> gpu-bin/bundle.txt
fi
sent=(gpu-bin/bundle.tar.xz)
[ -d gpu-bin/aa ] && sent+=(gpu-bin/aa)
bundle=$(du -cb "${sent[@]}" | tail -1 | cut -f1)
tree=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "gpu-bin: $(mib "$bundle"); tracked tree: $(mib "$tree"); together $(mib $((bundle + tree))) of at most $LIMIT_MIB MiB" >> gpu-bin/bundle.txt
cat gpu-bin/bundle.txt
[ $((bundle + tree)) -le $((LIMIT_MIB * 1048576)) ] || { echo "FAILED: over $LIMIT_MIB MiB"; exit 1; }

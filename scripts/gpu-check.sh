#!/usr/bin/env bash
# GPU check for a machine without Rust or network (docs/ARCHITECTURE.md, "Devices"): PyTorch, cuDNN and cuBLAS live in a
# Python venv. Takes the release binary and the CUDA test binary built elsewhere
# (`scripts/build-gpu-check.sh` puts them in gpu-bin/), puts the venv's library folders on
# LD_LIBRARY_PATH, prints the GPU, driver and library versions, runs the CUDA tests (fixture parity on
# the GPU, CPU against GPU for every op, whole steps), then the step benchmarks beside PyTorch on the
# GPU, and last WRN-34-10's conv layers and the memory-bound kernels (against a device-to-device
# copy) beside PyTorch's. Run it from the repository root of a checkout (the tests read
# tests/fixtures). Logs go to $OUT (default ./gpu-check-logs). Each part has its own time limit
# (150 + 45 + 180 + 30 + 60 s at most), so the whole run ends inside 8 minutes.
#
# Usage: scripts/gpu-check.sh            (VENV=/opt/torch/.venv, BIN=gpu-bin, REPEATS=5)
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-/opt/torch/.venv}
BIN=${BIN:-gpu-bin}
REPEATS=${REPEATS:-5}
OUT=${OUT:-$PWD/gpu-check-logs}
PY="$VENV/bin/python"
mkdir -p "$OUT"
[ -x "$PY" ] || { echo "no Python at $PY (set VENV to the venv with torch)" | tee "$OUT/error.txt"; exit 1; }
[ -x "$BIN/mmard" ] && [ -x "$BIN/cuda_parity" ] || { echo "no $BIN/mmard or $BIN/cuda_parity (run scripts/build-gpu-check.sh on the build machine)" | tee "$OUT/error.txt"; exit 1; }

# Every folder of shared libraries the venv's torch and nvidia-* packages ship (cuBLAS, cuDNN, ...).
LIBS=$("$PY" - <<'PYEOF'
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for so in glob.glob(os.path.join(sp, "nvidia", "**", "*.so*"), recursive=True) + glob.glob(os.path.join(sp, "torch", "lib", "*.so*")):
        if os.path.basename(os.path.dirname(so)) == "lib":
            dirs.add(os.path.dirname(so))
print(":".join(sorted(dirs)))
PYEOF
)
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

{
    echo "date: $(date -u)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
} 2>&1 | tee "$OUT/versions.txt"

status=0
echo "== cuda_parity" | tee "$OUT/tests.txt"
start=$(date +%s)
timeout 150 "$BIN/cuda_parity" --test-threads 1 --nocapture >> "$OUT/tests.txt" 2>&1 || status=1
echo "cuda_parity: exit $status, $(( $(date +%s) - start )) s" | tee -a "$OUT/tests.txt"
# On a GPU machine a skipped test is a failure: the GPU, driver or a library was not found.
if grep -q "skipped:" "$OUT/tests.txt"; then status=1; echo "FAILED: CUDA tests skipped (see the reason above)" | tee -a "$OUT/tests.txt"; fi
grep -E "^test |test result|skipped|panicked" "$OUT/tests.txt"

echo "== a CUDA step from the command line" | tee "$OUT/cli.txt"
timeout 45 "$BIN/mmard" --device cuda bench step --student resnet18 --teacher wide_resnet --teacher-config '{"depth":16,"widen":4}' \
    --method mmard --batch 128 --repeats 3 2>&1 | tee -a "$OUT/cli.txt" || status=1

echo "== benchmarks (cuda)" | tee "$OUT/bench.txt"
timeout 180 "$PY" bench/compare.py --device cuda --mmard "$BIN/mmard" --python "$PY" --repeats "$REPEATS" 2>&1 | tee -a "$OUT/bench.txt" || status=1

echo "== the memory-bound kernels against a device copy, then WRN-34-10's conv layers, beside PyTorch" | tee "$OUT/kernels.txt"
if [ -x "$BIN/ops_bench" ]; then
    for part in "30 memory_bound_cuda" "60 conv2d_wrn34_10_b32_cuda/"; do
        set -- $part
        timeout "$1" "$PY" bench/ops_table.py --device cuda --ops "$BIN/ops_bench" --python "$PY" --rounds 1 --seconds 0.6 \
            --filter "$2" 2>&1 | tee -a "$OUT/kernels.txt" || status=1
    done
else
    echo "FAILED: no $BIN/ops_bench" | tee -a "$OUT/kernels.txt"; status=1
fi
exit $status

#!/usr/bin/env bash
# GPU check for a machine without Rust or network (DESIGN.md §5): PyTorch, cuDNN and cuBLAS live in a
# Python venv. Takes the release binary and the test binaries built elsewhere
# (`cargo build --release --features cuda && cargo test --release --features cuda --no-run`), puts the
# venv's library folders on LD_LIBRARY_PATH, prints the GPU, driver and library versions, runs the
# test binaries, then the step benchmarks beside PyTorch on the GPU. Logs go to $OUT (default
# ./gpu-check-logs). Each part has its own time limit so the whole run ends well inside 8 minutes.
#
# Usage: scripts/gpu-check.sh            (VENV=/opt/torch/.venv, BIN=target/release, DEVICE=cuda)
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-/opt/torch/.venv}
BIN=${BIN:-target/release}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-$PWD/gpu-check-logs}
PY="$VENV/bin/python"
mkdir -p "$OUT"
[ -x "$PY" ] || { echo "no Python at $PY (set VENV to the venv with torch)" | tee "$OUT/error.txt"; exit 1; }

# Every folder of shared libraries the venv's torch and nvidia-* packages ship.
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

# Test binaries: cargo names them <test>-<16 hex digits> in target/release/deps.
status=0
for t in "$BIN"/deps/*-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    name=$(basename "$t")
    echo "== $name" | tee -a "$OUT/tests.txt"
    timeout 120 "$t" --test-threads 1 >> "$OUT/tests.txt" 2>&1 || { status=1; echo "FAILED: $name" | tee -a "$OUT/tests.txt"; }
    grep "test result" "$OUT/tests.txt" | tail -n 1
done

echo "== benchmarks ($DEVICE)" | tee "$OUT/bench.txt"
timeout 300 "$PY" bench/compare.py --device "$DEVICE" --mmard "$BIN/mmard" --python "$PY" --repeats 5 2>&1 | tee -a "$OUT/bench.txt"
exit $status

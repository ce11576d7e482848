#!/usr/bin/env bash
# GPU check for a machine without Rust or network (docs/ARCHITECTURE.md, "Devices"), where PyTorch,
# cuDNN and cuBLAS live in a Python venv. Takes the bundle `scripts/build-gpu-check.sh` made
# (gpu-bin/bundle.tar.xz: mmard, the CUDA tests, the op benches) and runs, in order of value, under
# one deadline (DEADLINE, 420 s):
#   doctor   `mmard --device cuda doctor`: GPU, driver, the library files loaded, every kernel module
#   tests    the CUDA tests: fixture parity on the GPU, CPU against GPU for every op, whole steps
#   kernels  `mmard bench kernels` (memory-bound, against a device copy) beside PyTorch
#   convs    WRN-34-10's conv layers (criterion) beside PyTorch
#   steps    the RSLAD and MMARD steps beside PyTorch eager on the GPU (bench/compare.py), at fp32,
#            TF32 and PyTorch's AMP bf16
#   aa       AutoAttack against pyautoattack on the GPU (scripts/compare_autoattack.py), when the
#            bundle holds its inputs ($BIN/aa: a PyTorch-trained smallcnn.safetensors, the
#            Fashion-MNIST test files, the pyautoattack package; scripts/build-gpu-check.sh --aa)
# Each part logs to $OUT/<part>.txt as it runs and appends one line to $OUT/results.jsonl when it
# ends (part, status, seconds, exit code), so a timeout keeps what was measured. The fixture folders
# are explicit: tests/fixtures, plus shared/fixtures* when it travelled with the tree.
# The venv's library folders go first on LD_LIBRARY_PATH, behind a folder of unversioned links to
# its libcublas/libcudnn (cudarc asks for `libcublas.so` before `libcublas.so.13`, which would let a
# system toolkit's copy win); the doctor prints the files that were loaded.
#
# Usage: scripts/gpu-check.sh [--self-test]   (VENV=/opt/torch/.venv, BIN=gpu-bin, REPEATS=3, OUT,
#        PARTS="doctor tests kernels convs steps aa": the parts to run, e.g. to rerun one that failed)
# --self-test runs on a machine without a GPU (CI does): it unpacks the bundle, finds the libraries,
# runs every part's real command and expects each to stop at "no GPU"; any other failure (a missing
# file, a wrong argument) fails it.
set -uo pipefail
cd "$(dirname "$0")/.."
SELF_TEST=0 WANT=ok
[ "${1:-}" = --self-test ] && SELF_TEST=1 WANT="no GPU"
VENV=${VENV:-/opt/torch/.venv}
BIN=${BIN:-gpu-bin}
REPEATS=${REPEATS:-3}
OUT=${OUT:-$PWD/gpu-check-logs}
DEADLINE=${DEADLINE:-500}
PARTS=${PARTS:-doctor tests kernels convs steps aa}
START=$(date +%s)
PY="$VENV/bin/python"
[ -x "$PY" ] || PY=$(command -v python3)
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
# what a part prints when the machine has no usable GPU (the device's own errors, the tests' skips)
NO_GPU='no NVIDIA driver|reports no usable GPU|skipped: --device cuda|Torch not compiled with CUDA|CUDA is not available|no CUDA GPUs|not compiled with CUDA'

fail() { echo "$1" | tee "$OUT/error.txt"; exit 1; }
if [ -f "$BIN/bundle.tar.xz" ]; then
    tar -xJf "$BIN/bundle.tar.xz" -C "$BIN" || fail "could not unpack $BIN/bundle.tar.xz"
fi
for b in mmard cuda_parity ops_bench; do
    [ -x "$BIN/$b" ] || fail "no $BIN/$b (run scripts/build-gpu-check.sh on the build machine and bring $BIN/bundle.tar.xz)"
done

# Every folder of shared libraries the venv's torch and nvidia-* packages ship (cuBLAS, cuDNN, ...),
# and a folder of unversioned names linking to the venv's versioned files.
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
LINKS="$OUT/lib-links"
rm -rf "$LINKS" && mkdir -p "$LINKS"
for name in libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
    for d in ${LIBS//:/ }; do
        if [ -e "$d/$name" ]; then ln -sf "$d/$name" "$LINKS/${name%.*}"; break; fi
    done
done
export LD_LIBRARY_PATH="$LINKS${LIBS:+:$LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# the fixture folders, named so the tests do not look for ../shared
export MMARD_FIXTURES=tests/fixtures MMARD_RB_FIXTURES=tests/fixtures MMARD_METHOD_FIXTURES=tests/fixtures
[ -d shared/fixtures ] && MMARD_FIXTURES=shared/fixtures
[ -d shared/fixtures-robustbench ] && MMARD_RB_FIXTURES=shared/fixtures-robustbench
[ -d shared/fixtures-methods ] && MMARD_METHOD_FIXTURES=shared/fixtures-methods

{
    echo "date: $(date -u)"
    if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; else echo "no nvidia-smi"; fi
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')" 2>&1 || echo "no torch at $PY"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    echo "links: $(ls "$LINKS" | tr '\n' ' ')"
    echo "fixtures: $MMARD_FIXTURES, $MMARD_RB_FIXTURES, $MMARD_METHOD_FIXTURES"
    [ -f "$BIN/bundle.txt" ] && cat "$BIN/bundle.txt"
} 2>&1 | tee "$OUT/versions.txt"

status=0
# part NAME SECONDS COMMAND...: runs COMMAND under min(SECONDS, what the deadline leaves), logs it,
# and records how it ended
part() {
    local name=$1 limit=$2; shift 2
    [[ " $PARTS " == *" $name "* ]] || return 0
    local left=$(( DEADLINE - ($(date +%s) - START) ))
    [ "$limit" -gt "$left" ] && limit=$left
    local log="$OUT/$name.txt" t0; t0=$(date +%s)
    echo "== $name (at most $limit s): $*" | tee "$log"
    local rc=124
    if [ "$limit" -gt 0 ]; then
        timeout "$limit" "$@" >> "$log" 2>&1; rc=$?
    fi
    local st
    if [ "$rc" = 124 ]; then st=timeout
    elif grep -qE "$NO_GPU" "$log"; then st="no GPU"
    elif [ "$rc" != 0 ] || grep -q "skipped:" "$log"; then st=failed
    else st=ok
    fi
    if [ "$st" != "$WANT" ]; then
        status=1
        [ "$SELF_TEST" = 1 ] && st="$st (the self-test expects no GPU)"
    fi
    printf '{"part": "%s", "status": "%s", "seconds": %d, "exit": %d, "log": "%s.txt"}\n' \
        "$name" "$st" $(( $(date +%s) - t0 )) "$rc" "$name" >> "$OUT/results.jsonl"
    grep -E "^(check |gpu:|driver:|cuBLAS|library:|doctor:|FAILED|test result|\| )|panicked" "$log" | head -60
    echo "$name: $st ($(( $(date +%s) - t0 )) s)"
}

part doctor 45 "$BIN/mmard" --device cuda doctor
part tests 150 "$BIN/cuda_parity" --test-threads 1 --nocapture
part kernels 30 "$PY" bench/ops_table.py --device cuda --mmard "$BIN/mmard" --python "$PY" --rounds 1 --filter memory_bound_cuda
part convs 60 "$PY" bench/ops_table.py --device cuda --ops "$BIN/ops_bench" --python "$PY" --rounds 1 --seconds 0.6 --filter "conv2d_wrn34_10_b32_cuda/"
part steps 200 "$PY" bench/compare.py --device cuda --mmard "$BIN/mmard" --python "$PY" --repeats "$REPEATS" --jsonl "$OUT/steps.jsonl"
# AA needs the reference's package (the GPU machine cannot fetch it) on the path; mmard's doctor
# goes first, so that a machine without a GPU stops at "no GPU" before anything else is needed.
if [ -d "$BIN/aa" ]; then
    export PYTHONPATH=$PWD/$BIN/aa/site${PYTHONPATH:+:$PYTHONPATH}
    AA_WEIGHTS=("--weights" "$BIN/aa/smallcnn.safetensors" "--data-dir" "$BIN/aa")
else
    AA_WEIGHTS=()
fi
part aa 240 bash -c '"$0" --device cuda doctor && exec "$1" scripts/compare_autoattack.py --device cuda --mmard "$0" --n 1000 --json "$2" "${@:3}"' \
    "$BIN/mmard" "$PY" "$OUT/aa.json" "${AA_WEIGHTS[@]}"
echo "== $(( $(date +%s) - START )) s in all; $OUT/results.jsonl:"
cat "$OUT/results.jsonl"
[ "$(wc -l < "$OUT/results.jsonl")" = "$(wc -w <<< "$PARTS")" ] || { echo "FAILED: $OUT/results.jsonl should hold one line per part"; status=1; }
exit $status

#!/usr/bin/env bash
# The claims study of RESULTS.md (Fashion-MNIST, ε = 0.1, SmallCNN 16/32/64 students, 8,000 training
# images, 2 epochs, seeds 0 1 2): every method against the shipped teacher, teacher sensitivity,
# MMARD's halves plugged into the other methods, and the ablations. Each finished run is one tracked
# results/<config>-s<seed>.json with its figures (clean, PGD-20 and AutoAttack on 500 test images),
# its metrics per epoch and its exact commands; a run with such a file is skipped, so the script
# continues where it stopped (a run stopped halfway starts over). Training runs go to runs/study/
# (not tracked). `mmard report results --out results/report` makes the tables and plots.
# Usage: scripts/study.sh [seeds...]   (default: 0 1 2; MMARD=path to use another binary;
#        ONLY="natural mmard ..." runs only those configurations and the teachers they learn from)
set -euo pipefail
cd "$(dirname "$0")/.."
M=${MMARD:-target/release/mmard}
[ -n "${MMARD:-}" ] || cargo build --release -q
RUNS=runs/study
SHIPPED=assets/teacher_fmnist_small_cnn_pgd_at.safetensors
COMMON=(--dataset fashion-mnist --limit 8000 --epochs 2 --schedule cosine --eval-limit 500 --widths 16,32,64)
TEACHER_RECIPE=(--method pgd_at --arch small_cnn --dataset fashion-mnist --schedule cosine --lr 0.1 --eval-limit 500 --seed 0)
EVAL=(--dataset fashion-mnist --limit 500 --eps 0.1 --attacks clean,pgd20,aa --aa-batch 250)
# the binary's version and commit (MMARD_COMMIT names it when MMARD is a copy built earlier)
VERSION="$($M --version) ${MMARD_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
mkdir -p "$RUNS" results

# name|part of the study (methods, plug, ablation, sensitivity; the report groups by it)|teacher|
# arguments of `mmard train` or `mmard distill`
configs=(
  "natural|methods||train --method natural --lr 0.05 --arch small_cnn"
  "pgd_at|methods||train --method pgd_at --arch small_cnn"
  "trades|methods||train --method trades --arch small_cnn"
  "ard|methods|shipped|distill --method ard"
  "iad|methods|shipped|distill --method iad"
  "rslad|methods|shipped|distill --method rslad"
  "adaad|methods|shipped|distill --method adaad"
  "mmard|methods|shipped|distill --method mmard"
  # plug-and-play: MMARD's inner objective, its triangle outer objective (weights 5/6, 1/6, 1), both
  # (rslad with both halves is mmard; the host method's coefficients apply to the plugged half,
  # but ARD's τ = 30 would flatten the triangle's KL terms, so with MMARD's outer it takes MMARD's τ = 1)
  "ard+inner|plug|shipped|distill --method ard --inner mmard"
  "ard+outer|plug|shipped|distill --method ard --outer triangle --tau 1"
  "ard+both|plug|shipped|distill --method ard --inner mmard --outer triangle --tau 1"
  # ARD at MMARD's τ = 1 alone: the control that says how much of ARD's pairings' gain is τ's
  "ard-tau1|plug|shipped|distill --method ard --tau 1"
  "iad+inner|plug|shipped|distill --method iad --inner mmard"
  "iad+outer|plug|shipped|distill --method iad --outer triangle"
  "iad+both|plug|shipped|distill --method iad --inner mmard --outer triangle"
  "rslad+inner|plug|shipped|distill --method rslad --inner mmard"
  "rslad+outer|plug|shipped|distill --method rslad --tri 0.83333333,0.16666667,1"
  "adaad+inner|plug|shipped|distill --method adaad --inner mmard"
  "adaad+outer|plug|shipped|distill --method adaad --outer triangle"
  "adaad+both|plug|shipped|distill --method adaad --inner mmard --outer triangle"
  # ablations (inner only = rslad+inner, outer only = rslad+outer; λ = 0 is rslad+outer, c = 0 rslad+inner)
  "mmard-lambda0.5|ablation|shipped|distill --method mmard --lambda 0.5"
  "mmard-lambda2|ablation|shipped|distill --method mmard --lambda 2"
  "mmard-c0.5|ablation|shipped|distill --method mmard --tri 0.83333333,0.16666667,0.5"
  "mmard-c2|ablation|shipped|distill --method mmard --tri 0.83333333,0.16666667,2"
  # teacher sensitivity: the shipped teacher (widths 32/64/128), two smaller ones by the same recipe,
  # and a less robust one of the shipped width (a fifth of the images, one epoch)
  "rslad@w8|sensitivity|w8|distill --method rslad"
  "adaad@w8|sensitivity|w8|distill --method adaad"
  "mmard@w8|sensitivity|w8|distill --method mmard"
  "rslad@w16|sensitivity|w16|distill --method rslad"
  "adaad@w16|sensitivity|w16|distill --method adaad"
  "mmard@w16|sensitivity|w16|distill --method mmard"
  "rslad@weak|sensitivity|weak|distill --method rslad"
  "adaad@weak|sensitivity|weak|distill --method adaad"
  "mmard@weak|sensitivity|weak|distill --method mmard"
)

# The teachers of the sensitivity study, PGD-AT SmallCNNs: name|the rest of their recipe.
teachers=(
  "shipped|--limit 30000 --epochs 3 --widths 32,64,128"
  "w8|--limit 30000 --epochs 3 --widths 8,16,32"
  "w16|--limit 30000 --epochs 3 --widths 16,32,64"
  "weak|--limit 6000 --epochs 1 --widths 32,64,128"
)
wanted() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
# a teacher is needed when a wanted configuration learns from it (every teacher without ONLY)
needed() {
  [ -z "${ONLY:-}" ] && return 0
  local c name t
  for c in "${configs[@]}"; do
    IFS='|' read -r name _ t _ <<< "$c"
    [ "$t" = "$1" ] && wanted "$name" && return 0
  done
  return 1
}
# (returns 0 whatever the last comparison gave: `cmd="$(recipe w8)"` would otherwise stop the script
# under set -e for every teacher but the last)
recipe() { for t in "${teachers[@]}"; do [ "${t%%|*}" = "$1" ] && echo "${TEACHER_RECIPE[*]} ${t#*|}"; done; return 0; }
teacher() { if [ "$1" = shipped ]; then echo "$SHIPPED"; else echo "$RUNS/teacher-$1/model.safetensors"; fi; }
for t in "${teachers[@]}"; do
  name=${t%%|*}; dir=$RUNS/teacher-$name
  needed "$name" || continue
  if [ "$name" != shipped ] && [ ! -f "$dir/model.safetensors" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    started=$(date +%s)
    # shellcheck disable=SC2046
    $M train $(recipe "$name") --out "$dir" 2> "$dir.log" || { cat "$dir.log"; exit 1; }
    echo $(( $(date +%s) - started )) > "$dir/seconds"
  fi
done

# One result file: eval.json of a model, its part of the study and method (as `mmard report` reads
# them), its training time and metrics, and the commands.
record() { # out, name, part, seed, train command, run folder or "", weights, teacher name or ""
  local out=$1 name=$2 part=$3 seed=$4 train_cmd=$5 dir=$6 weights=$7 teacher=$8
  local method; method=$(sed -E 's/.*--method ([a-z_]+).*/\1/' <<< "$train_cmd")
  local eval_cmd="mmard eval --weights $weights ${EVAL[*]} --seed $seed"
  local started; started=$(date +%s)
  $M eval --weights "$weights" "${EVAL[@]}" --seed "$seed" --json "$out.eval" > "$out.eval.txt"
  python3 - "$out" "$name" "$part" "$method" "$seed" "$train_cmd" "$eval_cmd" "$dir" "$VERSION" "$(( $(date +%s) - started ))" "$teacher" <<'PY'
import json, sys, pathlib
out, name, part, method, seed, train_cmd, eval_cmd, d, version, eval_s, teacher = sys.argv[1:12]
r = json.load(open(out + ".eval"))
rec = {"config": name, "part": part, "method": method, "seed": int(seed), "clean": r["clean"], "pgd20": r["pgd20"], "aa": r["aa"],
       "aa_stages": r["aa_protocol"]["stages"], "eps": r["eps"], "n": r["n"], "train_command": train_cmd,
       "eval_command": eval_cmd, "eval_seconds": float(eval_s), "mmard": version}
if teacher:
    rec["teacher"] = teacher
if d:
    rec["train_seconds"] = float(pathlib.Path(d, "seconds").read_text())
    rec["metrics"] = [json.loads(l) for l in pathlib.Path(d, "metrics.jsonl").read_text().splitlines()]
json.dump(rec, open(out, "w"), indent=1)
PY
  rm -f "$out.eval" "$out.eval.txt"
}

for t in "${teachers[@]}"; do
  w=${t%%|*}; res=results/teacher-$w.json
  { [ -f "$res" ] || ! needed "$w"; } && continue
  cmd="mmard train $(recipe "$w")"; dir=$RUNS/teacher-$w
  [ "$w" = shipped ] && cmd="shipped ($cmd)" && dir=""
  record "$res" "teacher-$w" teacher 0 "$cmd" "$dir" "$(teacher "$w")" "$w"
  echo "teacher $w: $(python3 -c "import json; r=json.load(open('$res')); print(r['clean'], r['pgd20'], r['aa'])")"
done

seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
for seed in "${seeds[@]}"; do
  for c in "${configs[@]}"; do
    IFS='|' read -r name part t args <<< "$c"
    dir=$RUNS/$name-s$seed; res=results/$name-s$seed.json
    { [ -f "$res" ] || ! wanted "$name"; } && continue
    extra=()
    [ -n "$t" ] && extra=(--teacher "$(teacher "$t")" --student small_cnn)
    rm -rf "$dir"; mkdir -p "$dir"
    started=$(date +%s)
    # shellcheck disable=SC2086
    $M $args "${extra[@]}" "${COMMON[@]}" --seed "$seed" --out "$dir" 2> "$dir.log" || { cat "$dir.log"; exit 1; }
    echo $(( $(date +%s) - started )) > "$dir/seconds"
    record "$res" "$name" "$part" "$seed" "mmard $args ${extra[*]} ${COMMON[*]} --seed $seed" "$dir" "$dir/model.safetensors" "$t"
    echo "$name seed $seed: $(python3 -c "import json; r=json.load(open('$res')); print(r['clean'], r['pgd20'], r['aa'], r['train_seconds'])")"
  done
done

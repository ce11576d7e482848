#!/usr/bin/env bash
# RESULTS.md's runs: every method (and a plug-in pairing) distils the same SmallCNN student from the
# same shipped teacher on Fashion-MNIST, for each seed, then `mmard eval` runs the six attacks.
# Training runs go to runs/results/<config>-s<seed>/ (not tracked); each finished run's evaluation
# and training time land in results/<config>-s<seed>.json (tracked), and a run with such a file is
# skipped, so the script continues where it stopped. scripts/results_table.py makes the table.
# Usage: scripts/results.sh [seeds...]   (default: 0 1)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
M=target/release/mmard
RUNS=runs/results
TEACHER=assets/teacher_fmnist_small_cnn_pgd_at.safetensors
COMMON=(--dataset fashion-mnist --limit 8000 --epochs 2 --schedule cosine --eval-limit 0 --widths 16,32,64)
EVAL=(--dataset fashion-mnist --limit 500 --eps 0.1 --attacks clean,fgsm,pgd20,cw,apgd-ce,apgd-t)
configs=("natural:train --method natural --lr 0.05 --arch small_cnn"
         "pgd_at:train --method pgd_at --arch small_cnn"
         "trades:train --method trades --arch small_cnn"
         "ard:distill --method ard"
         "iad:distill --method iad"
         "rslad:distill --method rslad"
         "adaad:distill --method adaad"
         "mmard:distill --method mmard"
         "rslad+mmard-inner:distill --method rslad --inner mmard")
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1)
mkdir -p "$RUNS" results
for seed in "${seeds[@]}"; do
  for c in "${configs[@]}"; do
    name=${c%%:*}; args=${c#*:}; dir=$RUNS/$name-s$seed; res=results/$name-s$seed.json
    [ -f "$res" ] && continue
    extra=()
    [[ $args == distill* ]] && extra=(--teacher "$TEACHER" --student small_cnn)
    if [ ! -f "$dir/eval.json" ]; then
      rm -rf "$dir"   # a run stopped halfway starts over
      start=$(date +%s)
      # shellcheck disable=SC2086
      $M $args "${extra[@]}" "${COMMON[@]}" --seed "$seed" --out "$dir" 2> "$dir.log" || { cat "$dir.log"; exit 1; }
      echo $(( $(date +%s) - start )) > "$dir/seconds"
      $M eval --weights "$dir/model.safetensors" "${EVAL[@]}" --seed "$seed" --json "$dir/eval.json" > "$dir/eval.txt"
    fi
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); r['train_seconds']=float(open(sys.argv[2]).read()); r['command']=sys.argv[3]; json.dump(r, open(sys.argv[4],'w'))" \
      "$dir/eval.json" "$dir/seconds" "mmard $args ${extra[*]} ${COMMON[*]} --seed $seed" "$res"
    echo "$name seed $seed: $(cat "$res")"
  done
done

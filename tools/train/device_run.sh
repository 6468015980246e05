#!/usr/bin/env bash
# The training run as done on the GPU box (one H100), from the repository root:
#   OUT=/some/dir tools/train/device_run.sh
# A few settings train side by side on the one GPU (the model is too small to fill it
# alone); the one with the best validation perplexity (10 training-split documents held
# out by train.py; never the test split) is exported to $OUT.
set -uo pipefail
cd "$(dirname "$0")"
export PYTHONUNBUFFERED=1
tok=../../models/tnl-brown-12m/tokenizer.model
python3 model.py 2>&1 | tee "$OUT/train.log" || exit 1
common="--tokenizer $tok --time_budget 330 --eval_every 250"
declare -A runs=(
  [s4k_d30]="--seq 4096 --batch 4 --steps 2500 --dropout 0.3"
  [s4k_d40]="--seq 4096 --batch 4 --steps 3000 --dropout 0.4"
  [s8k_d40]="--seq 8192 --batch 2 --steps 2500 --dropout 0.4"
)
for r in "${!runs[@]}"; do
  python3 train.py $common ${runs[$r]} --out /tmp/run_$r > /tmp/run_$r.log 2>&1 &
done
wait
for r in "${!runs[@]}"; do echo "===== run $r: ${runs[$r]}"; cat /tmp/run_$r.log; done >> "$OUT/train.log"
best=$(python3 - "${!runs[@]}" <<'PY'
import json, sys
v = {r: json.load(open(f"/tmp/run_{r}/train_summary.json"))["val_ppl_exported"] for r in sys.argv[1:]}
print(v, file=sys.stderr)
print(min(v, key=v.get))
PY
)
echo "===== selected run $best by validation perplexity" | tee -a "$OUT/train.log"
cp /tmp/run_$best/*.safetensors /tmp/run_$best/*.json /tmp/run_$best/train_curve.csv "$OUT/"
ls -la "$OUT"

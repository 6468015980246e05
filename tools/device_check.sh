#!/usr/bin/env bash
# Runs on the GPU machine (device tool): unpacks the bundle made by
# tools/bundle_gpu.sh, then checks the CUDA backend against the CPU one and writes
# logs under $OUT. Usage there: bash tools/device_check.sh
set -uo pipefail
mkdir -p /tmp/tnl && tar -C /tmp/tnl -xJf .carry/bundle.tar.xz
export LD_LIBRARY_PATH=/tmp/tnl/lib:/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu
B=/tmp/tnl/bin
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $OUT/gpu.txt

echo "== CUDA backend vs CPU backend (random models)"
for t in $B/*_test; do $t 2>&1 | tee $OUT/$(basename $t).log | grep -E "rel err|FAILED|PASSED|SKIPPED \]" | tail -80; done

echo "== tnl-eval cuda vs cpu: default model"
m=models/tnl-brown-12m
$B/tnl-eval --model $m --file tests/data/heldout_slice.txt --json --device cuda > /tmp/eval_cuda.json
$B/tnl-eval --model $m --file tests/data/heldout_slice.txt --json --device cpu > /tmp/eval_cpu.json
python3 tools/compare_eval.py /tmp/eval_cuda.json /tmp/eval_cpu.json | tee $OUT/eval_default.txt

echo "== tnl-eval cuda vs cpu: random 385M-shape model"
r=/tmp/m385
$B/tnl-make-test-model --out $r --layers 24 --dim 1024 --heads 8 --hidden 1024 --glu 2816 --vocab 64000 \
  --lrpe 1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0 --dtype bf16 --seed 1 >/dev/null
cp $m/tokenizer.model $m/tokenizer_config.json $r/
head -c 6000 tests/data/heldout_slice.txt > /tmp/text385.txt
$B/tnl-eval --model $r --file /tmp/text385.txt --json --device cuda > /tmp/e385_cuda.json
$B/tnl-eval --model $r --file /tmp/text385.txt --json --device cpu > /tmp/e385_cpu.json
python3 tools/compare_eval.py /tmp/e385_cuda.json /tmp/e385_cpu.json | tee $OUT/eval_385m.txt

echo "== greedy generation on the GPU, default model"
$B/tnl-generate --model $m --prompt "The jury said" --temperature 0 --max-tokens 40 --device cuda 2>&1 | tee $OUT/generate_cuda.txt

echo "== convert_checkpoint.py self-test (torch)"
python3 tools/convert_checkpoint.py --self-test 2>&1 | tail -5 | tee $OUT/convert_selftest.txt

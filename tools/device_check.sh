#!/usr/bin/env bash
# Runs on the GPU machine (the device tool, or any GPU node without a build): unpacks
# the bundle made by tools/bundle_gpu.sh, then runs every GPU test, the CUDA-vs-CPU
# log-prob parity of tnl-eval, a tnl-server smoke run on the GPU and tnl-bench.
# Logs land under $OUT (default ./device-out). Usage there:
#   bash tools/device_check.sh [tests] [parity] [server] [bench]   (default: all four)
set -uo pipefail
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT" /tmp/tnl
tar -C /tmp/tnl -xJf .carry/bundle.tar.xz
export LD_LIBRARY_PATH=/tmp/tnl/lib:/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu
B=/tmp/tnl/bin
parts=${*:-tests parity server bench}
has() { [[ " $parts " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"

if has tests; then
  echo "== GPU tests (kernels against the CPU reference, CUDA backend against the CPU backend)"
  logs=/tmp/tnl/test-logs
  mkdir -p $logs
  for t in "$B"/*_test; do
    "$t" > "$logs/$(basename "$t").log" 2>&1
    echo "$(basename "$t"): exit $? | $(grep -E '^\[  (PASSED|FAILED) ' "$logs/$(basename "$t").log" | tr '\n' ' ')"
    grep -E "rel err|rows equal|FAILED  \]|Failure|error:" "$logs/$(basename "$t").log" | head -40
  done 2>&1 | tee "$OUT/tests_summary.txt"
  tar -C /tmp/tnl -czf "$OUT/test_logs.tar.gz" test-logs
fi

if has parity; then
  echo "== tnl-eval --device cuda vs --device cpu"
  {
    m=models/tnl-brown-12m
    "$B/tnl-eval" --model $m --file tests/data/heldout_slice.txt --json --device cuda > /tmp/eval_cuda.json
    "$B/tnl-eval" --model $m --file tests/data/heldout_slice.txt --json --device cpu > /tmp/eval_cpu.json
    echo "default model (tnl-brown-12m), held-out slice:"
    python3 tools/compare_eval.py /tmp/eval_cuda.json /tmp/eval_cpu.json
    r=/tmp/m385
    "$B/tnl-make-test-model" --out $r --layers 24 --dim 1024 --heads 8 --hidden 1024 --glu 2816 --vocab 64000 \
      --lrpe 1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0 --dtype bf16 --seed 1 > /dev/null
    cp $m/tokenizer.model $m/tokenizer_config.json $r/
    head -c 6000 tests/data/heldout_slice.txt > /tmp/text385.txt
    "$B/tnl-eval" --model $r --file /tmp/text385.txt --json --device cuda > /tmp/e385_cuda.json
    "$B/tnl-eval" --model $r --file /tmp/text385.txt --json --device cpu > /tmp/e385_cpu.json
    echo "random 385M-shape model:"
    python3 tools/compare_eval.py /tmp/e385_cuda.json /tmp/e385_cpu.json
    echo "greedy tnl-generate on the GPU, default model:"
    "$B/tnl-generate" --model $m --prompt "The jury said" --temperature 0 --max-tokens 40 --device cuda
    python3 tools/convert_checkpoint.py --self-test 2>&1 | tail -3
  } 2>&1 | tee "$OUT/parity.txt"
fi

if has server; then
  echo "== tnl-server --device cuda: greedy and sampled completions, streaming, metrics"
  {
    "$B/tnl-server" --model models/tnl-brown-12m --device cuda --port 18000 --grpc-port -1 > "$OUT/server.log" 2>&1 &
    pid=$!
    PYTHONUNBUFFERED=1 python3 tools/device_server_check.py http://127.0.0.1:18000
    kill -TERM $pid; wait $pid; echo "server exit: $?"
    grep -E "cuda backend|state slots|error" "$OUT/server.log" | head -5
  } 2>&1 | tee "$OUT/server_check.txt"
fi

if has bench; then
  echo "== tnl-bench, 385M shape"
  "$B/tnl-bench" --config tools/bench/configs/tnl-385m.json --json "$OUT/bench_385m.json" 2>&1 | tee "$OUT/bench_385m.txt"
fi

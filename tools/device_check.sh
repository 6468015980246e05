#!/usr/bin/env bash
# Runs on the GPU machine (the device tool, or any GPU node without a build): unpacks
# the bundle made by tools/bundle_gpu.sh, then runs every GPU test, the CUDA-vs-CPU
# log-prob parity of tnl-eval, a tnl-server smoke run on the GPU and tnl-bench.
# Logs land under $OUT (default ./device-out). Usage there:
#   bash tools/device_check.sh [tests] [parity] [server] [cache] [sweep] [bench] [tp] [constraints] [priority] [bench7b] [ttft] [streams] [streams-ab] [penalties]
#   (default: tests parity server bench)
# streams-ab: the 256-stream HTTP run twice for each of this bundle's tnl-server and
# another build's ($AB_SERVER, e.g. .carry/tnl-server-old carried along), alternating
# on this one machine (machines differ by more than most host-side changes), with
# the step loop's split from each run's step trace.
# penalties: the 256-stream HTTP run after 1,024-token prompts without and with a
# repetition and frequency penalty (the device keeps each slot's counts), with
# the step loop's split; and tnl-host-bench's planning cost with and without one.
# tp: tensor parallelism over the single-device communicator (every rank on this
# GPU): its tests, TP = 2 against TP = 1 through tnl-generate, tnl-eval and
# tnl-server, and tnl-bench --tensor-parallel-size 2 beside TP = 1.
# cache: multi-turn TTFT with the prefix cache on and off; sweep: a tnl-loadgen rate
# sweep; both against tnl-server on a random 385M-shape model (4096-token vocabulary,
# the default model's tokenizer, so that every generated token has text).
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
    rc=$?  # before any command substitution below resets $?
    echo "$(basename "$t"): exit $rc | $(grep -E '^\[  (PASSED|FAILED) ' "$logs/$(basename "$t").log" | tr '\n' ' ')"
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

http_get() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }

# A random 385M-shape checkpoint with the default model's tokenizer, served on the GPU
# (by $SERVER_BIN when set, else this bundle's tnl-server).
m385v4k=/tmp/m385v4k
serve_385m() {  # serve_385m PORT EXTRA_FLAGS...
  if [ ! -f $m385v4k/config.json ]; then
    "$B/tnl-make-test-model" --out $m385v4k --layers 24 --dim 1024 --heads 8 --hidden 1024 --glu 2816 --vocab 4096 \
      --lrpe 1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0 --dtype bf16 --seed 1 > /dev/null
    cp models/tnl-brown-12m/tokenizer.model models/tnl-brown-12m/tokenizer_config.json $m385v4k/
  fi
  local port=$1
  shift
  "${SERVER_BIN:-$B/tnl-server}" --model $m385v4k --device cuda --port "$port" --grpc-port -1 --max-num-seqs 256 \
    --max-num-batched-tokens 8192 --prefill-chunk 2048 --max-model-len 16384 --max-queue 4096 --log-level warn "$@" \
    > /tmp/tnl/server_$port.log 2>&1 &
  server_pid=$!
  for _ in $(seq 600); do http_get "http://127.0.0.1:$port/ready" > /dev/null 2>&1 && return 0; sleep 0.2; done
  echo "server on $port did not start"; tail -5 /tmp/tnl/server_$port.log; return 1
}
corpus=/tmp/corpus.txt
cat tests/data/heldout_slice.txt tests/data/tokenizer_corpus.txt tests/data/heldout_slice.txt > $corpus

if has cache; then
  # Back-to-back turns (think 0: the next turn is sent the moment the reply ends)
  # and turns 250 ms apart (a user reading the reply), cache on and off; each turn
  # on a fresh connection. Then think 0 again with each client keeping its
  # connection between turns (think0ka), as a chat app's SDK pool does.
  echo "== prefix cache: 8 conversations x 8 turns x ~512 new tokens, TTFT per turn, cache on and off"
  {
    for think in 0 250 0ka; do
      for mode in on off; do
        echo "-- think time ${think%ka} ms$([ "${think%ka}" != "$think" ] && echo ', connections kept alive'), --prefix-cache $mode"
        serve_385m 18010 --prefix-cache $mode --step-trace /tmp/tnl/trace_${mode}_think$think.jsonl || break
        python3 tools/loadgen/loadgen.py --port 18010 --endpoint completions --corpus $corpus --concurrency 8 \
          --turns 8 --input-tokens 512 --turn-tokens 512 --output-tokens 64 --num-requests 64 \
          --think-time-ms ${think%ka} $([ "${think%ka}" != "$think" ] && echo --keep-alive) \
          --quiet --save-requests --json /tmp/tnl/turns_${mode}_think$think.json | tail -25
        http_get http://127.0.0.1:18010/metrics | grep -E "^tnl_prefix_cache_(hits|queries|hit_tokens|snapshots|evictions)_total|^tnl_prompt_tokens_(cached_)?total|^tnl_prompt_token_cache_"
        kill -TERM $server_pid; wait $server_pid
        python3 tools/step_trace_summary.py /tmp/tnl/trace_${mode}_think$think.jsonl --group 8 \
          --requests /tmp/tnl/turns_${mode}_think$think.json
      done
      python3 tools/loadgen/loadgen.py --compare /tmp/tnl/turns_on_think$think.json /tmp/tnl/turns_off_think$think.json \
        --plot /tmp/tnl/turns_think$think.svg
    done
    # one file of the 8 that $OUT returns
    tar -C /tmp/tnl -czf "$OUT/cache_data.tar.gz" turns_on_think0.json turns_off_think0.json turns_think0.svg \
      turns_on_think250.json turns_off_think250.json turns_think250.svg trace_on_think0.jsonl trace_off_think0.jsonl \
      turns_on_think0ka.json turns_off_think0ka.json trace_on_think0ka.jsonl
  } 2>&1 | tee "$OUT/cache.txt"
fi

if has sweep; then
  echo "== tnl-loadgen rate sweep, 385M shape"
  {
    serve_385m 18020 && python3 tools/loadgen/loadgen.py --port 18020 --corpus $corpus \
      --rate 25,50,100,200,400 --duration 15 --input-tokens 256:1024 --output-tokens 64:256 \
      --slo-ttft-ms 200 --slo-tpot-ms 50 --quiet --json "$OUT/sweep.json" --plot "$OUT/sweep.svg" | tail -30
    kill -TERM $server_pid; wait $server_pid
  } 2>&1 | tee "$OUT/sweep.txt"
fi

if has ttft; then
  echo "== one request at a time through HTTP: time to first token by prompt length (385M shape)"
  {
    serve_385m 18040
    # 2000, not 2048: tnl-loadgen's 2048 comes out a few tokens over the server's
    # 2048-token prefill chunk, and a second prefill step then shows up in the figure.
    for n in 64 768 2000; do
      echo "-- prompt ~$n tokens"
      python3 tools/loadgen/loadgen.py --port 18040 --corpus $corpus --concurrency 1 --num-requests 40 \
        --warmup 3 --input-tokens $n --output-tokens 1 --quiet | grep -iE "ttft|first_token|step_time"
    done
    kill -TERM $server_pid; wait $server_pid
  } 2>&1 | tee "$OUT/ttft.txt"
fi

if has streams-ab; then
  echo "== 256 closed-loop streams through HTTP, this tnl-server and \$AB_SERVER alternating (385M shape)"
  {
    if [ -z "${AB_SERVER:-}" ] || [ ! -x "${AB_SERVER:-}" ]; then
      echo "streams-ab: set AB_SERVER to another build's tnl-server"
    else
      for round in 1 2; do
        for which in this other; do
          server=$B/tnl-server; [ $which = other ] && server=$AB_SERVER
          echo "-- round $round, $which: $server"
          SERVER_BIN=$server serve_385m 18060 --prefix-cache off --step-trace /tmp/tnl/trace_ab_$which$round.jsonl || break
          python3 tools/loadgen/loadgen.py --port 18060 --corpus $corpus --concurrency 256 --num-requests 1024 --warmup 2 \
            --input-tokens 256 --output-tokens 256 --quiet | grep -E "concurrency 256|client"
          kill -TERM $server_pid; wait $server_pid
          python3 tools/step_trace_summary.py /tmp/tnl/trace_ab_$which$round.jsonl | grep -E "^  (plan|emit)|decode only|per decoded"
        done
      done
    fi
  } 2>&1 | tee "$OUT/streams_ab.txt"
fi

if has streams; then
  echo "== 256 closed-loop streams x 256 tokens through HTTP (385M shape): tokens/s and TPOT beside the engine's step"
  {
    for cache in off on; do
      echo "-- --prefix-cache $cache"
      serve_385m 18050 --prefix-cache $cache --step-trace /tmp/tnl/trace_streams_$cache.jsonl || break
      python3 tools/loadgen/loadgen.py --port 18050 --corpus $corpus --concurrency 256 --num-requests 1024 --warmup 2 \
        --input-tokens 256 --output-tokens 256 --quiet | grep -E "concurrency 256|TPOT|ITL|throughput|step_time|evictions|client"
      # What the prefix cache did with traffic that never reuses a prefix.
      http_get http://127.0.0.1:18050/metrics | grep -E "^tnl_prefix_cache_(snapshots|evictions|host_bytes_out|host_bytes_in|hits)_total|^tnl_prefix_cache_(slots|host_slots)"
      kill -TERM $server_pid; wait $server_pid
      python3 tools/step_trace_summary.py /tmp/tnl/trace_streams_$cache.jsonl | head -16
    done
  } 2>&1 | tee "$OUT/streams.txt"
fi

if has penalties; then
  echo "== penalties: 256 closed-loop streams x 256 tokens after 1,024-token prompts, without and with (385M shape)"
  {
    for penalty in off on; do
      echo "-- penalties $penalty"
      extra=()
      [ $penalty = on ] && extra=(--extra-body '{"repetition_penalty":1.1,"frequency_penalty":0.2}')
      serve_385m 18070 --prefix-cache off --step-trace /tmp/tnl/trace_penalty_$penalty.jsonl || break
      python3 tools/loadgen/loadgen.py --port 18070 --corpus $corpus --concurrency 256 --num-requests 512 --warmup 2 \
        --input-tokens 1024 --output-tokens 256 --quiet "${extra[@]}" | grep -E "concurrency 256|TPOT|client"
      kill -TERM $server_pid; wait $server_pid
      python3 tools/step_trace_summary.py /tmp/tnl/trace_penalty_$penalty.jsonl | grep -E "^  (plan|emit)|decode only|per decoded"
    done
    echo "-- tnl-host-bench (this machine's host, no device work), 256 streams, 2,048-token prompts"
    for penalty in 1 1.1; do
      $B/tnl-host-bench --streams 256 --prompt-tokens 2048 --output-tokens 256 --rounds 2 --repetition-penalty $penalty \
        2>&1 | grep -vE "^\[" | tail -6
    done
  } 2>&1 | tee "$OUT/penalties.txt"
fi

if has constraints; then
  echo "== structured output: 64 closed-loop streams, tokens/s without and with a constraint (385M shape)"
  {
    serve_385m 18030
    schema='{"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object","properties":{"values":{"type":"array","items":{"type":"integer"},"minItems":48,"maxItems":48},"label":{"type":"string","maxLength":40}},"required":["values","label"]}}}}'
    regex='{"regex":"([a-z]{2,8} ){40}[a-z]{2,8}[.]"}'
    for name in none json_schema regex; do
      case $name in
        none) extra=() ;;
        json_schema) extra=(--extra-body "$schema") ;;
        regex) extra=(--extra-body "$regex") ;;
      esac
      echo "-- $name"
      python3 tools/loadgen/loadgen.py --port 18030 --corpus $corpus --concurrency 64 --duration 20 \
        --input-tokens 256 --output-tokens 512 --no-ignore-eos --quiet "${extra[@]}" \
        --json "$OUT/constraints_$name.json" | tail -14
    done
    kill -TERM $server_pid; wait $server_pid
  } 2>&1 | tee "$OUT/constraints.txt"
fi

if has priority; then
  echo "== priority and preemption on the GPU (tests/server/integration/priority_tests.py, --device cuda)"
  mkdir -p /tmp/tnl/prio
  cp -r /tmp/tnl/models/tiny-model /tmp/tnl/prio/  # made by tools/bundle_gpu.sh (no spm_train here)
  TNL_SERVER_BIN="$B/tnl-server" TNL_MAKE_TEST_MODEL_BIN="$B/tnl-make-test-model" TNL_SOURCE_DIR="$PWD" \
    TNL_TEST_WORK_DIR=/tmp/tnl/prio TNL_TEST_DEVICE=cuda python3 tests/server/integration/priority_tests.py 2>&1 |
    grep -vE "^\[" | tee "$OUT/priority.txt"
fi

if has tp; then
  echo "== tensor parallelism on one GPU (--tensor-parallel-comm single-device)"
  {
    "$B/cuda_tensor_parallel_test" 2>&1 | grep -E "rel err|^\[  |Failure|Skipped|needs"
    "$B/cuda_elementwise_test" --gtest_filter='*Rank*:*Shard*:*Split*' 2>&1 | grep -E "^\[  (PASSED|FAILED)|Failure"
    m=models/tnl-brown-12m
    tp2=(--tensor-parallel-size 2 --tensor-parallel-comm single-device)
    for args in "" "${tp2[*]}"; do
      echo "tnl-generate --device cuda $args:"
      "$B/tnl-generate" --model $m --prompt "The jury said" --temperature 0 --max-tokens 48 --device cuda $args 2>/dev/null
    done
    "$B/tnl-eval" --model $m --file tests/data/heldout_slice.txt --json --device cuda > /tmp/tp1.json
    "$B/tnl-eval" --model $m --file tests/data/heldout_slice.txt --json --device cuda "${tp2[@]}" > /tmp/tp2.json
    echo "tnl-eval, default model, TP = 2 (single-device) against TP = 1:"
    python3 tools/compare_eval.py /tmp/tp2.json /tmp/tp1.json
    r=/tmp/m385
    "$B/tnl-make-test-model" --out $r --layers 24 --dim 1024 --heads 8 --hidden 1024 --glu 2816 --vocab 64000 \
      --lrpe 1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0 --dtype bf16 --seed 1 > /dev/null
    cp $m/tokenizer.model $m/tokenizer_config.json $r/
    head -c 6000 tests/data/heldout_slice.txt > /tmp/text385.txt
    "$B/tnl-eval" --model $r --file /tmp/text385.txt --json --device cuda > /tmp/e1.json
    for n in 2 4; do
      "$B/tnl-eval" --model $r --file /tmp/text385.txt --json --device cuda --tensor-parallel-size $n \
        --tensor-parallel-comm single-device > /tmp/e$n.json
      echo "tnl-eval, random 385M-shape model, TP = $n (single-device) against TP = 1:"
      python3 tools/compare_eval.py /tmp/e$n.json /tmp/e1.json
    done
    echo "tnl-server ${tp2[*]}:"
    "$B/tnl-server" --model $m --device cuda --port 18001 --grpc-port -1 "${tp2[@]}" > "$OUT/server_tp.log" 2>&1 &
    pid=$!
    PYTHONUNBUFFERED=1 python3 tools/device_server_check.py http://127.0.0.1:18001
    kill -TERM $pid; wait $pid; echo "server exit: $?"
    grep -E "backend|tensor parallelism|error" "$OUT/server_tp.log" | head -8
    for n in 1 2; do
      echo "tnl-bench, 385M shape, TP = $n:"
      "$B/tnl-bench" --config tools/bench/configs/tnl-385m.json --skip-kernels --prefill-lengths 2048 8192 \
        --batches 1 16 64 --contexts 512 --reps 10 --tensor-parallel-size $n --tensor-parallel-comm single-device \
        --json "$OUT/bench_tp$n.json" 2>&1 | grep -vE "^\[.*info\]" | tail -20
    done
  } 2>&1 | tee "$OUT/tp.txt"
fi

if has bench7b; then
  echo "== tnl-bench, 7B shape (engine: decode and prefill)"
  "$B/tnl-bench" --config tools/bench/configs/tnl-7b.json --skip-kernels --prefill-lengths 2048 8192 \
    --batches 1 16 64 --contexts 512 --reps 10 --json "$OUT/bench_7b.json" 2>&1 | grep -vE "^\[.*info\]" |
    tee "$OUT/bench_7b.txt"
fi

if has bench; then
  echo "== tnl-bench, 385M shape"
  "$B/tnl-bench" --config tools/bench/configs/tnl-385m.json --json "$OUT/bench_385m.json" 2>&1 | tee "$OUT/bench_385m.txt"
fi

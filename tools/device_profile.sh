#!/usr/bin/env bash
# Runs on the GPU machine: Nsight Compute per-kernel time summaries of the engine
# steps that tnl-bench times (prefill n=8192, or the lengths of
# TNL_PROFILE_PREFILL_LENGTHS, and six conversation turns unless TNL_PROFILE_PREFILL=0;
# decode at batch 1 and 256, or the batches of TNL_PROFILE_DECODE_BATCHES; 385M shape), one
# summary per scenario, each restricted to that figure's NVTX range.
# Needs the bundle of tools/bundle_gpu.sh. Output under $OUT.
set -uo pipefail
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT" /tmp/tnl
[ -x /tmp/tnl/bin/tnl-bench ] || tar -C /tmp/tnl -xJf .carry/bundle.tar.xz
export LD_LIBRARY_PATH=/tmp/tnl/lib:/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu
bench="/tmp/tnl/bin/tnl-bench --config tools/bench/configs/tnl-385m.json --skip-kernels --reps 5"
profile() {  # name, range, bench args...
  local name=$1 range=$2
  shift 2
  ncu --clock-control none --nvtx --nvtx-include "$range/" --metrics gpu__time_duration.sum \
      --print-summary per-kernel $bench "$@" > "$OUT/ncu_$name.txt" 2>&1
  echo "== $name ($range): $(grep -c 'gpu__time_duration.sum' "$OUT/ncu_$name.txt") kernels summarised"
}
# Prompts, one summary per length (TNL_PROFILE_PREFILL_LENGTHS, default 8192).
if [ "${TNL_PROFILE_SUMMARY:-1}${TNL_PROFILE_PREFILL:-1}" = 11 ]; then
  for n in ${TNL_PROFILE_PREFILL_LENGTHS:-8192}; do
    profile "prefill$n" "prefill n=$n" --skip-decode --prefill-lengths "$n"
  done
fi
# What a burst of prefix-cache hits costs: six conversations' 512-token turns on
# states at 4,096 in one step (the range holds that step alone).
[ "${TNL_PROFILE_SUMMARY:-1}${TNL_PROFILE_PREFILL:-1}" = 11 ] && profile turn6 "turn 6x512 at 4096" --skip-decode --prefill-lengths 512 --turn-batches 6
# Decode steps, one summary per batch size (TNL_PROFILE_DECODE_BATCHES, default "1 256").
if [ "${TNL_PROFILE_SUMMARY:-1}" = 1 ]; then
  for b in ${TNL_PROFILE_DECODE_BATCHES:-1 256}; do
    profile "decode_b$b" "decode b=$b ctx=64" --skip-prefill --batches "$b" --contexts 64
  done
fi

# Detailed sections of single kernels: where the time goes inside them.
detail() {  # name, kernel regex, launches to skip, bench args...
  local name=$1 kernel=$2 skip=$3
  shift 3
  ncu --clock-control none -k "regex:$kernel" --launch-skip "$skip" --launch-count 2 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats \
      --section ComputeWorkloadAnalysis --section LaunchStats $bench "$@" > "$OUT/ncu_detail_$name.txt" 2>&1
  echo "== detail $name: $(grep -c 'Section: ' "$OUT/ncu_detail_$name.txt") sections"
}
if [ "${TNL_PROFILE_DETAIL:-0}" = 1 ]; then
  detail decode_b256 recurrent_decode 30 --skip-prefill --batches 256 --contexts 64
  bench="/tmp/tnl/bin/tnl-bench --config tools/bench/configs/tnl-385m.json --skip-engine --reps 3"
  detail lightning "lightning_(wgmma_)?kernel" 2 --prefill-attn-lengths 32768 --decode-kernel-batches 1
fi
# The sampling kernel on tnl-bench's top-p rows (256 × 64k, T=0.8, top-p 0.9): its
# greedy figure launches it 23 times first, so launch 26 is a top-p one. Source
# counters say which instructions the warps stall on.
if [ "${TNL_PROFILE_SAMPLING:-0}" = 1 ]; then
  sample_top_p() {  # ncu options... : one top-p launch of the kernel bench, profiled
    ncu --clock-control none -k "regex:sample_rows_kernel" --launch-skip 26 --launch-count 1 "$@" \
        /tmp/tnl/bin/tnl-bench --config tools/bench/configs/tnl-385m.json --skip-engine --reps 3 \
        --prefill-attn-lengths 1024 --decode-kernel-batches 1
  }
  sample_top_p --section SpeedOfLight --section Occupancy --section WarpStateStats --section ComputeWorkloadAnalysis \
      --section LaunchStats --section SourceCounters --section InstructionStats > "$OUT/ncu_sampling.txt" 2>&1
  echo "== detail sampling: $(grep -c 'Section: ' "$OUT/ncu_sampling.txt") sections"
  # Per-instruction counts (SASS): which loops the warps spend their issue slots in.
  sample_top_p --section SourceCounters --page source --print-source sass --csv 2>&1 | gzip > "$OUT/ncu_sampling_sass.csv.gz"
  echo "== sampling SASS page: $(zcat "$OUT/ncu_sampling_sass.csv.gz" | wc -l) lines"
fi

#!/usr/bin/env bash
# ASan + UBSan: builds the project without CUDA into ./build-asan and runs the
# unit and integration tests there (tools/test.sh calls it last). Leaks are
# reported too. TNL_TEST_SANITIZED tells the tests that assert memory or timing
# bounds (hardening tests) to skip only those bounds: the sanitizers' shadow
# memory, quarantine and slowdown would trip them; the code paths still run.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTNL_CUDA=OFF -DTNL_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tools/sanitizer/lsan.supp:print_suppressions=0"
export TNL_TEST_SANITIZED=1
ctest --test-dir build-asan --output-on-failure -j "$(nproc)" --timeout 1800

#!/usr/bin/env bash
# One command: install dependencies, build, run every test (CPU; GPU tests skip
# without a GPU), then build the same tests with AddressSanitizer + UBSan and run
# the unit and integration tests again under them. This is the command the README
# gives and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
bash tools/test_sanitized.sh

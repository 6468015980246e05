#!/usr/bin/env bash
# Configures and builds tnl-serve into ./build (Release). CUDA sources build too
# when nvcc is found; the binaries then run on a GPU machine or fall back to CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"

#!/usr/bin/env bash
# Configures and builds tnl-serve into ./build (Release). CUDA sources build too
# when nvcc is found; the binaries then run on a GPU machine or fall back to CPU.
# TNL_CUDA_ARCHS picks the GPU targets (default 90a: H100/H200; e.g. "80;89;90a").
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTNL_CUDA_ARCHS="${TNL_CUDA_ARCHS:-90a}" >/dev/null
cmake --build build -j "$jobs"

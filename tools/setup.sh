#!/usr/bin/env bash
# Installs every build and test dependency of tnl-serve from Debian packages.
# Idempotent and non-interactive: safe to run on every build. CUDA is optional and
# comes from the CUDA toolkit already on the machine (never installed here).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libspdlog-dev libfmt-dev
  libsimdjson-dev          # simdjson: request bodies parsed at GB/s (server/api/json_body.h)
  libsentencepiece-dev sentencepiece
  libgtest-dev libgmock-dev
  libopenblas-openmp-dev   # CPU BLAS for the reference backend (OpenMP build: nests under our OpenMP loops)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev             # Boost.Beast/Asio: the async HTTP front end
  libcli11-dev             # CLI11: command-line parsing for every tool
  libgoogle-perftools-dev  # tcmalloc_minimal: tnl-server's allocator (server/CMakeLists.txt)
  clang libclang-rt-14-dev # libFuzzer for the parser fuzz targets
  curl python3
  python3-grpcio python3-protobuf  # tnl-loadgen's gRPC client (tools/loadgen, for /usr/bin/python3)
)

# node and npm run the OpenAI Node SDK test (tests/server/sdk); a machine that has
# them already (e.g. NodeSource's nodejs, which bundles npm) keeps its own.
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all dependencies present"

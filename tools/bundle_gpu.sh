#!/usr/bin/env bash
# Builds the GPU binaries on this (CPU-only) machine and bundles them, with the
# non-system shared libraries they need, into .carry/bundle.tar.xz for a GPU
# machine that has the CUDA driver, cuBLAS and NCCL but none of Debian's
# gRPC/Protobuf/spdlog/fmt/SentencePiece (see docs/operations.md, "GPU machine").
#
# Usage: bash tools/bundle_gpu.sh     (then carry .carry to the GPU machine and
#        unpack: tar -C DIR -xJf .carry/bundle.tar.xz; bin/ and lib/ inside)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
[ -f build/engine/libtnl_cuda_backend.a ] || { echo "bundle_gpu: this build has no CUDA backend (nvcc not found)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"

# The tools, and the tests that exercise the GPU (they skip elsewhere).
bins=(build/server/tnl-server build/tools/tnl-generate build/tools/tnl-eval build/tools/tnl-make-test-model
      build/tools/tnl-bench build/tools/tnl-host-bench)
for t in build/tests/*cuda*_test build/tests/unit/*cuda*_test; do [ -x "$t" ] && bins+=("$t"); done
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "bundle_gpu: missing $b" >&2; exit 1; }
  cp "$b" "$stage/bin/"
done
strip --strip-debug "$stage"/bin/* 2>/dev/null || true

# Shared libraries from Debian that the GPU machine lacks. Left behind: the C
# runtime (the machine's glibc is newer) and the CUDA libraries it has itself.
skip='^(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux.*|libcuda|libcublas|libcublasLt|libcudart|libnccl)\.so'
for b in "$stage"/bin/*; do
  ldd "$b" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  name=$(basename "$lib")
  [[ "$name" =~ $skip ]] && continue
  cp -L "$lib" "$stage/lib/$name"
done

# The integration tests' tiny model: its tokenizer needs spm_train, which the GPU
# machine lacks (tests/server/integration/server_harness.py finds it built).
mkdir -p "$stage/models"
build/tools/tnl-make-test-model --out "$stage/models/tiny-model" --tokenizer-corpus tests/data/tokenizer_corpus.txt \
  --layers 2 --dim 32 --heads 2 --vocab 512 --seed 7 > /dev/null

mkdir -p .carry
tar -C "$stage" -cJf .carry/bundle.tar.xz bin lib models
echo "bundle_gpu: .carry/bundle.tar.xz $(du -h .carry/bundle.tar.xz | cut -f1) ($(ls "$stage/bin" | wc -l) binaries, $(ls "$stage/lib" | wc -l) libraries)"

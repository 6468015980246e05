#!/usr/bin/env bash
# One command: install dependencies, build, and start the main job on the default
# model (CUDA backend when a GPU is present, else CPU). Extra arguments go to it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
model=${TNL_MODEL:-$(ls -d models/*/ 2>/dev/null | head -n 1)}
model=${model%/}
if [ -z "$model" ]; then
  # No trained model in this checkout: serve a small random one (prints noise).
  model=build/default-random-model
  [ -f "$model/config.json" ] || build/tools/tnl-make-test-model --out "$model" \
      --tokenizer-corpus tests/data/tokenizer_corpus.txt --seed 1
fi
if [ -x build/server/tnl-server ]; then
  exec build/server/tnl-server --model "$model" --host "${TNL_HOST:-127.0.0.1}" --port "${TNL_PORT:-8000}" "$@"
fi
exec build/tools/tnl-generate --model "$model" --prompt "${TNL_PROMPT:-The}" "$@"

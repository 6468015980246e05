#!/usr/bin/env bash
# SentencePiece BPE with byte fallback on the Brown training split (Debian's spm_train).
# identity normalisation and no whitespace folding: decode(encode(text)) == text, and
# newlines reach the model as the byte piece <0x0A> (as in the LLaMA-style tokenizers).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?usage: train_tokenizer.sh OUT_DIR [VOCAB]}"
vocab="${2:-4096}"
mkdir -p "$out"
tmp="$(mktemp -d)"
spm_train --input="$root/data/brown/train.txt" --model_prefix="$tmp/tokenizer" \
  --vocab_size="$vocab" --model_type=bpe --byte_fallback=true \
  --pad_id=0 --bos_id=1 --eos_id=2 --unk_id=3 \
  --character_coverage=1.0 --normalization_rule_name=identity --remove_extra_whitespaces=false \
  --split_digits=true --max_sentence_length=16384 --input_sentence_size=0 \
  --shuffle_input_sentence=false --num_threads=1 --minloglevel=1
cp "$tmp/tokenizer.model" "$out/tokenizer.model"
rm -rf "$tmp"
printf '{"add_bos_token": true, "add_eos_token": false}\n' > "$out/tokenizer_config.json"

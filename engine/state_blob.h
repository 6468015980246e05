// State blobs: a sequence's decode state as a self-describing, versioned file, so
// that a conversation can continue on another replica or after a restart.
//
// Layout (little-endian):
//   "TNLSTATE"                       8 bytes of magic
//   u32 version (1), u32 header bytes (≤ 64 KiB)
//   header: JSON {"model": fingerprint, "dtype": "f32", "layout": {"layers",
//           "heads", "head_dim", "key_dims": [..], "order": "layer,head,key,value"},
//           "tokens": n, "tokens_hash": 16 hex digits, "state_bytes": B,
//           "logits": V or 0}
//   tokens: n × u32                  the token ids the state has seen
//   state:  B bytes of fp32          per layer, per head, S [e_k, e] row-major
//   logits: V × f32 (when present)   the row that followed the last token
//   u64 checksum                     FNV-1a over every byte before it
//
// A blob is untrusted input: parse_state_blob() checks every size, the checksum,
// the model fingerprint, the layout, the token ids and the tokens' hash, and that
// every number is finite, and answers a clear error otherwise (it is fuzzed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/status.h"

namespace tnl {

// What a blob must match to be loaded into this engine.
struct StateBlobLayout {
  std::string model_fingerprint;  // Checkpoint::fingerprint()
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;
  std::vector<int64_t> key_dims;  // per layer
  int64_t vocab_size = 0;
  int64_t max_tokens = 0;         // the engine's max_model_len
  int64_t state_bytes() const;    // Σ_ℓ heads · key_dims[ℓ] · head_dim · 4
};

struct StateBlob {
  std::vector<int32_t> tokens;
  std::vector<std::byte> state;  // state_bytes()
  std::vector<float> logits;     // empty, or vocab_size values
};

inline constexpr uint32_t kStateBlobVersion = 1;
inline constexpr size_t kStateBlobMaxHeaderBytes = 64 * 1024;

// Hash of a token sequence written into blobs (FNV-1a over the ids as u32).
uint64_t state_tokens_hash(std::span<const int32_t> tokens);

std::string write_state_blob(const StateBlobLayout& layout, const StateBlob& blob);
Expected<StateBlob> parse_state_blob(std::span<const std::byte> bytes, const StateBlobLayout& expected);
// The largest blob `layout` allows (max_tokens, logits): front ends bound uploads with it.
int64_t max_state_blob_bytes(const StateBlobLayout& layout);

}  // namespace tnl

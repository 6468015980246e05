// ModelConfig: the validated contents of a checkpoint's config.json
// (model-spec §2), plus the quantities derived from it (head width, decay).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/status.h"
#include "kernels/activation.h"

namespace tnl {

struct ModelConfig {
  int64_t vocab_size = 0;      // V
  int64_t dim = 0;             // d, decoder_embed_dim
  int64_t num_layers = 0;      // L
  int64_t num_heads = 0;       // H
  int64_t hidden_dim = 0;      // D, attention inner width
  int64_t glu_dim = 0;         // G (resolved: -1 in the file means d)
  Activation activation = Activation::kSilu;
  bool simple_rms_norm = true; // false: LayerNorm (not supported by the engine; rejected at load)
  std::vector<bool> lrpe_layers;  // size L; true where the layer uses LRPE
  bool scale_embedding = true;    // !no_scale_embedding: multiply embeddings by sqrt(d)
  bool bias = false;
  bool tie_word_embeddings = true;
  int32_t pad_token_id = 0;
  int32_t bos_token_id = 1;
  int32_t eos_token_id = 2;
  // config.json keys the engine neither uses nor knows (ignored; load_model_config
  // warns once per key, as Hugging Face does).
  std::vector<std::string> unknown_fields;

  int64_t head_dim() const { return hidden_dim / num_heads; }  // e
  // Key width of a layer's state: 2e on LRPE layers (cos and sin halves), else e.
  int64_t key_dim(int64_t layer) const { return lrpe_layers[layer] ? 2 * head_dim() : head_dim(); }
  // fp32 values of one sequence's decode state in a layer: H·e_k(ℓ)·e (model-spec §5.2).
  int64_t state_floats(int64_t layer) const { return num_heads * key_dim(layer) * head_dim(); }
  // fp32 decode-state bytes of one sequence: Σ_ℓ state_floats(ℓ)·4.
  int64_t state_bytes_per_sequence() const;
  // Parameter count (for logs and the benchmark's floors).
  int64_t num_parameters() const;
};

// Parses and validates config.json text. `source` names the file in errors. A
// field that changes the math is checked for type and consistency; a known
// informational field (torch_dtype, dtype, architectures, ...) for type; any other
// field is recorded in unknown_fields and otherwise ignored.
Expected<ModelConfig> parse_model_config(const std::string& json_text, const std::string& source);
// Reads and parses `dir/config.json`.
Expected<ModelConfig> load_model_config(const std::filesystem::path& dir);
// Writes a config.json that parse_model_config reads back to the same config.
std::string model_config_to_json(const ModelConfig& config);

// The smallest valid shape (one layer, widths of 8) with this vocabulary and EOS:
// the config of backends that compute nothing (test fakes, tnl-host-bench).
ModelConfig tiny_model_config(int64_t vocab_size, int32_t eos_token_id);

Activation parse_activation(const std::string& name);
const char* activation_name(Activation a);

// ALiBi-derived per-head slopes s_h (model-spec §4), h = 0…H-1, computed in double.
std::vector<double> alibi_slopes(int64_t num_heads);
// s_{ℓ,h} = s_h · (1 − ℓ/(L−1) + 1e-5): the decay rate of layer ℓ, head h.
// λ = exp(−s); λ^k is always computed as exp(−s·k).
std::vector<double> decay_rates(const ModelConfig& config, int64_t layer);

}  // namespace tnl

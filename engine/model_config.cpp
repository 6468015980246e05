#include "engine/model_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace tnl {
namespace {

using nlohmann::json;

// Fields that change the math: read, type-checked and validated below.
const char* const kModelFields[] = {
    "vocab_size", "decoder_embed_dim", "decoder_layers", "decoder_attention_heads", "hidden_dim", "glu_dim",
    "linear_act_fun", "norm_type", "linear_use_lrpe_list", "no_scale_embedding", "bias", "tie_word_embeddings",
    "pad_token_id", "bos_token_id", "eos_token_id", "model_type"};

// Informational fields the Hugging Face ecosystem writes: not used, but a wrong
// type still means a broken file. Anything else is ignored with a warning
// (model-spec §2: current transformers writes `dtype`; fine-tunes add their keys).
enum class JsonKind { kString, kBool, kNumber, kInteger, kArray, kObject };
struct InformationalField {
  const char* name;
  JsonKind kind;
};
const InformationalField kInformationalFields[] = {
    {"architectures", JsonKind::kArray},        {"auto_map", JsonKind::kObject},
    {"torch_dtype", JsonKind::kString},         {"dtype", JsonKind::kString},
    {"transformers_version", JsonKind::kString}, {"use_cache", JsonKind::kBool},
    {"init_std", JsonKind::kNumber},            {"act_dropout", JsonKind::kNumber},
    {"dropout", JsonKind::kNumber},             {"glu_act", JsonKind::kString},
    {"glu_dropout", JsonKind::kNumber},         {"norm_eps", JsonKind::kNumber},
    {"add_bos_token", JsonKind::kBool},         {"max_position_embeddings", JsonKind::kInteger},
    {"decoder_embed_dim_scale", JsonKind::kNumber}, {"initializer_range", JsonKind::kNumber},
    {"_name_or_path", JsonKind::kString},       {"output_attentions", JsonKind::kBool},
    {"output_hidden_states", JsonKind::kBool},  {"return_dict", JsonKind::kBool},
};

bool is_model_field(const std::string& key) {
  for (const char* k : kModelFields) {
    if (key == k) return true;
  }
  return false;
}

const InformationalField* find_informational(const std::string& key) {
  for (const InformationalField& f : kInformationalFields) {
    if (key == f.name) return &f;
  }
  return nullptr;
}

bool has_kind(const json& v, JsonKind kind) {
  switch (kind) {
    case JsonKind::kString: return v.is_string();
    case JsonKind::kBool: return v.is_boolean();
    case JsonKind::kNumber: return v.is_number();
    case JsonKind::kInteger: return v.is_number_integer();
    case JsonKind::kArray: return v.is_array();
    case JsonKind::kObject: return v.is_object();
  }
  return false;
}

const char* kind_name(JsonKind kind) {
  switch (kind) {
    case JsonKind::kString: return "a string";
    case JsonKind::kBool: return "a boolean";
    case JsonKind::kNumber: return "a number";
    case JsonKind::kInteger: return "an integer";
    case JsonKind::kArray: return "a list";
    case JsonKind::kObject: return "an object";
  }
  return "?";
}

template <typename T>
Status read_field(const json& j, const char* key, T* out, bool required, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return invalid_argument(source + ": missing required field \"" + key + "\"");
    return Status::ok();
  }
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) throw std::runtime_error("expected a boolean");
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) throw std::runtime_error("expected an integer");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) throw std::runtime_error("expected a string");
    }
    *out = it->get<T>();
  } catch (const std::exception& e) {
    return invalid_argument(source + ": field \"" + key + "\": " + e.what());
  }
  return Status::ok();
}

}  // namespace

Activation parse_activation(const std::string& name) {
  if (name == "silu" || name == "swish") return Activation::kSilu;
  if (name == "1+elu") return Activation::kOnePlusElu;
  if (name == "relu") return Activation::kRelu;
  if (name == "elu") return Activation::kElu;
  if (name == "sigmoid") return Activation::kSigmoid;
  return Activation::kIdentity;  // model-spec §2: anything else is identity
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::kSilu: return "silu";
    case Activation::kOnePlusElu: return "1+elu";
    case Activation::kRelu: return "relu";
    case Activation::kElu: return "elu";
    case Activation::kSigmoid: return "sigmoid";
    case Activation::kIdentity: return "identity";
  }
  return "identity";
}

int64_t ModelConfig::state_bytes_per_sequence() const {
  int64_t total = 0;
  for (int64_t l = 0; l < num_layers; ++l) total += state_floats(l) * int64_t(sizeof(float));
  return total;
}

int64_t ModelConfig::num_parameters() const {
  const int64_t per_layer = 4 * hidden_dim * dim + dim * hidden_dim + 3 * glu_dim * dim;
  int64_t lrpe = 0;
  for (bool on : lrpe_layers) lrpe += on ? hidden_dim : 0;
  return vocab_size * dim * (tie_word_embeddings ? 1 : 2) + num_layers * per_layer + lrpe;
}

Expected<ModelConfig> parse_model_config(const std::string& json_text, const std::string& source) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(source + ": not valid JSON");
  if (!j.is_object()) return invalid_argument(source + ": expected a JSON object");

  if (auto it = j.find("model_type"); it != j.end() && it->is_string() && *it != "transnormer") {
    return invalid_argument(source + ": model_type is \"" + it->get<std::string>() +
                            "\", expected \"transnormer\"");
  }
  ModelConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (is_model_field(it.key())) continue;
    const InformationalField* info = find_informational(it.key());
    if (info == nullptr) {
      c.unknown_fields.push_back(it.key());
    } else if (!it->is_null() && !has_kind(*it, info->kind)) {
      return invalid_argument(source + ": field \"" + it.key() + "\" must be " + kind_name(info->kind));
    }
  }
  std::string act = "silu", norm = "simplermsnorm";
  bool no_scale_embedding = false;
  std::vector<int> lrpe;
  TNL_RETURN_IF_ERROR(read_field(j, "vocab_size", &c.vocab_size, true, source));
  TNL_RETURN_IF_ERROR(read_field(j, "decoder_embed_dim", &c.dim, true, source));
  TNL_RETURN_IF_ERROR(read_field(j, "decoder_layers", &c.num_layers, true, source));
  TNL_RETURN_IF_ERROR(read_field(j, "decoder_attention_heads", &c.num_heads, true, source));
  c.hidden_dim = -1;
  TNL_RETURN_IF_ERROR(read_field(j, "hidden_dim", &c.hidden_dim, false, source));
  c.glu_dim = -1;
  TNL_RETURN_IF_ERROR(read_field(j, "glu_dim", &c.glu_dim, false, source));
  TNL_RETURN_IF_ERROR(read_field(j, "linear_act_fun", &act, false, source));
  TNL_RETURN_IF_ERROR(read_field(j, "norm_type", &norm, false, source));
  TNL_RETURN_IF_ERROR(read_field(j, "no_scale_embedding", &no_scale_embedding, false, source));
  TNL_RETURN_IF_ERROR(read_field(j, "bias", &c.bias, false, source));
  TNL_RETURN_IF_ERROR(read_field(j, "tie_word_embeddings", &c.tie_word_embeddings, false, source));
  TNL_RETURN_IF_ERROR(read_field(j, "pad_token_id", &c.pad_token_id, false, source));
  TNL_RETURN_IF_ERROR(read_field(j, "bos_token_id", &c.bos_token_id, false, source));
  TNL_RETURN_IF_ERROR(read_field(j, "eos_token_id", &c.eos_token_id, false, source));
  if (auto it = j.find("linear_use_lrpe_list"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return invalid_argument(source + ": \"linear_use_lrpe_list\" must be a list of 0/1");
    for (const auto& v : *it) {
      if (!(v.is_number_integer() || v.is_boolean())) {
        return invalid_argument(source + ": \"linear_use_lrpe_list\" must be a list of 0/1");
      }
      int x = v.is_boolean() ? int(v.get<bool>()) : v.get<int>();
      if (x != 0 && x != 1) return invalid_argument(source + ": \"linear_use_lrpe_list\" entries must be 0 or 1");
      lrpe.push_back(x);
    }
  }

  auto positive = [&](const char* name, int64_t v) -> Status {
    if (v <= 0) return invalid_argument(source + ": \"" + name + "\" must be positive, got " + std::to_string(v));
    return Status::ok();
  };
  TNL_RETURN_IF_ERROR(positive("vocab_size", c.vocab_size));
  TNL_RETURN_IF_ERROR(positive("decoder_embed_dim", c.dim));
  TNL_RETURN_IF_ERROR(positive("decoder_layers", c.num_layers));
  TNL_RETURN_IF_ERROR(positive("decoder_attention_heads", c.num_heads));
  if (c.hidden_dim == -1) c.hidden_dim = c.dim;
  if (c.glu_dim == -1) c.glu_dim = c.dim;
  TNL_RETURN_IF_ERROR(positive("hidden_dim", c.hidden_dim));
  TNL_RETURN_IF_ERROR(positive("glu_dim", c.glu_dim));
  if (c.hidden_dim % c.num_heads != 0) {
    return invalid_argument(source + ": hidden_dim " + std::to_string(c.hidden_dim) +
                            " is not divisible by decoder_attention_heads " + std::to_string(c.num_heads));
  }
  if (c.num_layers < 2) {
    // The per-layer decay s·(1 − ℓ/(L−1)) divides by L−1.
    return invalid_argument(source + ": decoder_layers must be at least 2 (the decay formula divides by L-1)");
  }
  const int64_t limit = int64_t{1} << 24;  // absurd sizes are file errors, not allocations
  if (c.vocab_size > limit || c.dim > limit || c.hidden_dim > limit || c.glu_dim > limit ||
      c.num_layers > 4096 || c.num_heads > 4096) {
    return invalid_argument(source + ": a size field is implausibly large");
  }
  c.activation = parse_activation(act);
  if (norm != "simplermsnorm") {
    return invalid_argument(source + ": norm_type \"" + norm +
                            "\" is not supported (only \"simplermsnorm\", as in the released models)");
  }
  c.simple_rms_norm = true;
  c.scale_embedding = !no_scale_embedding;
  if (!lrpe.empty() && static_cast<int64_t>(lrpe.size()) != c.num_layers) {
    return invalid_argument(source + ": linear_use_lrpe_list has " + std::to_string(lrpe.size()) +
                            " entries but decoder_layers is " + std::to_string(c.num_layers));
  }
  c.lrpe_layers.assign(c.num_layers, false);
  for (size_t i = 0; i < lrpe.size(); ++i) c.lrpe_layers[i] = lrpe[i] != 0;
  for (int32_t id : {c.pad_token_id, c.bos_token_id, c.eos_token_id}) {
    if (id < 0 || id >= c.vocab_size) {
      return invalid_argument(source + ": special token id " + std::to_string(id) + " is outside the vocabulary");
    }
  }
  return c;
}

Expected<ModelConfig> load_model_config(const std::filesystem::path& dir) {
  const auto path = dir / "config.json";
  std::ifstream in(path);
  if (!in) return not_found(path.string() + ": cannot open (is this a checkpoint directory?)");
  std::stringstream ss;
  ss << in.rdbuf();
  Expected<ModelConfig> config = parse_model_config(ss.str(), path.string());
  if (config.has_value()) {
    for (const std::string& field : config->unknown_fields) {
      spdlog::warn("{}: ignoring unknown field \"{}\" (not used by the engine)", path.string(), field);
    }
  }
  return config;
}

std::string model_config_to_json(const ModelConfig& c) {
  json j;
  j["model_type"] = "transnormer";
  j["vocab_size"] = c.vocab_size;
  j["decoder_embed_dim"] = c.dim;
  j["decoder_layers"] = c.num_layers;
  j["decoder_attention_heads"] = c.num_heads;
  j["hidden_dim"] = c.hidden_dim;
  j["glu_dim"] = c.glu_dim;
  j["linear_act_fun"] = activation_name(c.activation);
  j["norm_type"] = "simplermsnorm";
  std::vector<int> lrpe;
  for (bool b : c.lrpe_layers) lrpe.push_back(b ? 1 : 0);
  j["linear_use_lrpe_list"] = lrpe;
  j["no_scale_embedding"] = !c.scale_embedding;
  j["bias"] = c.bias;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["pad_token_id"] = c.pad_token_id;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_id;
  return j.dump(2) + "\n";
}

std::vector<double> alibi_slopes(int64_t num_heads) {
  auto power_of_two_slopes = [](int64_t n) {
    std::vector<double> s(n);
    for (int64_t h = 0; h < n; ++h) s[h] = std::pow(2.0, -8.0 * double(h + 1) / double(n));
    return s;
  };
  int64_t p = 1;
  while (p * 2 <= num_heads) p *= 2;
  if (p == num_heads) return power_of_two_slopes(num_heads);
  // Not a power of two: the p slopes, then every other slope of the 2p list.
  std::vector<double> slopes = power_of_two_slopes(p);
  std::vector<double> extra = alibi_slopes(2 * p);
  for (size_t i = 0; static_cast<int64_t>(slopes.size()) < num_heads; i += 2) slopes.push_back(extra[i]);
  return slopes;
}

std::vector<double> decay_rates(const ModelConfig& config, int64_t layer) {
  std::vector<double> s = alibi_slopes(config.num_heads);
  const double factor = 1.0 - double(layer) / double(config.num_layers - 1) + 1e-5;
  for (double& x : s) x *= factor;
  return s;
}

ModelConfig tiny_model_config(int64_t vocab_size, int32_t eos_token_id) {
  ModelConfig c;
  c.vocab_size = vocab_size;
  c.dim = 8;
  c.num_layers = 1;
  c.num_heads = 1;
  c.hidden_dim = 8;
  c.glu_dim = 8;
  c.lrpe_layers = {false};
  c.eos_token_id = eos_token_id;
  return c;
}

}  // namespace tnl

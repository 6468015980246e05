#include "engine/checkpoint/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/checkpoint/mapped_file.h"
#include "engine/checkpoint/safetensors_header.h"
#include "engine/checkpoint/shard_index.h"
#include "engine/checkpoint/tensor_names.h"

namespace tnl {
namespace {

uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

std::string fingerprint_of(const ModelConfig& config, const std::map<std::string, TensorView>& tensors) {
  const std::string config_json = model_config_to_json(config);
  uint64_t h = fnv1a(config_json.data(), config_json.size(), 0xcbf29ce484222325ull);
  constexpr int64_t kSample = 4096;
  for (const auto& [name, t] : tensors) {  // std::map: sorted, so the order is fixed
    h = fnv1a(name.data(), name.size(), h);
    const char* dtype = dtype_name(t.dtype);
    h = fnv1a(dtype, std::strlen(dtype), h);
    h = fnv1a(t.shape.data(), t.shape.size() * sizeof(int64_t), h);
    for (int64_t at : {int64_t(0), t.num_bytes / 2, t.num_bytes - kSample}) {
      const int64_t begin = std::clamp<int64_t>(at, 0, t.num_bytes);
      const int64_t n = std::min(kSample, t.num_bytes - begin);
      h = fnv1a(t.data + begin, size_t(n), h);
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}


namespace fs = std::filesystem;

Expected<std::string> read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return internal_error(path.string() + ": read failed");
  return ss.str();
}

// fs::exists without the exception it throws on e.g. permission errors.
bool file_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Why a tensor the config does not ask for is there, when we can tell.
std::string unexpected_hint(const ModelConfig& c, const std::string& name) {
  if (ends_with(name, ".bias") && !c.bias) return " (config.json has \"bias\": false)";
  if (ends_with(name, kLrpeTheta)) return " (its layer is 0 in \"linear_use_lrpe_list\")";
  return " (not a weight of model-spec §3 for this config.json)";
}

// Checks the loaded tensors against model-spec §3 for `config`. `source` is the
// weights file (or the shard index) named in messages about absent tensors.
Status validate_tensors(const ModelConfig& config, const std::string& source,
                        std::map<std::string, TensorView>* tensors) {
  std::set<std::string> required;
  for (const TensorSpec& spec : required_tensors(config)) {
    auto it = tensors->find(spec.name);
    if (it == tensors->end()) {
      return not_found(source + ": missing tensor \"" + spec.name + "\" (expected shape " +
                       shape_string(spec.shape) + ")");
    }
    if (it->second.shape != spec.shape) {
      return invalid_argument(it->second.file + ": tensor \"" + spec.name + "\": expected shape " +
                              shape_string(spec.shape) + ", got " + shape_string(it->second.shape));
    }
    required.insert(spec.name);
  }
  for (auto it = tensors->begin(); it != tensors->end();) {
    if (required.count(it->first)) {
      ++it;
    } else if (it->first == kLmHeadName && config.tie_word_embeddings) {
      it = tensors->erase(it);  // tied: the output matrix is the embedding; lm_head is ignored
    } else {
      return invalid_argument(it->second.file + ": unexpected tensor \"" + it->first + "\"" +
                              unexpected_hint(config, it->first));
    }
  }
  return Status::ok();
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

Checkpoint::~Checkpoint() = default;

Expected<std::unique_ptr<Checkpoint>> Checkpoint::open(const fs::path& dir) {
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->dir_ = dir;
  TNL_ASSIGN_OR_RETURN(ckpt->config_, load_model_config(dir));

  // Shard file → the tensors the index says it holds (empty set: whatever it holds).
  ShardIndex index;
  std::string source;
  const bool sharded = !file_exists(dir / kSingleWeightsFile) && file_exists(dir / kShardIndexFile);
  if (sharded) {
    source = (dir / kShardIndexFile).string();
    TNL_ASSIGN_OR_RETURN(std::string text, read_text_file(source));
    TNL_ASSIGN_OR_RETURN(index, parse_shard_index(text, source));
  } else {
    source = (dir / kSingleWeightsFile).string();
    if (!file_exists(source)) {
      return not_found(dir.string() + ": no " + kSingleWeightsFile + " and no " + kShardIndexFile);
    }
    index.tensors_by_shard[kSingleWeightsFile] = {};
  }

  for (const auto& [shard, listed] : index.tensors_by_shard) {
    const fs::path path = dir / shard;
    auto file = MappedFile::open(path);
    if (!file) {
      if (!sharded) return file.status();
      return not_found(path.string() + ": shard file missing or unreadable (" + kShardIndexFile +
                       " lists tensor \"" + *listed.begin() + "\" in it): " + file.status().message());
    }
    const std::string file_name = path.string();
    TNL_ASSIGN_OR_RETURN(SafetensorsHeader header, parse_safetensors_header((*file)->bytes(), file_name));
    for (const std::string& name : listed) {
      if (!header.tensors.count(name)) {
        return not_found(file_name + ": missing tensor \"" + name + "\" (" + kShardIndexFile + " places it here)");
      }
    }
    for (const auto& [name, entry] : header.tensors) {
      if (sharded && !listed.count(name)) {
        return invalid_argument(file_name + ": unexpected tensor \"" + name + "\" (not listed for this shard in " +
                                kShardIndexFile + ")");
      }
      TensorView view;
      view.dtype = entry.dtype;
      view.shape = entry.shape;
      view.data = (*file)->bytes().data() + entry.begin;
      view.num_bytes = entry.end - entry.begin;
      view.file = file_name;
      ckpt->tensors_.emplace(name, std::move(view));
    }
    ckpt->files_.push_back(std::move(*file));
  }

  TNL_RETURN_IF_ERROR(validate_tensors(ckpt->config_, source, &ckpt->tensors_));
  // A NaN or Inf weight would load silently and every request would return 200
  // with garbage: refuse the checkpoint, naming the tensor.
  for (const auto& [name, view] : ckpt->tensors_) {
    const int64_t at = first_non_finite(view.dtype, view.data, view.numel());
    if (at >= 0) {
      return data_loss(view.file + ": tensor \"" + name + "\" holds a non-finite value (NaN or Inf) at element " +
                       std::to_string(at) + "; the checkpoint is corrupt");
    }
  }
  ckpt->fingerprint_ = fingerprint_of(ckpt->config_, ckpt->tensors_);
  return ckpt;
}

const TensorView& Checkpoint::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    // A broken caller invariant: open() validated every name of model-spec §3.
    std::fprintf(stderr, "Checkpoint::tensor: no tensor \"%s\" in %s\n", name.c_str(), dir_.c_str());
    std::abort();
  }
  return it->second;
}

const TensorView& Checkpoint::output_matrix() const {
  return tensor(config_.tie_word_embeddings ? kEmbedName : kLmHeadName);
}

std::vector<float> Checkpoint::to_f32(const std::string& name) const {
  const TensorView& t = tensor(name);
  std::vector<float> out(static_cast<size_t>(t.numel()));
  convert_to_f32(t.dtype, t.data, t.numel(), out.data());
  return out;
}

}  // namespace tnl

#include "engine/checkpoint/random_checkpoint.h"

#include <cmath>
#include <fstream>
#include <string_view>
#include <system_error>

#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/tensor_names.h"

namespace tnl {
namespace {

// splitmix64: a small generator with a fixed definition, so checkpoints are
// identical across standard libraries (std:: distributions are not).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in (0, 1): never exactly 0, so log() below is finite.
  double uniform01() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform01(); }
  double normal() {  // Box–Muller; one value per call is plenty for fixtures
    const double r = std::sqrt(-2.0 * std::log(uniform01()));
    return r * std::cos(6.283185307179586 * uniform01());
  }

 private:
  uint64_t state_;
};

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<float> random_values(const ModelConfig& c, const TensorSpec& spec, uint64_t seed) {
  int64_t numel = 1;
  for (int64_t dim : spec.shape) numel *= dim;
  std::vector<float> v(static_cast<size_t>(numel));
  SplitMix64 rng(seed ^ fnv1a(spec.name));
  rng.next();  // decorrelate seeds that differ in few bits

  if (spec.name == kEmbedName) {
    for (float& x : v) x = static_cast<float>(rng.normal());
  } else if (ends_with(spec.name, "lrpe.theta")) {
    // The authors' Lrpe: theta = 10000^(-2/D · arange(D)), D = H·e, viewed as [H, 1, e].
    const double D = static_cast<double>(c.hidden_dim);
    for (int64_t j = 0; j < numel; ++j) {
      v[j] = static_cast<float>(std::pow(10000.0, -2.0 / D * double(j)) * rng.uniform(0.5, 1.5));
    }
  } else if (ends_with(spec.name, ".bias")) {
    for (float& x : v) x = static_cast<float>(rng.uniform(-0.02, 0.02));
  } else {
    // Linear weight [out, in]: nn.Linear's default bound 1/sqrt(in_features).
    const double bound = 1.0 / std::sqrt(static_cast<double>(spec.shape.back()));
    for (float& x : v) x = static_cast<float>(rng.uniform(-bound, bound));
  }
  return v;
}

}  // namespace

std::vector<TensorData> random_checkpoint_tensors(const ModelConfig& config, uint64_t seed, DType dtype) {
  std::vector<TensorData> tensors;
  for (TensorSpec& spec : required_tensors(config)) {
    std::vector<float> values = random_values(config, spec, seed);
    tensors.push_back(tensor_from_f32(std::move(spec.name), std::move(spec.shape), values, dtype));
  }
  return tensors;
}

Status write_random_checkpoint(const std::filesystem::path& dir, const ModelConfig& config, uint64_t seed,
                               DType dtype) {
  // Refuse configs that would not load back (e.g. lrpe_layers of the wrong length).
  const std::string config_json = model_config_to_json(config);
  TNL_RETURN_IF_ERROR(parse_model_config(config_json, "random checkpoint config").status());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return internal_error(dir.string() + ": cannot create directory: " + ec.message());
  {
    const auto config_path = dir / "config.json";
    std::ofstream out(config_path, std::ios::trunc);
    out << config_json;
    out.close();
    if (!out) return internal_error(config_path.string() + ": write failed");
  }
  return write_safetensors(dir / "model.safetensors", random_checkpoint_tensors(config, seed, dtype),
                           {{"format", "pt"}});
}

}  // namespace tnl

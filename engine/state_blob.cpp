#include "engine/state_blob.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

namespace tnl {
namespace {

using nlohmann::json;

static_assert(std::endian::native == std::endian::little, "state blobs are little-endian");
constexpr char kMagic[8] = {'T', 'N', 'L', 'S', 'T', 'A', 'T', 'E'};

uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

std::string hex64(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[size_t(i)] = digits[v & 15];
  return s;
}

template <typename T>
void append(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

Status bad(const std::string& what) { return invalid_argument("state blob: " + what); }

// A non-negative integer field of the header, at most `max`.
Expected<int64_t> field(const json& j, const char* name, int64_t max) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) return bad(std::string("header field \"") + name + "\" missing or not an integer");
  const int64_t v = it->get<int64_t>();
  if (v < 0 || v > max) return bad(std::string("header field \"") + name + "\" out of range: " + std::to_string(v));
  return v;
}

}  // namespace

int64_t StateBlobLayout::state_bytes() const {
  int64_t total = 0;
  for (int64_t ek : key_dims) total += heads * ek * head_dim * int64_t(sizeof(float));
  return total;
}

uint64_t state_tokens_hash(std::span<const int32_t> tokens) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int32_t t : tokens) {
    const uint32_t u = uint32_t(t);
    h = fnv1a(&u, sizeof u, h);
  }
  return h;
}

int64_t max_state_blob_bytes(const StateBlobLayout& layout) {
  return 16 + int64_t(kStateBlobMaxHeaderBytes) + 4 * layout.max_tokens + layout.state_bytes() +
         4 * layout.vocab_size + 8;
}

std::string write_state_blob(const StateBlobLayout& layout, const StateBlob& blob) {
  json header = {
      {"model", layout.model_fingerprint},
      {"dtype", "f32"},
      {"layout",
       {{"layers", layout.layers}, {"heads", layout.heads}, {"head_dim", layout.head_dim},
        {"key_dims", layout.key_dims}, {"order", "layer,head,key,value"}}},
      {"tokens", blob.tokens.size()},
      {"tokens_hash", hex64(state_tokens_hash(blob.tokens))},
      {"state_bytes", blob.state.size()},
      {"logits", blob.logits.size()},
  };
  const std::string text = header.dump();
  std::string out(kMagic, sizeof kMagic);
  append(&out, kStateBlobVersion);
  append(&out, uint32_t(text.size()));
  out += text;
  for (int32_t t : blob.tokens) append(&out, uint32_t(t));
  out.append(reinterpret_cast<const char*>(blob.state.data()), blob.state.size());
  for (float v : blob.logits) append(&out, v);
  append(&out, fnv1a(out.data(), out.size()));
  return out;
}

Expected<StateBlob> parse_state_blob(std::span<const std::byte> bytes, const StateBlobLayout& expected) {
  if (bytes.size() < 16 + 8) return bad("too short (" + std::to_string(bytes.size()) + " bytes)");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) return bad("not a state blob (bad magic)");
  const uint32_t version = load<uint32_t>(bytes.data() + 8);
  if (version != kStateBlobVersion) {
    return bad("format version " + std::to_string(version) + "; this server reads version " +
               std::to_string(kStateBlobVersion));
  }
  const uint64_t checksum = load<uint64_t>(bytes.data() + bytes.size() - 8);
  if (fnv1a(bytes.data(), bytes.size() - 8) != checksum) return bad("checksum mismatch: the blob is corrupted");
  const uint32_t header_bytes = load<uint32_t>(bytes.data() + 12);
  if (header_bytes > kStateBlobMaxHeaderBytes || 16 + size_t(header_bytes) + 8 > bytes.size()) {
    return bad("header length " + std::to_string(header_bytes) + " does not fit the blob");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 16), header_bytes);
  const json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return bad("header is not a JSON object");

  auto model = header.find("model");
  if (model == header.end() || !model->is_string()) return bad("header field \"model\" missing");
  if (model->get<std::string>() != expected.model_fingerprint) {
    return bad("made for another model (fingerprint " + model->get<std::string>() + ", this server serves " +
               expected.model_fingerprint + ")");
  }
  auto dtype = header.find("dtype");
  if (dtype == header.end() || *dtype != "f32") return bad("dtype must be \"f32\"");
  auto layout = header.find("layout");
  if (layout == header.end() || !layout->is_object()) return bad("header field \"layout\" missing");
  const auto same = [&](const char* name, int64_t want) {
    auto it = layout->find(name);
    return it != layout->end() && it->is_number_integer() && it->get<int64_t>() == want;
  };
  auto key_dims = layout->find("key_dims");
  const bool key_dims_match = key_dims != layout->end() && key_dims->is_array() &&
                              key_dims->size() == expected.key_dims.size() &&
                              [&] {
                                for (size_t i = 0; i < expected.key_dims.size(); ++i) {
                                  if (!(*key_dims)[i].is_number_integer() ||
                                      (*key_dims)[i].get<int64_t>() != expected.key_dims[i]) {
                                    return false;
                                  }
                                }
                                return true;
                              }();
  auto order = layout->find("order");
  if (!same("layers", expected.layers) || !same("heads", expected.heads) || !same("head_dim", expected.head_dim) ||
      !key_dims_match || order == layout->end() || *order != "layer,head,key,value") {
    return bad("state layout differs from this model's");
  }
  TNL_ASSIGN_OR_RETURN(const int64_t n, field(header, "tokens", expected.max_tokens));
  if (n == 0) return bad("holds no tokens");
  TNL_ASSIGN_OR_RETURN(const int64_t state_bytes, field(header, "state_bytes", expected.state_bytes()));
  if (state_bytes != expected.state_bytes()) return bad("state size differs from this model's");
  TNL_ASSIGN_OR_RETURN(const int64_t logits, field(header, "logits", expected.vocab_size));
  if (logits != 0 && logits != expected.vocab_size) return bad("logits row has the wrong length");
  const size_t body = 16 + header_bytes;
  const size_t total = body + size_t(4 * n) + size_t(state_bytes) + size_t(4 * logits) + 8;
  if (total != bytes.size()) {
    return bad("size " + std::to_string(bytes.size()) + " bytes, the header implies " + std::to_string(total));
  }

  StateBlob blob;
  blob.tokens.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t t = load<uint32_t>(bytes.data() + body + 4 * size_t(i));
    if (t >= uint64_t(expected.vocab_size)) return bad("token " + std::to_string(i) + " is outside the vocabulary");
    blob.tokens[size_t(i)] = int32_t(t);
  }
  auto hash = header.find("tokens_hash");
  if (hash == header.end() || !hash->is_string() || *hash != hex64(state_tokens_hash(blob.tokens))) {
    return bad("tokens_hash does not match its tokens");
  }
  const std::byte* state = bytes.data() + body + 4 * size_t(n);
  blob.state.assign(state, state + state_bytes);
  for (int64_t i = 0; i < state_bytes / 4; ++i) {
    if (!std::isfinite(load<float>(state + 4 * size_t(i)))) return bad("the state holds a non-finite value");
  }
  const std::byte* row = state + state_bytes;
  blob.logits.resize(size_t(logits));
  for (int64_t i = 0; i < logits; ++i) {
    const float v = load<float>(row + 4 * size_t(i));
    if (std::isnan(v) || v == std::numeric_limits<float>::infinity()) return bad("the logits row holds NaN or +Inf");
    blob.logits[size_t(i)] = v;
  }
  return blob;
}

}  // namespace tnl

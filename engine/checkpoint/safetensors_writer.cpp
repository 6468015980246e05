#include "engine/checkpoint/safetensors_writer.h"

#include <cstring>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/checkpoint/safetensors_header.h"

namespace tnl {

TensorData tensor_from_f32(std::string name, std::vector<int64_t> shape, std::span<const float> values,
                           DType dtype) {
  return TensorData{std::move(name), dtype, std::move(shape), encode_from_f32(dtype, values)};
}

Expected<std::string> safetensors_header_bytes(const std::vector<TensorData>& tensors,
                                               const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  int64_t offset = 0;  // bytes into the data section
  for (const TensorData& t : tensors) {
    int64_t numel = 1;
    for (int64_t dim : t.shape) numel *= dim;
    const int64_t expected = numel * dtype_size(t.dtype);
    if (expected != static_cast<int64_t>(t.bytes.size())) {
      return invalid_argument("tensor \"" + t.name + "\": " + std::to_string(t.bytes.size()) +
                              " bytes given, shape " + shape_string(t.shape) + " of " + dtype_name(t.dtype) +
                              " needs " + std::to_string(expected));
    }
    if (t.name == "__metadata__" || !seen.insert(t.name).second) {
      return invalid_argument("tensor \"" + t.name + "\": duplicate or reserved name");
    }
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + expected}}};
    offset += expected;
  }
  std::string json_text = header.dump();
  json_text.append((8 - json_text.size() % 8) % 8, ' ');
  const uint64_t n = json_text.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);  // little-endian host (static_assert in dtype.cpp)
  return out + json_text;
}

Expected<std::string> serialize_safetensors(const std::vector<TensorData>& tensors,
                                            const std::map<std::string, std::string>& metadata) {
  TNL_ASSIGN_OR_RETURN(std::string out, safetensors_header_bytes(tensors, metadata));
  for (const TensorData& t : tensors) out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return out;
}

Status write_safetensors(const std::filesystem::path& path, const std::vector<TensorData>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  auto header = safetensors_header_bytes(tensors, metadata);
  if (!header) return invalid_argument(path.string() + ": " + header.status().message());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return internal_error(path.string() + ": cannot open for writing");
  out.write(header->data(), static_cast<std::streamsize>(header->size()));
  for (const TensorData& t : tensors) {
    out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
  }
  out.close();
  if (!out) return internal_error(path.string() + ": write failed (disk full?)");
  return Status::ok();
}

}  // namespace tnl

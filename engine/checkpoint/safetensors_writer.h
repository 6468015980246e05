// Writing safetensors files: used by the random-checkpoint writer, tools and
// tests. Tensors are written in the order given, each immediately after the
// previous one; the JSON header is padded with spaces to a multiple of 8 bytes
// (as the reference implementation does) so that data starts 8-byte aligned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "engine/checkpoint/dtype.h"
#include "engine/status.h"

namespace tnl {

// One tensor to write: its bytes are little-endian `dtype`, numel × dtype_size of them.
struct TensorData {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};

// Encodes fp32 `values` as `dtype` (rounding to nearest even for bf16/f16).
TensorData tensor_from_f32(std::string name, std::vector<int64_t> shape, std::span<const float> values,
                           DType dtype);

// The header a writer would emit for `tensors` (layout only; bytes unused):
// 8-byte length + padded JSON. Exposed for tests that craft malformed files.
Expected<std::string> safetensors_header_bytes(const std::vector<TensorData>& tensors,
                                               const std::map<std::string, std::string>& metadata = {});

// The complete file contents in memory.
Expected<std::string> serialize_safetensors(const std::vector<TensorData>& tensors,
                                            const std::map<std::string, std::string>& metadata = {});

// Writes `path` (replacing it). Fails with a message naming the file or the
// tensor when a tensor's byte count does not match its shape, a name repeats,
// or the file cannot be written.
Status write_safetensors(const std::filesystem::path& path, const std::vector<TensorData>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace tnl

// Parsing the header of a safetensors file: a pure function over bytes (no I/O),
// so that it can be fuzzed and so that every malformed input is an error value.
//
// Format: [u64 little-endian n][n bytes of JSON][data]. The JSON maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, offsets in
// bytes relative to the start of the data section; the optional key
// "__metadata__" maps strings to strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "engine/checkpoint/dtype.h"
#include "engine/status.h"

namespace tnl {

// Headers larger than this are treated as corrupt rather than allocated.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t{100} << 20;  // 100 MiB

struct SafetensorsEntry {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // Absolute byte range [begin, end) within the file (data offsets + 8 + n).
  int64_t begin = 0;
  int64_t end = 0;
};

struct SafetensorsHeader {
  std::map<std::string, SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;
  int64_t data_begin = 0;  // 8 + n: where the data section starts
};

// "[4096, 1024]": shapes as error messages print them.
std::string shape_string(const std::vector<int64_t>& shape);

// Parses and validates the header of a complete safetensors file held in
// `file_bytes`. `file_name` is used only in messages. Guarantees on success:
// every dtype is one the engine loads; every range lies inside the data
// section; end − begin = numel × dtype_size; no two non-empty ranges overlap.
// Never throws, never reads outside `file_bytes`.
Expected<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file_bytes,
                                                     const std::string& file_name);

}  // namespace tnl

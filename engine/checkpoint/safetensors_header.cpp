#include "engine/checkpoint/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

namespace tnl {
namespace {

using nlohmann::json;

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// Reads a JSON value that must be a non-negative integer fitting in int64.
bool read_count(const json& v, int64_t* out) {
  if (!v.is_number_unsigned()) return false;
  const uint64_t x = v.get<uint64_t>();
  if (x > kInt64Max) return false;
  *out = static_cast<int64_t>(x);
  return true;
}

std::string dtype_list_message(const std::string& got) {
  return "unsupported dtype \"" + got + "\" (the engine loads F32, BF16 and F16)";
}

// Parses one tensor entry; `data_size` is the length of the data section.
Expected<SafetensorsEntry> parse_entry(const json& j, const std::string& where, int64_t data_begin,
                                       int64_t data_size) {
  if (!j.is_object()) return data_loss(where + ": header entry is not a JSON object");
  auto dtype_it = j.find("dtype");
  auto shape_it = j.find("shape");
  auto offsets_it = j.find("data_offsets");
  if (dtype_it == j.end() || !dtype_it->is_string()) return data_loss(where + ": missing or non-string \"dtype\"");
  if (shape_it == j.end() || !shape_it->is_array()) return data_loss(where + ": missing or non-list \"shape\"");
  if (offsets_it == j.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    return data_loss(where + ": \"data_offsets\" must be a list [begin, end]");
  }

  SafetensorsEntry e;
  const std::string dtype_text = dtype_it->get<std::string>();
  auto dtype = dtype_from_name(dtype_text);
  if (!dtype) return invalid_argument(where + ": " + dtype_list_message(dtype_text));
  e.dtype = *dtype;

  uint64_t numel = 1;
  for (const json& dim : *shape_it) {
    int64_t n = 0;
    if (!read_count(dim, &n)) return data_loss(where + ": shape entries must be non-negative integers");
    e.shape.push_back(n);
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(n), &numel)) {
      return data_loss(where + ": shape overflows 64-bit element count");
    }
  }
  uint64_t expected_bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(e.dtype)), &expected_bytes)) {
    return data_loss(where + ": shape overflows 64-bit byte count");
  }

  int64_t begin = 0, end = 0;
  if (!read_count((*offsets_it)[0], &begin) || !read_count((*offsets_it)[1], &end)) {
    return data_loss(where + ": data_offsets must be non-negative integers");
  }
  if (begin > end) {
    return data_loss(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     "] are reversed");
  }
  if (end > data_size) {
    return data_loss(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     "] lie outside the data section of " + std::to_string(data_size) +
                     " bytes (truncated file?)");
  }
  if (static_cast<uint64_t>(end - begin) != expected_bytes) {
    return data_loss(where + ": byte length " + std::to_string(end - begin) + " does not match shape " +
                     shape_string(e.shape) + " × " + std::to_string(dtype_size(e.dtype)) + " bytes = " +
                     std::to_string(expected_bytes));
  }
  e.begin = data_begin + begin;
  e.end = data_begin + end;
  return e;
}

Status check_no_overlap(const SafetensorsHeader& h, const std::string& file_name) {
  struct Range {
    int64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (const auto& [name, e] : h.tensors) {
    if (e.end > e.begin) ranges.push_back({e.begin, e.end, &name});
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end) {
      return data_loss(file_name + ": tensor \"" + *ranges[i].name + "\" overlaps tensor \"" +
                       *ranges[i - 1].name + "\" in the data section");
    }
  }
  return Status::ok();
}

}  // namespace

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Expected<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file_bytes,
                                                     const std::string& file_name) {
  if (file_bytes.size() < 8) {
    return data_loss(file_name + ": truncated safetensors file (" + std::to_string(file_bytes.size()) +
                     " bytes, the header length alone needs 8)");
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, file_bytes.data(), 8);  // little-endian host (static_assert in dtype.cpp)
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return data_loss(file_name + ": header length " + std::to_string(header_len) +
                     " bytes is absurd (limit 100 MiB): not a safetensors file or corrupt");
  }
  if (header_len > file_bytes.size() - 8) {
    return data_loss(file_name + ": header length " + std::to_string(header_len) + " bytes exceeds the file size " +
                     std::to_string(file_bytes.size()) + " (truncated file?)");
  }

  const char* text = reinterpret_cast<const char*>(file_bytes.data() + 8);
  json j = json::parse(text, text + header_len, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return data_loss(file_name + ": header is not valid JSON");
  if (!j.is_object()) return data_loss(file_name + ": header is not a JSON object");

  SafetensorsHeader h;
  h.data_begin = static_cast<int64_t>(8 + header_len);
  const int64_t data_size = static_cast<int64_t>(file_bytes.size()) - h.data_begin;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return data_loss(file_name + ": \"__metadata__\" is not a JSON object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) return data_loss(file_name + ": \"__metadata__\" value of \"" + m.key() + "\" is not a string");
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const std::string where = file_name + ": tensor \"" + it.key() + "\"";
    TNL_ASSIGN_OR_RETURN(SafetensorsEntry entry, parse_entry(*it, where, h.data_begin, data_size));
    h.tensors.emplace(it.key(), std::move(entry));
  }
  TNL_RETURN_IF_ERROR(check_no_overlap(h, file_name));
  return h;
}

}  // namespace tnl

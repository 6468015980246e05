#include "server/api/json_fields.h"

#include <algorithm>
#include <limits>

namespace tnl::server {
namespace {

ApiError type_error(const char* name, const char* expected) {
  return invalid_request(std::string(name) + " must be " + expected, name);
}

// Integer value of `v` when it is an integer that fits in int64 (JSON 3.0 counts too).
std::optional<int64_t> as_int64(const nlohmann::json& v) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d == double(int64_t(d)) && d >= -9.0e18 && d <= 9.0e18) return int64_t(d);
  }
  return std::nullopt;
}

}  // namespace

void FieldReader::reject_unread() {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (it->is_null() || std::find(read_.begin(), read_.end(), it.key()) != read_.end()) continue;
    fail(invalid_request("unsupported parameter \"" + it.key() + "\": this server does not honour it (see docs/api.md)",
                         it.key(), "unsupported_parameter"));
    return;
  }
}

const nlohmann::json* FieldReader::find(const char* name) const {
  if (std::find(read_.begin(), read_.end(), name) == read_.end()) read_.emplace_back(name);
  auto it = object_.find(name);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

void FieldReader::number(const char* name, float* out) {
  const nlohmann::json* v = find(name);
  if (!v) return;
  if (!v->is_number()) return fail(type_error(name, "a number"));
  *out = float(v->get<double>());
}

void FieldReader::integer(const char* name, int32_t* out) {
  std::optional<int32_t> value;
  integer(name, &value);
  if (value) *out = *value;
}

void FieldReader::integer(const char* name, std::optional<int32_t>* out) {
  const nlohmann::json* v = find(name);
  if (!v) return;
  std::optional<int64_t> i = as_int64(*v);
  if (!i) return fail(type_error(name, "an integer"));
  if (*i < std::numeric_limits<int32_t>::min() || *i > std::numeric_limits<int32_t>::max()) {
    return fail(invalid_request(std::string(name) + " is out of range", name));
  }
  *out = int32_t(*i);
}

void FieldReader::seed(const char* name, std::optional<uint64_t>* out) {
  const nlohmann::json* v = find(name);
  if (!v) return;
  if (v->is_number_unsigned()) {
    *out = v->get<uint64_t>();
    return;
  }
  std::optional<int64_t> i = as_int64(*v);
  if (!i) return fail(type_error(name, "an integer"));
  *out = uint64_t(*i);  // negative seeds are valid in OpenAI's API; any 64-bit pattern seeds the RNG
}

void FieldReader::boolean(const char* name, bool* out) {
  const nlohmann::json* v = find(name);
  if (!v) return;
  if (!v->is_boolean()) return fail(type_error(name, "a boolean"));
  *out = v->get<bool>();
}

void FieldReader::string(const char* name, std::string* out) {
  const nlohmann::json* v = find(name);
  if (!v) return;
  if (!v->is_string()) return fail(type_error(name, "a string"));
  *out = v->get<std::string>();
}

void FieldReader::string_or_list(const char* name, std::vector<std::string>* out) {
  const nlohmann::json* v = find(name);
  if (!v) return;
  if (v->is_string()) {
    out->push_back(v->get<std::string>());
    return;
  }
  if (!v->is_array()) return fail(type_error(name, "a string or a list of strings"));
  for (const nlohmann::json& e : *v) {
    if (!e.is_string()) return fail(type_error(name, "a string or a list of strings"));
    out->push_back(e.get<std::string>());
  }
}

void FieldReader::integer_list(const char* name, std::vector<int32_t>* out) {
  const nlohmann::json* v = find(name);
  if (!v) return;
  if (!v->is_array()) return fail(type_error(name, "a list of integers"));
  for (const nlohmann::json& e : *v) {
    std::optional<int64_t> i = as_int64(e);
    if (!i || *i < std::numeric_limits<int32_t>::min() || *i > std::numeric_limits<int32_t>::max()) {
      return fail(type_error(name, "a list of integers"));
    }
    out->push_back(int32_t(*i));
  }
}

}  // namespace tnl::server

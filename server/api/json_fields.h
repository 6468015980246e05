// FieldReader: typed reads of optional fields of one JSON object, remembering the
// first type error (with the field as OpenAI's `param`). A JSON null counts as absent,
// as OpenAI clients send explicit nulls for defaults.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/api/api_error.h"

namespace tnl::server {

class FieldReader {
 public:
  explicit FieldReader(const nlohmann::json& object) : object_(object) {}

  void number(const char* name, float* out);
  void integer(const char* name, int32_t* out);
  void integer(const char* name, std::optional<int32_t>* out);
  void seed(const char* name, std::optional<uint64_t>* out);
  void boolean(const char* name, bool* out);
  void string(const char* name, std::string* out);
  // A string or a list of strings (OpenAI `stop`).
  void string_or_list(const char* name, std::vector<std::string>* out);
  void integer_list(const char* name, std::vector<int32_t>* out);

  // The field when present and not null. Every name asked for counts as read.
  const nlohmann::json* find(const char* name) const;
  // A field the server does not honour must not be silently ignored: fails with
  // 400 `unsupported_parameter` naming the first present, non-null field that no
  // read asked for (call after every read).
  void reject_unread();
  void fail(ApiError error) {
    if (!error_) error_ = std::move(error);
  }
  const std::optional<ApiError>& error() const { return error_; }

 private:
  const nlohmann::json& object_;
  std::optional<ApiError> error_;
  mutable std::vector<std::string> read_;  // names asked for
};

}  // namespace tnl::server

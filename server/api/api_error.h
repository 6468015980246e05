// ApiError: a request error as the OpenAI API reports it — an HTTP status plus the
// body {"error": {"message", "type", "param", "code"}}. Both front ends produce
// these (gRPC maps http_status onto a grpc::StatusCode).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "engine/status.h"

namespace tnl::server {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null in JSON
  std::string code;   // empty: null in JSON

  std::string to_json() const;  // the whole body, one line
};

ApiError invalid_request(std::string message, std::string param = {}, std::string code = {});
ApiError not_found_error(std::string message, std::string param = {}, std::string code = {});
// Maps an engine Status (submit() or a finished event) onto the HTTP meaning.
ApiError api_error_from_status(const Status& status);

// A value or the ApiError that prevented it (Expected<T> carries a Status, which
// has no room for `param`).
template <typename T>
class [[nodiscard]] ApiResult {
 public:
  ApiResult(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  ApiResult(ApiError error) : v_(std::move(error)) {} // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const ApiError& error() const { return std::get<ApiError>(v_); }

 private:
  std::variant<T, ApiError> v_;
};

}  // namespace tnl::server

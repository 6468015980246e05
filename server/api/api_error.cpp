#include "server/api/api_error.h"

#include <nlohmann/json.hpp>

namespace tnl::server {

std::string ApiError::to_json() const {
  nlohmann::json error = {
      {"message", message},
      {"type", type},
      {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
      {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)},
  };
  // `replace`: a message that quotes invalid UTF-8 from the client must still serialise.
  return nlohmann::json{{"error", error}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ApiError invalid_request(std::string message, std::string param, std::string code) {
  return ApiError{400, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

ApiError not_found_error(std::string message, std::string param, std::string code) {
  return ApiError{404, std::move(message), "not_found_error", std::move(param), std::move(code)};
}

ApiError api_error_from_status(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      return invalid_request(status.message());
    case StatusCode::kNotFound:
      return not_found_error(status.message());
    case StatusCode::kResourceExhausted:
      return ApiError{429, status.message(), "rate_limit_error", "", "queue_full"};
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnavailable:
    case StatusCode::kFatal:
      return ApiError{503, status.message(), "unavailable_error", "", "unavailable"};
    case StatusCode::kDeadlineExceeded:
      return ApiError{408, status.message(), "timeout_error", "", "request_timeout"};
    case StatusCode::kCancelled:
      return ApiError{499, status.message(), "cancelled", "", "cancelled"};
    default:
      return ApiError{500, status.message().empty() ? "internal error" : status.message(),
                      "server_error", "", "internal_error"};
  }
}

}  // namespace tnl::server

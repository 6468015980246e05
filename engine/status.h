// Status and Expected<T>: errors as values across module boundaries.
//
// g++ 12 has no std::expected, so this is the small subset we need. A Status
// carries a code (mapped onto HTTP/gRPC by the front ends) and a message a user
// can act on. Expected<T> holds either a T or a non-OK Status.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace tnl {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // bad request or bad input file content
  kNotFound,           // missing file, tensor, model
  kOutOfRange,         // value outside its allowed range
  kResourceExhausted,  // queue full, no free slot, out of memory
  kFailedPrecondition, // e.g. server draining
  kUnavailable,        // no GPU, backend not built
  kDeadlineExceeded,
  kCancelled,
  kInternal,           // a broken invariant or a failed library call
  kDataLoss,           // truncated or corrupt file
  kFatal,              // the backend cannot run steps any more (sticky device error,
                       // dead communicator): the engine latches dead and stops serving
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: message"
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status resource_exhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status failed_precondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status data_loss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status fatal_error(std::string m) { return {StatusCode::kFatal, std::move(m)}; }

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).is_ok() && "Expected built from an OK status");
  }

  bool has_value() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Status& status() const {
    static const Status kOk;
    return has_value() ? kOk : std::get<Status>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace tnl

// Propagate a non-OK Status from an expression returning Status.
#define TNL_RETURN_IF_ERROR(expr)            \
  do {                                       \
    ::tnl::Status tnl_status_ = (expr);      \
    if (!tnl_status_.is_ok()) return tnl_status_; \
  } while (0)

#define TNL_CONCAT_INNER_(a, b) a##b
#define TNL_CONCAT_(a, b) TNL_CONCAT_INNER_(a, b)
// Bind the value of an Expected<T> expression or return its Status.
#define TNL_ASSIGN_OR_RETURN(lhs, expr) \
  TNL_ASSIGN_OR_RETURN_IMPL_(TNL_CONCAT_(tnl_expected_, __LINE__), lhs, expr)
#define TNL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.has_value()) return tmp.status();       \
  lhs = std::move(tmp).value()

#pragma once
// Status: the result of an operation that can fail, as a value. OK costs one pointer test.
// Result<T>: a T or the Status that explains why there is none.
// Thread safety: values; copy freely.

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace casebus {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kFailedPrecondition,
  kAlreadyExists,
  kUnavailable,
  kIOError,
  kCorruption,
  kInternal,
  kPermissionDenied,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string msg, std::string field = {}) {
    return {StatusCode::kInvalidArgument, std::move(msg), std::move(field)};
  }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }
  static Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status IOError(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
  static Status PermissionDenied(std::string msg) {
    return {StatusCode::kPermissionDenied, std::move(msg)};
  }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  const std::string& message() const { return rep_ ? rep_->message : Empty(); }
  // The offending input field (e.g. "report.place.grid"), empty when not about one field.
  const std::string& field() const { return rep_ ? rep_->field : Empty(); }
  std::string ToString() const;

 private:
  struct Rep {
    StatusCode code;
    std::string message;
    std::string field;
  };
  Status(StatusCode code, std::string msg, std::string field = {})
      : rep_(std::make_shared<const Rep>(Rep{code, std::move(msg), std::move(field)})) {}
  static const std::string& Empty();
  std::shared_ptr<const Rep> rep_;
};

std::string_view StatusCodeName(StatusCode code);

template <typename T>
using Result = tl::expected<T, Status>;

inline tl::unexpected<Status> Err(Status s) { return tl::unexpected<Status>(std::move(s)); }

}  // namespace casebus

#define CASEBUS_RETURN_IF_ERROR(expr)      \
  do {                                     \
    ::casebus::Status _st = (expr);        \
    if (!_st.ok()) return _st;             \
  } while (0)

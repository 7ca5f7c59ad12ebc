#pragma once
// Gatekeeper: who is calling the HTTP API. Reads the bearer token (RFC 6750) of a request,
// finds its principal in the current access snapshot, and takes one request from the
// principal's rate bucket. Failed attempts are limited per client address too, so guessing
// tokens is slow. Every refusal (401, 429) and every denial reported to it (403 / hidden 404)
// is logged as an audit line on stderr and counted.
// Reload swaps the snapshot atomically; requests in flight keep the one they started with.
// Thread safety: every member is safe from any thread.

#include <atomic>
#include <memory>
#include <mutex>
#include <variant>

#include "casebus/v1/command.pb.h"
#include "engine/auth/access.h"
#include "engine/base/clock.h"
#include "engine/server/http_server.h"

namespace casebus::server {

class Gatekeeper {
 public:
  Gatekeeper(std::shared_ptr<const auth::Access> access, const Clock& clock);

  void Swap(std::shared_ptr<const auth::Access> access);
  std::shared_ptr<const auth::Access> access() const;

  // The principal of the request's "Authorization: Bearer <token>", or the response to send
  // instead: 401 (none, malformed, unknown; with WWW-Authenticate) or 429 (rate limit).
  std::variant<v1::Caller, HttpResponse> Authenticate(const HttpRequest& req);
  // The same for a token presented another way (Open311's api_key parameter).
  std::variant<v1::Caller, HttpResponse> AuthenticateToken(const HttpRequest& req, std::string_view token,
                                                           std::string_view where);
  // Logs a refusal the engine decided (403, or a 404 for an object outside the caller's scope).
  void Denied(const v1::Caller& caller, const HttpRequest& req, std::string_view why);
  uint64_t denials() const { return denials_.load(); }

 private:
  HttpResponse Unauthorized(const HttpRequest& req, std::string_view error, std::string reason);

  mutable std::mutex mu_;
  std::shared_ptr<const auth::Access> access_;
  const Clock& clock_;
  auth::RateLimiter per_token_;
  auth::RateLimiter per_address_;  // failed attempts
  std::atomic<uint64_t> denials_{0};
};

// HTTP status of an engine code: OK 200, INVALID_ARGUMENT 400, PERMISSION_DENIED 403,
// NOT_FOUND 404, FAILED_PRECONDITION 409, ALREADY_EXISTS 422 (an idempotency key reused for
// another request), TOO_LARGE 413, BUSY and UNAVAILABLE 503 (with Retry-After), else 500.
int HttpStatusOf(v1::Code code);
// The JSON error of a refused command or query, with the code's name.
HttpResponse CodeError(v1::Code code, const std::string& field, const std::string& message);

}  // namespace casebus::server

#include "engine/server/http_access.h"

#include <cstdio>

#include "engine/auth/policy.h"
#include "engine/base/time_format.h"

namespace casebus::server {
namespace {

// Failed authentications a client address may make: 10 a second, 20 at once.
constexpr double kFailRate = 10;
constexpr double kFailBurst = 20;

std::string AddressOf(const std::string& remote) {
  const size_t colon = remote.rfind(':');
  return colon == std::string::npos ? remote : remote.substr(0, colon);
}

void AuditLine(std::string_view what, std::string_view who, const HttpRequest& req, std::string_view why) {
  std::fprintf(stderr, "casebus audit: %.*s who=%.*s from=%s %s %s: %.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(who.size()), who.data(), req.remote.c_str(), req.method.c_str(),
               SafeText(req.path, 128).c_str(), static_cast<int>(why.size()), why.data());
}

}  // namespace

Gatekeeper::Gatekeeper(std::shared_ptr<const auth::Access> access, const Clock& clock)
    : access_(std::move(access)), clock_(clock) {}

void Gatekeeper::Swap(std::shared_ptr<const auth::Access> access) {
  std::lock_guard lock(mu_);
  access_ = std::move(access);
}

std::shared_ptr<const auth::Access> Gatekeeper::access() const {
  std::lock_guard lock(mu_);
  return access_;
}

HttpResponse Gatekeeper::Unauthorized(const HttpRequest& req, std::string_view error, std::string reason) {
  denials_.fetch_add(1);
  AuditLine("unauthenticated", "-", req, reason);
  Millis retry = 0;
  if (!per_address_.Take(AddressOf(req.remote), kFailRate, kFailBurst, clock_.Now(), &retry)) {
    HttpResponse r = JsonError(429, "Authorization", "too many failed authentications from this address; retry later",
                               "failed_auth_rate");
    r.headers["Retry-After"] = std::to_string(std::max<Millis>(1, (retry + 999) / 1000));
    return r;
  }
  HttpResponse r = JsonError(401, "Authorization", reason, std::string(error));
  r.headers["WWW-Authenticate"] =
      error.empty() ? "Bearer realm=\"casebus\"" : "Bearer realm=\"casebus\", error=\"" + std::string(error) + "\"";
  return r;
}

std::variant<v1::Caller, HttpResponse> Gatekeeper::Authenticate(const HttpRequest& req) {
  const std::string& header = req.header("authorization");
  if (header.empty())
    return Unauthorized(req, "", "required: Authorization: Bearer <token> (casebus token new makes one)");
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() <= kScheme.size() || strncasecmp(header.c_str(), kScheme.data(), kScheme.size()) != 0)
    return Unauthorized(req, "invalid_request", "the Authorization header must be \"Bearer <token>\"");
  return AuthenticateToken(req, std::string_view(header).substr(kScheme.size()), "bearer token");
}

std::variant<v1::Caller, HttpResponse> Gatekeeper::AuthenticateToken(const HttpRequest& req, std::string_view token,
                                                                     std::string_view where) {
  auto access = this->access();
  const v1::Caller* caller = access->FindToken(token);
  if (!caller) return Unauthorized(req, "invalid_token", "the " + std::string(where) + " is not a valid token");
  Millis retry = 0;
  if (!per_token_.Take(caller->name(), access->rate_per_second(), access->burst(), clock_.Now(), &retry)) {
    denials_.fetch_add(1);
    AuditLine("rate-limited", caller->name(), req, "over rate_per_second");
    HttpResponse r = JsonError(429, "", "more than " + std::to_string(static_cast<int>(access->rate_per_second())) +
                                            " requests a second for " + caller->name() + "; retry later",
                               "rate_per_second");
    r.headers["Retry-After"] = std::to_string(std::max<Millis>(1, (retry + 999) / 1000));
    return r;
  }
  return *caller;
}

void Gatekeeper::Denied(const v1::Caller& caller, const HttpRequest& req, std::string_view why) {
  denials_.fetch_add(1);
  AuditLine("denied", caller.name() + " (" + std::string(auth::RoleName(caller.role())) + ")", req, why);
}

int HttpStatusOf(v1::Code code) {
  switch (code) {
    case v1::OK: return 200;
    case v1::INVALID_ARGUMENT: return 400;
    case v1::PERMISSION_DENIED: return 403;
    case v1::NOT_FOUND: return 404;
    case v1::FAILED_PRECONDITION: return 409;
    case v1::ALREADY_EXISTS: return 422;
    case v1::TOO_LARGE: return 413;
    case v1::BUSY:
    case v1::UNAVAILABLE: return 503;
    default: return 500;
  }
}

HttpResponse CodeError(v1::Code code, const std::string& field, const std::string& message) {
  HttpResponse r = JsonError(HttpStatusOf(code), field, message, v1::Code_Name(code));
  if (code == v1::BUSY || code == v1::UNAVAILABLE) r.headers["Retry-After"] = "1";
  return r;
}

}  // namespace casebus::server

#pragma once
// The HTTP(S) client the network adapters share (webhook, open311): one request per
// connection, the whole exchange — resolve, connect, TLS handshake, write, read — bounded by
// one deadline. TLS goes through OpenSSL with the peer's certificate and host name verified
// (no server name is sent for an IP literal, RFC 6066). Redirects are not followed; 1xx
// interim answers are skipped. The response's header block is limited to 16 KiB and its body
// to RequestOptions::max_body_bytes.
//
// Errors: anything that kept an HTTP answer from arriving (a name that does not resolve, a
// refused connection, a TLS failure, a reset, the deadline, an oversized header or body) is
// a Status (kUnavailable) whose message says which step failed. What an HTTP status means is
// the caller's business.
//
// Thread safety: Request() keeps no state between calls; it may run on several threads at
// once, sharing one TlsContext (OpenSSL's SSL_CTX is safe to share once set up).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/status.h"

namespace casebus::http {

// Where requests go: the parts of an http:// or https:// URL.
struct HttpTarget {
  bool tls = false;
  bool ipv6 = false;  // host is an IPv6 literal (written in brackets in the Host header)
  std::string host, port;
  std::string path;  // the URL's encoded path and query; "/" at least
};

// Parses an http(s) URL. InvalidArgument (field "url") for another scheme, user info, no host.
Result<HttpTarget> ParseUrl(const std::string& url);

enum class Method { kGet, kPost };

struct HttpRequest {
  Method method = Method::kGet;
  std::string path_and_query;                                // origin-form, "/..."
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host, User-Agent, Connection
  std::string body;
};

struct RequestOptions {
  std::chrono::milliseconds timeout{10'000};  // the whole exchange
  // The largest body read; a longer one is an error. 0: the body is not read at all (only the
  // status line and headers are awaited).
  size_t max_body_bytes = 1 << 20;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // as sent
  std::string body;
  // The first header of that name (ASCII case-insensitive), "" when absent.
  std::string Header(std::string_view name) const;
};

class TlsContext;

// One exchange with `target`. REQUIRES: tls non-null when target.tls.
Result<HttpResponse> Request(const HttpTarget& target, const HttpRequest& request,
                             const RequestOptions& options, const TlsContext* tls);

// The trust settings of https requests: a client context that verifies peers against the
// system's roots or one CA bundle. Immutable once made.
class TlsContext {
 public:
  // ca_file empty: the system's default verify paths. InvalidArgument (field "ca_file") when
  // the bundle cannot be read.
  static Result<std::unique_ptr<TlsContext>> Make(const std::string& ca_file);
  ~TlsContext();

 private:
  struct Rep;
  explicit TlsContext(std::unique_ptr<Rep> rep);
  friend Result<HttpResponse> Request(const HttpTarget&, const HttpRequest&, const RequestOptions&,
                                      const TlsContext*);
  std::unique_ptr<Rep> rep_;
};

// Parses a Retry-After value: delay seconds, or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
// GMT") taken relative to now_s. Returns milliseconds (0 for a date in the past), or -1 when
// the value is neither.
int64_t ParseRetryAfter(std::string_view value, int64_t now_s);

}  // namespace casebus::http

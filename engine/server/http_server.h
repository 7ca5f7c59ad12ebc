#pragma once
// HttpServer: the engine's HTTP/1.1 listener (Boost.Beast), one Asio thread. It serves the
// read side today — /v1/metrics/closure, /metrics, /dashboard — and is where the HTTP API
// grows. Handlers answer asynchronously: a handler may keep `respond` and call it later from
// any thread (the engine answers queries on its commit thread); the reply is written on the
// server's thread.
//
// Limits, so a hostile client cannot hold the engine: request header at most 8 KiB (431),
// body at most max_body_bytes (413), at most 100 header fields (431), a whole request must
// arrive within read_timeout of the read's start, idle keep-alive connections included
// (slowloris), at most max_connections at once and max_connections_per_address from one
// client address (further ones are closed at accept). The target must be origin-form; its path is
// percent-decoded and matched exactly. Error bodies echo input only as valid UTF-8.
// Stop() closes every connection; a reply that arrives later is dropped.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "engine/base/status.h"

namespace casebus::server {

struct HttpRequest {
  std::string method;  // "GET", ...
  std::string path;    // "/v1/metrics/closure"
  std::map<std::string, std::string> query;  // decoded query parameters (last one wins)
  std::map<std::string, std::string> headers;  // names in lower case (a repeated one: the last)
  std::string body;
  std::string remote;  // "127.0.0.1:54321"
  // The value of header `name` (lower case), "" when absent.
  const std::string& header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;  // extra headers
};

class HttpServer {
 public:
  using Respond = std::function<void(HttpResponse)>;
  using Handler = std::function<void(const HttpRequest&, Respond)>;

  struct Options {
    std::string listen = "127.0.0.1:7470";  // host:port; port 0 picks a free one
    size_t max_body_bytes = 64 * 1024;
    int max_connections = 256;
    int max_connections_per_address = 64;  // one client address cannot take every slot
    size_t max_header_fields = 100;
    std::chrono::milliseconds read_timeout{15000};
  };

  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Exact path → handler, for the methods listed ("GET"); another method gets 405 with Allow.
  void Route(std::string path, std::vector<std::string> methods, Handler handler);
  // Every path under `prefix` ("/open311/v2/") that no exact route takes; the handler sees the
  // whole path and answers 404 itself for what it does not know.
  void RoutePrefix(std::string prefix, std::vector<std::string> methods, Handler handler);
  // Binds and starts the thread. Returns the bound "host:port".
  Result<std::string> Start(const Options& options);
  void Stop();
  uint64_t requests() const;

  struct Impl;  // defined and used in http_server.cc only

 private:
  std::shared_ptr<Impl> impl_;
};

// A JSON error body: {"error":{"code":..., "field":..., "reason":...}} (code and field omitted
// when empty). code is the limit or condition by name ("max_body_bytes", "rate_per_second",
// "FAILED_PRECONDITION").
HttpResponse JsonError(int status, const std::string& field, const std::string& reason,
                       const std::string& code = {});
// `s` as valid UTF-8 of at most max_bytes, without control characters: each malformed byte
// becomes U+FFFD (for echoing input in errors).
std::string SafeText(std::string_view s, size_t max_bytes = 256);

}  // namespace casebus::server

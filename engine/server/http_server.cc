#include "engine/server/http_server.h"

#include <pthread.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url.hpp>

#include <list>
#include <mutex>

namespace casebus::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr size_t kHeaderLimit = 8 * 1024;

struct RouteEntry {
  std::vector<std::string> methods;
  HttpServer::Handler handler;
};

}  // namespace

namespace {
class Session;
}  // namespace

// Shared by the server and its sessions: a session keeps it (and so its io_context) alive, so
// a reply that arrives after Stop() finds a live object and is dropped.
struct HttpServer::Impl {
  std::map<std::string, RouteEntry> routes;
  std::vector<std::pair<std::string, RouteEntry>> prefixes;
  Options options;
  std::atomic<int> connections{0};
  std::mutex address_mu;
  std::map<std::string, int> per_address;  // open connections by client address
  std::atomic<uint64_t> requests{0};
  std::mutex mu;         // guards stopped and the posting of replies
  bool stopped = false;  // after Stop(): replies are dropped, nothing more is posted
  std::list<std::weak_ptr<Session>> sessions;  // io thread only: closed at Stop()
  // Declared last, destroyed first: pending handlers (and the sessions they hold) go before
  // the members above that sessions use.
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;

  void Accept(const std::shared_ptr<Impl>& self);
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<HttpServer::Impl> server)
      : server_ptr_(std::move(server)), server_(*server_ptr_), stream_(std::move(socket)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      address_ = ep.address().to_string();
      remote_ = address_ + ":" + std::to_string(ep.port());
    }
  }
  ~Session() {
    server_.connections.fetch_sub(1);
    std::lock_guard lock(server_.address_mu);
    if (auto it = server_.per_address.find(address_); it != server_.per_address.end() && --it->second <= 0)
      server_.per_address.erase(it);
  }
  // Counts this connection against its address; false: the address has too many already.
  bool Admit() {
    std::lock_guard lock(server_.address_mu);
    int& n = server_.per_address[address_];
    if (n >= server_.options.max_connections_per_address) {
      address_ = "\x01refused";  // not counted: the destructor must not uncount it
      return false;
    }
    ++n;
    return true;
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  void Read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(server_.options.max_body_bytes);
    stream_.expires_after(server_.options.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      return Send(JsonError(413, "body", "the request body is larger than " +
                                             std::to_string(server_.options.max_body_bytes) + " bytes",
                            "max_body_bytes"));
    }
    if (ec == http::error::header_limit) {
      keep_alive_ = false;
      return Send(JsonError(431, "", "the request header is larger than 8192 bytes", "max_header_bytes"));
    }
    if (ec) {
      keep_alive_ = false;
      return Send(JsonError(400, "request", "malformed HTTP request: " + ec.message(), "malformed_request"));
    }
    server_.requests.fetch_add(1);
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    size_t fields = 0;
    for (auto it = req.begin(); it != req.end(); ++it) ++fields;
    if (fields > server_.options.max_header_fields) {
      keep_alive_ = false;
      return Send(JsonError(431, "", "the request has " + std::to_string(fields) + " header fields; at most " +
                                         std::to_string(server_.options.max_header_fields),
                            "max_header_fields"));
    }
    HttpRequest r;
    r.method = std::string(req.method_string());
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[std::move(name)] = std::string(field.value());
    }
    r.body = std::move(req.body());
    r.remote = remote_;
    auto target = boost::urls::parse_origin_form(req.target());
    if (!target) return Send(JsonError(400, "target", "not an origin-form request target"));
    r.path = target->path();
    for (auto param : target->params()) r.query[param.key] = param.value;
    const RouteEntry* route = nullptr;
    if (auto exact = server_.routes.find(r.path); exact != server_.routes.end()) route = &exact->second;
    for (const auto& [prefix, entry] : server_.prefixes)
      if (!route && r.path.rfind(prefix, 0) == 0) route = &entry;
    if (!route) return Send(JsonError(404, "path", "no such resource: " + r.path));
    const auto& methods = route->methods;
    if (std::find(methods.begin(), methods.end(), r.method) == methods.end()) {
      std::string allow;
      for (const auto& m : methods) allow += (allow.empty() ? "" : ", ") + m;
      HttpResponse bad = JsonError(405, "method", r.method + " is not allowed here; use " + allow);
      bad.headers["Allow"] = allow;
      return Send(std::move(bad));
    }
    // The handler may answer later from another thread: the reply is posted back here, once.
    auto once = std::make_shared<std::atomic<bool>>(false);
    Respond respond = [self = shared_from_this(), once](HttpResponse resp) {
      if (once->exchange(true)) return;
      std::lock_guard lock(self->server_.mu);
      if (self->server_.stopped) return;  // the server stopped meanwhile: nobody to answer
      asio::post(self->stream_.get_executor(),
                 [self, resp = std::move(resp)]() mutable { self->Send(std::move(resp)); });
    };
    try {
      route->handler(r, respond);
    } catch (const std::exception& e) {
      respond(JsonError(500, "", std::string("internal error: ") + e.what()));
    }
  }

  using Respond = HttpServer::Respond;

  void Send(HttpResponse resp) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(resp.status), version_ ? version_ : 11);
    res->set(http::field::server, "casebus");
    res->set(http::field::content_type, resp.content_type);
    res->set(http::field::cache_control, "no-store");
    res->set("X-Content-Type-Options", "nosniff");
    for (const auto& [k, v] : resp.headers) res->set(k, v);
    res->keep_alive(keep_alive_);
    res->body() = std::move(resp.body);
    res->prepare_payload();
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
      if (ec || !self->keep_alive_) return self->Close();
      self->Read();
    });
  }

  // Declared first, so destroyed last: the server owns the io_context whose timer service the
  // stream's destructor still uses. A session can outlive the HttpServer (a reply the engine
  // answers after it was destroyed holds the last reference), and then the server goes with
  // it — after the stream.
  std::shared_ptr<HttpServer::Impl> server_ptr_;
  HttpServer::Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string address_;
  std::string remote_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
};

}  // namespace

void HttpServer::Impl::Accept(const std::shared_ptr<Impl>& self) {
  acceptor.async_accept([this, self](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (connections.fetch_add(1) >= options.max_connections) {
        connections.fetch_sub(1);
        beast::error_code ignored;
        socket.close(ignored);  // over the limit: refused at once
      } else {
        auto session = std::make_shared<Session>(std::move(socket), self);
        if (!session->Admit()) {
          session->Close();
          return Accept(self);
        }
        sessions.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions.push_back(session);
        session->Read();
      }
    }
    Accept(self);
  });
}

HttpServer::HttpServer() : impl_(std::make_shared<Impl>()) {}

HttpServer::~HttpServer() { Stop(); }

uint64_t HttpServer::requests() const { return impl_->requests.load(); }

void HttpServer::Route(std::string path, std::vector<std::string> methods, Handler handler) {
  impl_->routes[std::move(path)] = {std::move(methods), std::move(handler)};
}

void HttpServer::RoutePrefix(std::string prefix, std::vector<std::string> methods, Handler handler) {
  impl_->prefixes.emplace_back(std::move(prefix), RouteEntry{std::move(methods), std::move(handler)});
}

Result<std::string> HttpServer::Start(const Options& options) {
  impl_->options = options;
  const size_t colon = options.listen.rfind(':');
  if (colon == std::string::npos)
    return Err(Status::InvalidArgument("http listen: expected host:port, got \"" + options.listen + "\""));
  const std::string host = options.listen.substr(0, colon);
  const std::string port_text = options.listen.substr(colon + 1);
  char* end = nullptr;
  const long port = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port < 0 || port > 65535)
    return Err(Status::InvalidArgument("http listen: \"" + port_text + "\" is not a port (0..65535)"));
  beast::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return Err(Status::InvalidArgument("http listen: \"" + host + "\" is not an IP address"));
  tcp::endpoint ep(address, static_cast<unsigned short>(port));
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Err(Status::Unavailable("http listen " + options.listen + ": " + ec.message()));
  const auto bound = impl_->acceptor.local_endpoint();
  impl_->Accept(impl_);
  impl_->thread = std::thread([impl = impl_.get()] {
    pthread_setname_np(pthread_self(), "casebus-http");
    impl->io.run();
  });
  return bound.address().to_string() + ":" + std::to_string(bound.port());
}

void HttpServer::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopped = true;  // from here on, late replies are dropped
  }
  // Close the acceptor and every connection on the io thread; their handlers finish with
  // operation_aborted, and run() returns once nothing is left.
  asio::post(impl_->io, [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    for (auto& w : impl->sessions)
      if (auto s = w.lock()) s->Close();
    impl->sessions.clear();
  });
  impl_->thread.join();
}

const std::string& HttpRequest::header(const std::string& name) const {
  static const std::string kNone;
  auto it = headers.find(name);
  return it == headers.end() ? kNone : it->second;
}

// A malformed sequence (or one cut by the limit) becomes U+FFFD, so an error that echoes input
// stays valid JSON.
std::string SafeText(std::string_view s, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < max_bytes;) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // No overlong forms, surrogates or code points past U+10FFFF; no control characters.
    if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
               (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF || cp < 0x20 || cp == 0x7F))
      ok = false;
    if (!ok) {
      out += "\xEF\xBF\xBD";
      i += 1;
      continue;
    }
    if (out.size() + len > max_bytes) break;
    out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

HttpResponse JsonError(int status, const std::string& field, const std::string& reason,
                       const std::string& code) {
  boost::json::object e;
  if (!code.empty()) e["code"] = SafeText(code, 64);
  if (!field.empty()) e["field"] = SafeText(field, 64);
  e["reason"] = SafeText(reason, 512);
  HttpResponse r;
  r.status = status;
  r.body = boost::json::serialize(boost::json::object{{"error", e}});
  return r;
}

}  // namespace casebus::server

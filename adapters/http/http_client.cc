#include "adapters/http/http_client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <ctime>
#include <iomanip>
#include <optional>
#include <sstream>

namespace casebus::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxResponseHeaderBytes = 16 * 1024;

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// One exchange's sockets and deadline. Each step starts an asynchronous operation and runs
// the io_context until it completes or the deadline passes; past the deadline the socket is
// closed, which cancels what is pending.
class Exchange {
 public:
  Exchange(const HttpTarget& target, std::chrono::milliseconds timeout)
      : target_(target), deadline_(Clock::now() + timeout), resolver_(ioc_), tcp_(ioc_) {}

  Status Connect(ssl::context* tls_context) {
    tcp::resolver::results_type endpoints;
    resolver_.async_resolve(target_.host, target_.port,
                            [&](beast::error_code e, tcp::resolver::results_type r) {
                              op_ec_ = e;
                              endpoints = std::move(r);
                            });
    if (!Run()) return Fail("timed out resolving " + target_.host);
    if (op_ec_) return Fail("resolving " + target_.host + ": " + op_ec_.message());

    tcp_.expires_at(deadline_);
    tcp_.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { op_ec_ = e; });
    if (!Run()) return Fail("timed out connecting");
    if (op_ec_)
      return Fail(op_ec_ == beast::error::timeout ? "timed out connecting"
                                                  : "connect: " + op_ec_.message());
    if (!target_.tls) return Status::Ok();

    tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream&>>(tcp_, *tls_context);
    beast::error_code addr_ec;
    (void)net::ip::make_address(target_.host, addr_ec);
    const bool ip_literal = !addr_ec;  // RFC 6066: no server name for an address
    if (!ip_literal && !SSL_set_tlsext_host_name(tls_->native_handle(), target_.host.c_str()))
      return Fail("TLS: cannot set the server name");
    tls_->set_verify_callback(ssl::host_name_verification(target_.host));
    tls_->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { op_ec_ = e; });
    if (!Run()) return Fail("timed out in the TLS handshake");
    if (op_ec_) return Fail("TLS handshake: " + op_ec_.message());
    return Status::Ok();
  }

  Status Send(const bhttp::request<bhttp::string_body>& req) {
    tcp_.expires_at(deadline_);
    auto on_write = [&](beast::error_code e, size_t) { op_ec_ = e; };
    if (tls_)
      bhttp::async_write(*tls_, req, on_write);
    else
      bhttp::async_write(tcp_, req, on_write);
    if (!Run() || op_ec_ == beast::error::timeout) return Fail("timed out sending the request");
    if (op_ec_) return Fail("sending: " + op_ec_.message());
    return Status::Ok();
  }

  // Reads the final answer (1xx interim answers are skipped, RFC 9110 15.2); its body too
  // unless max_body is 0.
  Result<HttpResponse> Receive(size_t max_body) {
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    auto on_read = [&](beast::error_code e, size_t) { op_ec_ = e; };
    do {
      parser.emplace();
      parser->header_limit(kMaxResponseHeaderBytes);
      if (max_body == 0)
        parser->skip(true);  // the status and headers are all we read
      else
        parser->body_limit(max_body);
      Status st = Await(
          [&] {
            if (tls_)
              bhttp::async_read_header(*tls_, buffer_, *parser, on_read);
            else
              bhttp::async_read_header(tcp_, buffer_, *parser, on_read);
          },
          "waiting for the response", "reading the response", max_body);
      if (!st.ok()) return Err(st);
    } while (parser->get().result_int() / 100 == 1 && parser->get().result_int() != 101);
    if (max_body > 0 && !parser->is_done()) {
      Status st = Await(
          [&] {
            if (tls_)
              bhttp::async_read(*tls_, buffer_, *parser, on_read);
            else
              bhttp::async_read(tcp_, buffer_, *parser, on_read);
          },
          "reading the response body", "reading the response body", max_body);
      if (!st.ok()) return Err(st);
    }
    beast::error_code ec;
    beast::get_lowest_layer(tcp_).socket().shutdown(tcp::socket::shutdown_both, ec);
    const auto& res = parser->get();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& field : res)
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    out.body = std::move(parser->get().body());
    return out;
  }

 private:
  template <typename Start>
  Status Await(Start start, const char* waiting, const char* reading, size_t max_body = 0) {
    tcp_.expires_at(deadline_);
    start();
    if (!Run() || op_ec_ == beast::error::timeout) return Fail(std::string("timed out ") + waiting);
    if (op_ec_ == bhttp::error::body_limit)
      return Fail("the response body is larger than " + std::to_string(max_body) + " bytes");
    if (op_ec_) return Fail(std::string(reading) + ": " + op_ec_.message());
    return Status::Ok();
  }

  // Runs the io_context until the pending operation completes or the deadline passes.
  bool Run() {
    ioc_.restart();
    ioc_.run_until(deadline_);
    if (ioc_.stopped()) return true;
    beast::error_code ec;
    resolver_.cancel();
    beast::get_lowest_layer(tcp_).socket().close(ec);
    ioc_.restart();
    ioc_.run();  // lets the cancelled handlers finish
    return false;
  }

  static Status Fail(const std::string& what) { return Status::Unavailable(what); }

  const HttpTarget& target_;
  const Clock::time_point deadline_;
  net::io_context ioc_;
  tcp::resolver resolver_;
  beast::tcp_stream tcp_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream&>> tls_;
  beast::flat_buffer buffer_;
  beast::error_code op_ec_;
};

}  // namespace

struct TlsContext::Rep {
  // Mutable: each connection's SSL object is made from it; its settings never change.
  mutable ssl::context context{ssl::context::tls_client};
};

TlsContext::TlsContext(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
TlsContext::~TlsContext() = default;

Result<std::unique_ptr<TlsContext>> TlsContext::Make(const std::string& ca_file) {
  auto rep = std::make_unique<Rep>();
  beast::error_code ec;
  rep->context.set_verify_mode(ssl::verify_peer, ec);
  if (!ec) {
    if (ca_file.empty())
      rep->context.set_default_verify_paths(ec);
    else
      rep->context.load_verify_file(ca_file, ec);
  }
  if (ec) return Err(Status::InvalidArgument("TLS set-up: " + ec.message(), "ca_file"));
  return std::unique_ptr<TlsContext>(new TlsContext(std::move(rep)));
}

Result<HttpTarget> ParseUrl(const std::string& url) {
  auto u = boost::urls::parse_uri(url);
  if (!u)
    return Err(
        Status::InvalidArgument("url: " + url + " does not parse: " + u.error().message(), "url"));
  HttpTarget t;
  if (u->scheme() == "https")
    t.tls = true;
  else if (u->scheme() != "http")
    return Err(Status::InvalidArgument("url: scheme must be http or https", "url"));
  if (u->has_userinfo())
    return Err(Status::InvalidArgument("url: user info is not allowed", "url"));
  t.ipv6 = u->host_type() == boost::urls::host_type::ipv6;
  t.host = t.ipv6 ? std::string(u->host_address()) : std::string(u->host());
  if (t.host.empty()) return Err(Status::InvalidArgument("url: no host", "url"));
  t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
  t.path = u->encoded_target().empty() ? "/" : std::string(u->encoded_target());
  if (!t.path.starts_with("/")) t.path = "/" + t.path;
  return t;
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (EqualsIgnoringCase(k, name)) return v;
  return "";
}

Result<HttpResponse> Request(const HttpTarget& target, const HttpRequest& request,
                             const RequestOptions& options, const TlsContext* tls) {
  if (target.tls && tls == nullptr) return Err(Status::Internal("https without a TLS context"));
  bhttp::request<bhttp::string_body> req{
      request.method == Method::kPost ? bhttp::verb::post : bhttp::verb::get,
      request.path_and_query, 11};
  req.set(bhttp::field::host,
          (target.ipv6 ? "[" + target.host + "]" : target.host) + ":" + target.port);
  req.set(bhttp::field::user_agent, "casebus/1");
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.set(bhttp::field::connection, "close");
  req.body() = request.body;
  req.prepare_payload();

  Exchange exchange(target, options.timeout);
  if (Status st = exchange.Connect(target.tls ? &tls->rep_->context : nullptr); !st.ok())
    return Err(st);
  if (Status st = exchange.Send(req); !st.ok()) return Err(st);
  return exchange.Receive(options.max_body_bytes);
}

int64_t ParseRetryAfter(std::string_view value, int64_t now_s) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return -1;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return 999'999'999'000;  // absurd; the policy cuts it
    return std::stoll(std::string(value)) * 1000;
  }
  if (value.size() != 29 || value[3] != ',' || value[4] != ' ' || value[7] != ' ') return -1;
  std::tm tm{};
  std::istringstream in{std::string(value)};
  in.imbue(std::locale::classic());
  in >> std::get_time(&tm, "%a, %d %b %Y %H:%M:%S GMT");
  if (in.fail() || in.peek() != std::char_traits<char>::eof()) return -1;
  const int64_t at = timegm(&tm);
  return std::max<int64_t>(0, (at - now_s) * 1000);
}

}  // namespace casebus::http

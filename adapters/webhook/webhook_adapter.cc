#include "adapters/webhook/webhook_adapter.h"

#include <google/protobuf/util/json_util.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <iomanip>
#include <sstream>

#include "adapters/webhook/signature.h"

namespace casebus::webhook {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxResponseHeaderBytes = 16 * 1024;

struct Target {
  bool tls = false;
  bool ipv6 = false;
  std::string host, port, path;
};

Result<Target> ParseTarget(const std::string& url) {
  auto u = boost::urls::parse_uri(url);
  if (!u) return Err(Status::InvalidArgument("url: " + url + " does not parse: " + u.error().message(), "url"));
  Target t;
  if (u->scheme() == "https") t.tls = true;
  else if (u->scheme() != "http") return Err(Status::InvalidArgument("url: scheme must be http or https", "url"));
  if (u->has_userinfo()) return Err(Status::InvalidArgument("url: user info is not allowed", "url"));
  t.host = u->host_type() == boost::urls::host_type::ipv6 ? std::string(u->host_address())
                                                          : std::string(u->host());
  t.ipv6 = u->host_type() == boost::urls::host_type::ipv6;
  if (t.host.empty()) return Err(Status::InvalidArgument("url: no host", "url"));
  t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
  t.path = u->encoded_target().empty() ? "/" : std::string(u->encoded_target());
  if (!t.path.starts_with("/")) t.path = "/" + t.path;
  return t;
}

std::string ReadSecretText(const v1::WebhookAdapter& w, const std::string& data_dir, Status& st) {
  if (!w.secret_env().empty()) {
    const char* v = std::getenv(w.secret_env().c_str());
    if (!v || !*v) st = Status::InvalidArgument("secret_env: " + w.secret_env() + " is not set", "secret_env");
    return v ? std::string(v) : "";
  }
  std::string path = w.secret_file();
  if (path.empty()) {
    st = Status::InvalidArgument("exactly one of secret_file and secret_env must be set", "secret_file");
    return "";
  }
  if (!path.starts_with("/")) path = data_dir + "/" + path;
  std::error_code fs_ec;
  std::ifstream f;
  if (std::filesystem::is_regular_file(path, fs_ec)) f.open(path);
  if (!f.is_open()) {
    st = Status::InvalidArgument("secret_file: cannot read " + path, "secret_file");
    return "";
  }
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

class WebhookAdapter final : public dispatch::Adapter {
 public:
  WebhookAdapter(std::string department, std::string url, Target target, std::vector<Secret> secrets,
                 std::chrono::milliseconds timeout, std::string ca_file)
      : department_(std::move(department)),
        url_(std::move(url)),
        target_(std::move(target)),
        secrets_(std::move(secrets)),
        timeout_(timeout),
        ca_file_(std::move(ca_file)) {}

  Status Init() {
    if (!target_.tls) return Status::Ok();
    beast::error_code ec;
    ssl_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    ssl_->set_verify_mode(ssl::verify_peer, ec);
    if (!ec) {
      if (ca_file_.empty()) ssl_->set_default_verify_paths(ec);
      else ssl_->load_verify_file(ca_file_, ec);
    }
    if (ec) return Status::InvalidArgument("webhook " + url_ + ": TLS set-up: " + ec.message(), "ca_file");
    return Status::Ok();
  }

  dispatch::Delivery Deliver(const v1::WorkOrder& order) override {
    v1::OutboxItem item;
    *item.mutable_work_order() = order;
    return Post(order.id(), WebhookBody(item));
  }

  dispatch::Delivery DeliverNotice(const v1::Notice& notice) override {
    v1::OutboxItem item;
    *item.mutable_notice() = notice;
    return Post(notice.id(), WebhookBody(item));
  }

  std::string Endpoint() const override { return "webhook " + url_; }

 private:
  dispatch::Delivery Post(const std::string& id, const std::string& body) {
    const int64_t now_s = std::time(nullptr);
    http::request<http::string_body> req{http::verb::post, target_.path, 11};
    req.set(http::field::host, (target_.ipv6 ? "[" + target_.host + "]" : target_.host) + ":" + target_.port);
    req.set(http::field::user_agent, "casebus/1");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::connection, "close");
    req.set("webhook-id", id);
    req.set("webhook-timestamp", std::to_string(now_s));
    req.set("webhook-signature", SignatureHeader(secrets_, id, now_s, body));
    req.body() = body;
    req.prepare_payload();

    net::io_context ioc;
    const auto deadline = Clock::now() + timeout_;
    beast::error_code ec;
    std::optional<http::response_parser<http::empty_body>> parser;
    tcp::resolver resolver(ioc);
    beast::tcp_stream tcp_stream(ioc);
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream&>> tls;
    beast::flat_buffer buffer;

    auto fail = [&](const std::string& what) {
      return dispatch::Delivery::Retry(url_ + ": " + what);
    };
    // Runs the io_context until the pending operation completes or the deadline passes.
    auto run = [&]() -> bool {
      ioc.restart();
      ioc.run_until(deadline);
      if (!ioc.stopped()) {
        resolver.cancel();
        beast::get_lowest_layer(tcp_stream).socket().close(ec);
        ioc.restart();
        ioc.run();  // lets the cancelled handlers finish
        return false;
      }
      return true;
    };

    tcp::resolver::results_type endpoints;
    beast::error_code op_ec;
    resolver.async_resolve(target_.host, target_.port,
                           [&](beast::error_code e, tcp::resolver::results_type r) {
                             op_ec = e;
                             endpoints = std::move(r);
                           });
    if (!run()) return fail("timed out resolving " + target_.host);
    if (op_ec) return fail("resolving " + target_.host + ": " + op_ec.message());

    tcp_stream.expires_at(deadline);
    tcp_stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { op_ec = e; });
    if (!run()) return fail("timed out connecting");
    if (op_ec) return fail(op_ec == beast::error::timeout ? "timed out connecting" : "connect: " + op_ec.message());

    if (target_.tls) {
      tls = std::make_unique<beast::ssl_stream<beast::tcp_stream&>>(tcp_stream, *ssl_);
      beast::error_code addr_ec;
      (void)net::ip::make_address(target_.host, addr_ec);
      const bool ip_literal = !addr_ec;  // RFC 6066: no server name for an address
      if (!ip_literal && !SSL_set_tlsext_host_name(tls->native_handle(), target_.host.c_str()))
        return fail("TLS: cannot set the server name");
      tls->set_verify_callback(ssl::host_name_verification(target_.host));
      tls->async_handshake(ssl::stream_base::client, [&](beast::error_code e) { op_ec = e; });
      if (!run()) return fail("timed out in the TLS handshake");
      if (op_ec) return fail("TLS handshake: " + op_ec.message());
    }

    tcp_stream.expires_at(deadline);
    auto on_write = [&](beast::error_code e, size_t) { op_ec = e; };
    if (tls) http::async_write(*tls, req, on_write);
    else http::async_write(tcp_stream, req, on_write);
    if (!run() || op_ec == beast::error::timeout) return fail("timed out sending the request");
    if (op_ec) return fail("sending: " + op_ec.message());

    auto on_read = [&](beast::error_code e, size_t) { op_ec = e; };
    do {  // 1xx answers are interim (RFC 9110 15.2): the final one follows
      parser.emplace();
      parser->header_limit(kMaxResponseHeaderBytes);
      parser->skip(true);  // the status and headers are all we read
      tcp_stream.expires_at(deadline);
      if (tls) http::async_read_header(*tls, buffer, *parser, on_read);
      else http::async_read_header(tcp_stream, buffer, *parser, on_read);
      if (!run() || op_ec == beast::error::timeout) return fail("timed out waiting for the response");
      if (op_ec) return fail("reading the response: " + op_ec.message());
    } while (parser->get().result_int() / 100 == 1 && parser->get().result_int() != 101);
    beast::get_lowest_layer(tcp_stream).socket().shutdown(tcp::socket::shutdown_both, ec);

    const auto& res = parser->get();
    const int code = static_cast<int>(res.result_int());
    const std::string said = "HTTP " + std::to_string(code) + " from " + url_;
    if (code >= 200 && code < 300) return dispatch::Delivery::Delivered();
    if (code == 408 || code == 429 || code >= 500) {
      int64_t retry_after = -1;
      if (auto it = res.find(http::field::retry_after); it != res.end())
        retry_after = ParseRetryAfter(std::string_view(it->value().data(), it->value().size()), std::time(nullptr));
      return dispatch::Delivery::Retry(said, retry_after);
    }
    if (code >= 300 && code < 400) return dispatch::Delivery::Retry(said + " (redirects are not followed)");
    return dispatch::Delivery::Rejected(said);
  }

  std::string department_, url_;
  Target target_;
  std::vector<Secret> secrets_;
  std::chrono::milliseconds timeout_;
  std::string ca_file_;
  std::unique_ptr<ssl::context> ssl_;
};

}  // namespace

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

std::string WebhookBody(const v1::OutboxItem& item) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  std::string data;
  const google::protobuf::Message& m =
      item.has_notice() ? static_cast<const google::protobuf::Message&>(item.notice()) : item.work_order();
  (void)google::protobuf::util::MessageToJsonString(m, &data, opts);
  return std::string("{\"type\":\"") + (item.has_notice() ? "notice" : "work_order") + "\",\"data\":" + data + "}";
}

void RegisterWebhookAdapter(dispatch::AdapterRegistry& registry) {
  registry.Register("webhook", [](const v1::Department& dept, const dispatch::AdapterContext& ctx)
                                   -> Result<std::unique_ptr<dispatch::Adapter>> {
    const v1::WebhookAdapter& w = dept.adapter().webhook();
    const std::string where = "department " + dept.id() + ": adapter.webhook.";
    auto target = ParseTarget(w.url());
    if (!target) return Err(Status::InvalidArgument(where + target.error().message(), "url"));
    if (ctx.city) {  // validated at load too; checked again where the socket is made
      const auto& allow = ctx.city->webhook_allow();
      if (std::none_of(allow.begin(), allow.end(), [&](const std::string& p) { return w.url().starts_with(p); }))
        return Err(Status::InvalidArgument(where + "url: " + w.url() + " is not under any webhook_allow prefix", "url"));
    }
    Status st;
    const std::string text = ReadSecretText(w, ctx.data_dir, st);
    if (!st.ok()) return Err(Status::InvalidArgument(where + st.message(), st.field()));
    auto secret = ParseSecret(text);
    if (!secret) return Err(Status::InvalidArgument(where + "secret: " + secret.error().message(), "secret"));
    const uint32_t timeout_ms = ctx.city && ctx.city->delivery().timeout_ms() ? ctx.city->delivery().timeout_ms() : 10'000;
    auto adapter = std::make_unique<WebhookAdapter>(dept.id(), w.url(), std::move(*target),
                                                    std::vector<Secret>{std::move(*secret)},
                                                    std::chrono::milliseconds(timeout_ms), w.ca_file());
    if (Status init = adapter->Init(); !init.ok()) return Err(init);
    return std::unique_ptr<dispatch::Adapter>(std::move(adapter));
  });
}

}  // namespace casebus::webhook

#include "adapters/webhook/callback_server.h"

#include <google/protobuf/util/json_util.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>

#include "engine/auth/policy.h"

namespace casebus::webhook {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr auto kSettleTimeout = std::chrono::seconds(15);

std::string JsonError(const std::string& message, const std::string& field = "") {
  std::string out = "{\"error\":\"";
  for (char c : message) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  out += "\"";
  if (!field.empty()) out += ",\"field\":\"" + field + "\"";
  return out + "}";
}

int StatusFor(v1::Code code) {
  switch (code) {
    case v1::OK: return 200;
    case v1::BUSY:
    case v1::UNAVAILABLE: return 503;
    case v1::ALREADY_EXISTS: return 409;
    case v1::NOT_FOUND: return 404;
    case v1::INVALID_ARGUMENT: return 400;
    default: return 422;
  }
}

}  // namespace

struct CallbackServer::Impl : std::enable_shared_from_this<CallbackServer::Impl> {
  struct Mailbox {
    std::unique_ptr<Verifier> verifier;
    std::vector<dispatch::InboundReply> inbound;
  };
  struct Waiter {
    std::optional<v1::CommandResult> result;
  };

  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::atomic<int> connections{0};
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Mailbox> mailboxes;
  std::map<std::string, Waiter> waiting;  // token → result, when settled
  uint64_t next_token = 1;
  int port = 0;

  void AcceptLoop() {
    while (!stopping.load()) {
      beast::error_code ec;
      tcp::socket s(ioc);
      acceptor.accept(s, ec);
      if (ec) {
        if (stopping.load()) return;
        continue;
      }
      if (connections.load() >= kMaxConnections) {
        s.close(ec);  // over the cap: the department retries
        continue;
      }
      ++connections;
      std::thread([self = shared_from_this(), s = std::move(s)]() mutable {
        self->Serve(std::move(s));
        --self->connections;
      }).detach();
    }
  }

  void Serve(tcp::socket s) {
    timeval tv{10, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    beast::error_code ec;
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(kMaxBodyBytes);
    bhttp::read(s, buffer, parser, ec);
    int status = 200;
    std::string body;
    std::vector<std::pair<std::string, std::string>> extra;
    if (ec == bhttp::error::body_limit) {
      status = 413, body = JsonError("body: larger than " + std::to_string(kMaxBodyBytes) + " bytes", "body");
    } else if (ec) {
      return;  // not HTTP, too slow, or gone: nothing to answer
    } else {
      Handle(parser.get(), status, body, extra);
    }
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
    res.set(bhttp::field::content_type, "application/json");
    res.set(bhttp::field::connection, "close");
    for (auto& [k, v] : extra) res.set(k, v);
    res.body() = std::move(body);
    res.prepare_payload();
    bhttp::write(s, res, ec);
    s.shutdown(tcp::socket::shutdown_both, ec);
  }

  void Handle(const bhttp::request<bhttp::string_body>& req, int& status, std::string& body,
              std::vector<std::pair<std::string, std::string>>& extra) {
    static const std::regex kPath("^/v1/departments/([a-z0-9_-]{1,64})/replies$");
    std::smatch m;
    const std::string target(req.target());
    if (!std::regex_match(target, m, kPath)) {
      status = 404, body = JsonError("no such path; departments POST to /v1/departments/<id>/replies");
      return;
    }
    if (req.method() != bhttp::verb::post) {
      status = 405, body = JsonError("method: only POST");
      extra.emplace_back("Allow", "POST");
      return;
    }
    const std::string department = m[1];
    auto header = [&](const char* name) {
      auto it = req.find(name);
      return it == req.end() ? std::string() : std::string(it->value());
    };
    const std::string id = header("webhook-id");
    std::string token;
    {
      std::unique_lock lock(mu);
      auto mb = mailboxes.find(department);
      if (mb == mailboxes.end()) {
        status = 404, body = JsonError("no webhook department " + department);
        return;
      }
      // Check, not Verify: a department's redelivery (same id, new signature) is normal, and
      // the engine recognises a repeated request_id; a replayed copy gets the first result.
      Status st = mb->second.verifier->Check(id, header("webhook-timestamp"), header("webhook-signature"),
                                             req.body(), std::time(nullptr));
      if (!st.ok()) {
        status = 401, body = JsonError(st.message(), st.field());
        return;
      }
      v1::Command cmd;
      google::protobuf::util::JsonParseOptions opts;
      opts.ignore_unknown_fields = false;
      auto parsed = google::protobuf::util::JsonStringToMessage(req.body(), &cmd, opts);
      if (!parsed.ok()) {
        status = 400, body = JsonError("body: not a Command: " + std::string(parsed.message()), "body");
        return;
      }
      if (cmd.request_id().empty()) cmd.set_request_id("webhook-" + id);
      cmd.set_actor(department);  // the signature decides who acts
      *cmd.mutable_caller() = auth::DepartmentCaller(department);  // whatever the body claimed
      token = "cb-" + std::to_string(next_token++);
      waiting[token];
      mb->second.inbound.push_back({std::move(cmd), token, department});
      const bool settled = cv.wait_for(lock, kSettleTimeout, [&] {
        return stopping.load() || waiting[token].result.has_value();
      });
      std::optional<v1::CommandResult> result = std::move(waiting[token].result);
      waiting.erase(token);
      if (!settled || !result) {
        status = 503, body = JsonError("the engine did not answer in time; retry with the same request_id");
        extra.emplace_back("Retry-After", "1");
        return;
      }
      google::protobuf::util::JsonPrintOptions po;
      po.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(*result, &body, po);
      status = StatusFor(result->code());
      if (status == 503) extra.emplace_back("Retry-After", "1");
    }
  }
};

CallbackServer::CallbackServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::shared_ptr<CallbackServer>> CallbackServer::For(const std::string& listen) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<CallbackServer>> open;
  std::lock_guard lock(mu);
  if (auto it = open.find(listen); it != open.end())
    if (auto s = it->second.lock()) return s;
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos)
    return Err(Status::InvalidArgument("webhook_callback.listen: want host:port, got \"" + listen + "\"", "listen"));
  auto impl = std::make_shared<Impl>();
  beast::error_code ec;
  const auto address = net::ip::make_address(listen.substr(0, colon), ec);
  if (ec) return Err(Status::InvalidArgument("webhook_callback.listen: " + listen + ": " + ec.message(), "listen"));
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535)
    return Err(Status::InvalidArgument("webhook_callback.listen: bad port in " + listen, "listen"));
  tcp::endpoint ep(address, static_cast<unsigned short>(port));
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Err(Status::Unavailable("webhook_callback.listen: " + listen + ": " + ec.message()));
  impl->port = impl->acceptor.local_endpoint().port();
  impl->accept_thread = std::thread([impl] {
    pthread_setname_np(pthread_self(), "casebus-callback");
    impl->AcceptLoop();
  });
  auto server = std::shared_ptr<CallbackServer>(new CallbackServer(impl));
  open[listen] = server;
  return server;
}

CallbackServer::~CallbackServer() {
  impl_->stopping.store(true);
  beast::error_code ec;
  // Wake the blocking accept: shut the listening socket down, then join.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  impl_->acceptor.close(ec);
  impl_->cv.notify_all();  // waiting connections answer 503 and end (they hold impl_)
}

void CallbackServer::Register(const std::string& department, std::vector<Secret> secrets) {
  std::lock_guard lock(impl_->mu);
  auto& mb = impl_->mailboxes[department];
  VerifierOptions o;
  mb.verifier = std::make_unique<Verifier>(std::move(secrets), o);
}

void CallbackServer::Unregister(const std::string& department) {
  std::lock_guard lock(impl_->mu);
  impl_->mailboxes.erase(department);
}

std::vector<dispatch::InboundReply> CallbackServer::Poll(const std::string& department) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->mailboxes.find(department);
  if (it == impl_->mailboxes.end()) return {};
  return std::exchange(it->second.inbound, {});
}

void CallbackServer::Settle(const std::string& token, const v1::CommandResult& result) {
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->waiting.find(token);
    if (it == impl_->waiting.end()) return;  // the connection gave up (timed out)
    it->second.result = result;
  }
  impl_->cv.notify_all();
}

int CallbackServer::port() const { return impl_->port; }

}  // namespace casebus::webhook

// `casebus dept`: a department's console on the ZeroMQ department gateway, and
// `casebus keygen`: a CURVE keypair for the gateway or one of its clients.
//
//   casebus dept --department D --gateway tcp://host:port --server-key PUB --key-file F inbox [--wait S]
//   casebus dept ... accept CASE [--work-order ID]
//   casebus dept ... resolve CASE --evidence E[,E..] [--note N]
//   casebus dept ... return CASE --reason R
//   casebus dept ... note CASE --text T
//   casebus dept ... extend CASE --hours H [--reason R]
//
// The key file holds the client's Z85 secret key; its public key must be on the department's
// adapter.zmq.client_keys. The gateway decides the department from the key; --department only
// labels the output and is checked against what the orders say.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <zmq.hpp>

#include "adapters/zmq/zmq_adapter.h"
#include "casebus/v1/gateway.pb.h"
#include "engine/base/clock.h"
#include "engine/base/time_format.h"
#include "engine/cli/client.h"
#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/cli/print.h"

namespace casebus::cli {
namespace {

int Fail(const std::string& what, int code = 1) {
  std::fprintf(stderr, "casebus dept: %s\n", what.c_str());
  return code;
}

class GatewayClient {
 public:
  GatewayClient(const std::string& endpoint, const std::string& server_key, const std::string& secret,
                const std::string& public_key)
      : socket_(ctx_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::sndtimeo, 5000);
    socket_.set(zmq::sockopt::curve_serverkey, server_key);
    socket_.set(zmq::sockopt::curve_publickey, public_key);
    socket_.set(zmq::sockopt::curve_secretkey, secret);
    socket_.connect(endpoint);
  }
  bool Send(const v1::GatewayFrame& f) {
    const std::string b = f.SerializeAsString();
    return socket_.send(zmq::buffer(b), zmq::send_flags::none).has_value();
  }
  std::optional<v1::GatewayFrame> Next(std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    zmq::message_t m;
    (void)socket_.recv(m, zmq::recv_flags::none);
    v1::GatewayFrame f;
    if (!f.ParseFromArray(m.data(), static_cast<int>(m.size()))) return std::nullopt;
    return f;
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t socket_;
};

}  // namespace

int RunKeygen(const Args& args) {
  if (!args.empty()) return Fail("keygen takes no arguments", 2);
  auto k = zmqgw::NewKeyPair();
  if (!k) return Fail(k.error().message());
  std::printf("public: %s\nsecret: %s\n", k->public_key.c_str(), k->secret_key.c_str());
  return 0;
}

int RunDept(const Args& args) {
  auto f = Flags::Parse(args,
                        {"department", "gateway", "server-key", "key-file", "wait", "work-order",
                         "evidence", "note", "reason", "text", "hours", "request-id"},
                        {});
  if (!f) return Fail(f.error().message(), 2);
  for (const char* required : {"department", "gateway", "server-key", "key-file"})
    if (!f->Has(required)) return Fail(std::string("--") + required + " is required", 2);
  const auto& pos = f->positional();
  if (pos.empty()) return Fail("what to do: inbox, accept, resolve, return, note or extend", 2);
  std::ifstream key_in(*f->Get("key-file"));
  std::string secret;
  std::getline(key_in, secret);
  auto pub = zmqgw::PublicKeyOf(secret);
  if (!pub) return Fail("--key-file " + *f->Get("key-file") + ": " + pub.error().message(), 2);
  GatewayClient gw(*f->Get("gateway"), *f->Get("server-key"), secret, *pub);
  v1::GatewayFrame hello;
  hello.mutable_hello()->set_client("casebus dept");
  if (!gw.Send(hello)) return Fail("cannot reach the gateway at " + *f->Get("gateway") + " (or the key is refused)");
  const std::string department = *f->Get("department");
  const std::string& action = pos[0];

  if (action == "inbox") {
    const double wait_s = std::strtod(f->GetOr("wait", "5").c_str(), nullptr);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(wait_s * 1000));
    int orders = 0, notices = 0;
    std::printf("%-12s %-8s %-10s %-25s %s\n", "work order", "case", "category", "handle deadline", "description");
    while (std::chrono::steady_clock::now() < until) {
      auto fr = gw.Next(std::chrono::milliseconds(200));
      if (!fr) continue;
      v1::GatewayFrame ack;
      if (fr->has_work_order()) {
        const auto& w = fr->work_order();
        if (w.department() != department)
          std::fprintf(stderr, "casebus dept: note: %s is for %s, not %s (the key decides)\n", w.id().c_str(),
                       w.department().c_str(), department.c_str());
        std::printf("%-12s %-8llu %-10s %-25s %s\n", w.id().c_str(), static_cast<unsigned long long>(w.case_id()),
                    w.category().c_str(), FormatIso(w.handle_deadline_ms(), w.utc_offset_minutes()).c_str(), w.description().c_str());
        ack.mutable_ack()->set_id(w.id());
        ++orders;
      } else if (fr->has_notice()) {
        const auto& n = fr->notice();
        std::printf("%-12s %-8llu notice: %s step %s%s\n", n.id().c_str(), static_cast<unsigned long long>(n.case_id()),
                    v1::Stage_Name(n.stage()).c_str(), n.step_id().c_str(), n.supervision() ? " (督办: reply required)" : "");
        ack.mutable_ack()->set_id(n.id());
        ++notices;
      } else if (fr->has_error()) {
        std::fprintf(stderr, "casebus dept: the gateway says: %s\n", fr->error().reason().c_str());
        continue;
      } else {
        continue;
      }
      if (!gw.Send(ack)) return Fail("lost the gateway while acking");
    }
    std::printf("%d work order(s), %d notice(s) received and acknowledged\n", orders, notices);
    return 0;
  }

  auto case_id = f->CaseId(1);
  if (!case_id) return Fail(case_id.error().message(), 2);
  v1::GatewayFrame frame;
  v1::Command* c = frame.mutable_command();
  c->set_request_id(f->GetOr("request-id", RandomRequestId("dept")));
  c->set_actor(department);
  if (action == "accept") {
    c->mutable_accept()->set_case_id(*case_id);
    c->mutable_accept()->set_work_order_id(f->GetOr("work-order", ""));
  } else if (action == "resolve") {
    c->mutable_resolve()->set_case_id(*case_id);
    std::stringstream ev(f->GetOr("evidence", ""));
    for (std::string e; std::getline(ev, e, ',');)
      if (!e.empty()) c->mutable_resolve()->add_evidence(e);
    c->mutable_resolve()->set_note(f->GetOr("note", ""));
  } else if (action == "return") {
    c->mutable_return_()->set_case_id(*case_id);
    c->mutable_return_()->set_reason(f->GetOr("reason", ""));
  } else if (action == "note") {
    c->mutable_note()->set_case_id(*case_id);
    c->mutable_note()->set_text(f->GetOr("text", ""));
  } else if (action == "extend") {
    c->mutable_request_extension()->set_case_id(*case_id);
    c->mutable_request_extension()->set_hours(std::atoi(f->GetOr("hours", "0").c_str()));
    c->mutable_request_extension()->set_reason(f->GetOr("reason", ""));
  } else {
    return Fail("'" + action + "' is not inbox, accept, resolve, return, note or extend", 2);
  }
  if (!gw.Send(frame)) return Fail("cannot send to the gateway");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    auto fr = gw.Next(std::chrono::milliseconds(200));
    if (!fr) continue;
    if (fr->has_error()) return Fail("the gateway says: " + fr->error().reason());
    if (fr->has_result() && fr->result().request_id() == c->request_id()) {
      std::printf("%s\n", FormatResult(fr->result()).c_str());
      return fr->result().code() == v1::OK ? 0 : 1;
    }
  }
  return Fail("no answer within 10 s (retry with --request-id " + c->request_id() + ")");
}

}  // namespace casebus::cli

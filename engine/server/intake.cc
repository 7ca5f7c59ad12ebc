#include "engine/server/intake.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <zmq_addon.hpp>

#include "engine/server/frame_decode.h"

namespace casebus::server {
namespace {
// A peer that sends more than HardFrameLimit() is disconnected by libzmq itself; between
// max_frame_bytes and that it gets a TOO_LARGE reply, so an honest client learns the limit.
int64_t HardFrameLimit(uint32_t max_frame_bytes) {
  return std::max<int64_t>(int64_t{4} << 20, int64_t{4} * max_frame_bytes);
}
// Frames queued per peer connection before libzmq stops reading from it.
constexpr int kPeerQueueFrames = 10000;
}  // namespace

Intake::Intake(Engine& engine, const v1::IntakeLimits& limits)
    : engine_(engine), limits_(limits), router_(ctx_, zmq::socket_type::router) {
  if (limits_.max_frame_bytes() == 0) limits_.set_max_frame_bytes(1 << 20);
  if (limits_.max_commands_per_frame() == 0) limits_.set_max_commands_per_frame(1000);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  router_.set(zmq::sockopt::maxmsgsize, HardFrameLimit(limits_.max_frame_bytes()));
  router_.set(zmq::sockopt::router_mandatory, 1);
  router_.set(zmq::sockopt::linger, 2000);
  router_.set(zmq::sockopt::sndhwm, kPeerQueueFrames);
  router_.set(zmq::sockopt::rcvhwm, kPeerQueueFrames);
}

Intake::~Intake() {
  zap_stop_.store(true);
  if (zap_thread_.joinable()) zap_thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status Intake::EnableCurve(AccessSource access) {
  if (!zmq_has("curve")) return Status::Unavailable("this libzmq has no CURVE support");
  auto snapshot = access();
  if (!snapshot || !snapshot->has_curve()) return Status::InvalidArgument("the access file sets no curve_secret_key_file");
  try {
    zap_ = zmq::socket_t(ctx_, zmq::socket_type::rep);
    zap_.set(zmq::sockopt::linger, 0);
    zap_.bind("inproc://zeromq.zap.01");  // RFC 27: libzmq asks here about every handshake
    router_.set(zmq::sockopt::curve_server, 1);
    router_.set(zmq::sockopt::curve_secretkey, snapshot->curve_secret_key());
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("CURVE: ") + e.what());
  }
  access_ = std::move(access);
  zap_thread_ = std::thread([this] { ZapLoop(); });
  return Status::Ok();
}

// ZAP (RFC 27): [version, request id, domain, address, identity, mechanism, client key] in,
// [version, request id, status, text, user id, metadata] out. The user id is the client's key
// (Z85), which OnFrame maps to its principal.
void Intake::ZapLoop() {
  while (!zap_stop_.load()) {
    zmq::pollitem_t item{zap_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(200)) <= 0) continue;
    std::vector<zmq::message_t> req;
    if (!zmq::recv_multipart(zap_, std::back_inserter(req), zmq::recv_flags::dontwait)) continue;
    std::string status = "400", text = "not allowed", user;
    if (req.size() >= 7 && req[5].to_string() == "CURVE" && req[6].size() == 32) {
      char z85[41] = {};
      zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
      auto snapshot = access_();
      if (snapshot && snapshot->FindCurveKey(z85)) {
        status = "200";
        text = "OK";
        user = z85;
      }
    }
    std::array<zmq::const_buffer, 6> reply = {
        zmq::str_buffer("1.0"),
        req.size() > 1 ? zmq::buffer(req[1].data(), req[1].size()) : zmq::const_buffer(),
        zmq::buffer(status), zmq::buffer(text), zmq::buffer(user), zmq::const_buffer()};
    try {
      zmq::send_multipart(zap_, reply);
    } catch (const zmq::error_t&) {
    }
  }
}

Result<std::string> Intake::Bind(const std::string& endpoint) {
  try {
    router_.bind(endpoint);
    return router_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Err(Status::Unavailable("bind " + endpoint + ": " + e.what()));
  }
}

void Intake::Refuse(const std::string& identity, bool req, v1::Code code, std::string msg,
                    std::string field) {
  v1::Reply reply;
  reply.set_version(1);
  auto* e = reply.mutable_error();
  e->set_code(code);
  e->set_message(std::move(msg));
  e->set_field(std::move(field));
  Answer(identity, req, reply);
}

void Intake::Answer(const std::string& identity, bool req, const v1::Reply& reply) {
  Send(identity, req, reply.SerializeAsString());
}

void Intake::Send(const std::string& identity, bool req, const std::string& payload) {
  try {
    if (req) {
      std::array<zmq::const_buffer, 3> parts = {zmq::buffer(identity), zmq::const_buffer(),
                                                zmq::buffer(payload)};
      zmq::send_multipart(router_, parts, zmq::send_flags::dontwait);
    } else {
      std::array<zmq::const_buffer, 2> parts = {zmq::buffer(identity), zmq::buffer(payload)};
      zmq::send_multipart(router_, parts, zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t&) {
    // The client went away (EHOSTUNREACH) or is not reading; it will retry with the same
    // request_id and get the same result.
  }
}

void Intake::OnFrame(std::vector<zmq::message_t>& parts) {
  if (parts.size() < 2) return;
  const std::string identity = parts[0].to_string();
  const bool req = parts.size() == 3 && parts[1].size() == 0;
  if (parts.size() != 2 && !req) {
    Refuse(identity, false, v1::INVALID_ARGUMENT,
           "expected one payload frame (DEALER) or an empty delimiter and one payload (REQ); got " +
               std::to_string(parts.size() - 1) + " frames");
    return;
  }
  const zmq::message_t& body = parts.back();
  auto decoded = DecodeRequestFrame(
      std::string_view(static_cast<const char*>(body.data()), body.size()), limits_);
  if (!decoded) {
    Refuse(identity, req, decoded.error().code, std::move(decoded.error().message),
           std::move(decoded.error().field));
    return;
  }
  v1::Request request = std::move(*decoded);
  if (access_) {
    // The client's principal, from the key its connection authenticated with.
    const char* user = nullptr;
    try {
      user = parts.back().gets("User-Id");
    } catch (const zmq::error_t&) {
    }
    auto snapshot = access_();
    const v1::Caller* caller = user && snapshot ? snapshot->FindCurveKey(user) : nullptr;
    if (!caller) {
      Refuse(identity, req, v1::PERMISSION_DENIED, "this client's key is not (or no longer) allowed");
      return;
    }
    for (int i = 0; i < request.commands_size(); ++i) {
      v1::Command* cmd = request.mutable_commands(i);
      if (cmd->has_caller()) {
        Refuse(identity, req, v1::INVALID_ARGUMENT, "set by the server from the client's key, never by the client",
               "commands[" + std::to_string(i) + "].caller");
        return;
      }
      *cmd->mutable_caller() = *caller;
      cmd->set_actor(caller->name());
    }
    if (request.has_query()) {
      if (request.query().has_caller()) {
        Refuse(identity, req, v1::INVALID_ARGUMENT, "set by the server from the client's key", "query.caller");
        return;
      }
      *request.mutable_query()->mutable_caller() = *caller;
    }
  }
  std::vector<std::string> ids;
  ids.reserve(request.commands_size());
  for (const auto& c : request.commands()) ids.push_back(c.request_id());
  const bool had_query = request.has_query();
  bool ok = engine_.Submit(std::move(request), [this, identity, req](v1::Reply&& r) {
    std::string payload = r.SerializeAsString();
    bool was_empty;
    {
      std::lock_guard lock(mu_);
      was_empty = outgoing_.empty();
      outgoing_.push_back({identity, req, std::move(payload)});
    }
    if (was_empty) {
      uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof one);
    }
  });
  if (auto* t = engine_.telemetry()) t->IntakeFrame(!ok);
  if (!ok) {
    const bool stopping = engine_.stopping();
    v1::Reply busy;
    busy.set_version(1);
    for (const auto& id : ids) {
      auto* r = busy.add_results();
      r->set_request_id(id);
      r->set_code(stopping ? v1::UNAVAILABLE : v1::BUSY);
      r->set_message(stopping ? "the engine is stopping; retry against the restarted server"
                              : "intake queue is full; retry with the same request_id");
    }
    if (had_query) {
      busy.mutable_query()->set_code(stopping ? v1::UNAVAILABLE : v1::BUSY);
      busy.mutable_query()->set_message("intake queue is full; retry");
    }
    Answer(identity, req, busy);
  }
}

void Intake::FlushReplies() {
  uint64_t drained;
  (void)!::read(wake_fd_, &drained, sizeof drained);
  std::vector<Outgoing> out;
  {
    std::lock_guard lock(mu_);
    out.swap(outgoing_);
  }
  for (const auto& o : out) {
    Send(o.identity, o.req_envelope, o.payload);
  }
}

void Intake::Run(const std::atomic<bool>& stop) {
  std::array<zmq::pollitem_t, 2> items = {
      zmq::pollitem_t{router_.handle(), 0, ZMQ_POLLIN, 0},
      zmq::pollitem_t{nullptr, wake_fd_, ZMQ_POLLIN, 0}};
  std::vector<zmq::message_t> parts;
  while (!stop.load(std::memory_order_acquire)) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    if (items[1].revents & ZMQ_POLLIN) FlushReplies();
    if (items[0].revents & ZMQ_POLLIN) {
      // Take what is waiting, bounded so replies are not starved.
      for (int i = 0; i < 1024; ++i) {
        parts.clear();
        auto got = zmq::recv_multipart(router_, std::back_inserter(parts), zmq::recv_flags::dontwait);
        if (!got) break;
        OnFrame(parts);
      }
    }
  }
  engine_.Stop();  // commits and answers everything already queued
  FlushReplies();
  // Give the I/O thread a moment to hand the last replies to the kernel (linger covers the rest).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace casebus::server

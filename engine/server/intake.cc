#include "engine/server/intake.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <zmq_addon.hpp>

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
  if (wake_fd_ >= 0) ::close(wake_fd_);
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
  if (body.size() > limits_.max_frame_bytes()) {
    Refuse(identity, req, v1::TOO_LARGE,
           "frame is " + std::to_string(body.size()) + " bytes; at most " +
               std::to_string(limits_.max_frame_bytes()));
    return;
  }
  v1::Request request;
  if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    Refuse(identity, req, v1::INVALID_ARGUMENT, "frame is not a casebus.v1.Request protobuf");
    return;
  }
  if (request.version() != 1) {
    Refuse(identity, req, v1::UNSUPPORTED_VERSION,
           "request version " + std::to_string(request.version()) + " is not supported; use 1",
           "version");
    return;
  }
  if (Status st = CheckNoUnknownFields(request); !st.ok()) {
    Refuse(identity, req, v1::INVALID_ARGUMENT, st.message(), st.field());
    return;
  }
  if (request.commands_size() == 0 && !request.has_query()) {
    Refuse(identity, req, v1::INVALID_ARGUMENT, "request has neither commands nor a query",
           "commands");
    return;
  }
  // A frame must fit the engine's queue as a whole, or it would be BUSY forever.
  const uint32_t max_commands =
      limits_.queue_capacity() > 0
          ? std::min(limits_.max_commands_per_frame(), limits_.queue_capacity())
          : limits_.max_commands_per_frame();
  if (static_cast<uint32_t>(request.commands_size()) > max_commands) {
    Refuse(identity, req, v1::TOO_LARGE,
           "request has " + std::to_string(request.commands_size()) + " commands; at most " +
               std::to_string(max_commands) + " per frame",
           "commands");
    return;
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

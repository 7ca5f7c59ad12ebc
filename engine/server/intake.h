#pragma once
// Intake: the ZeroMQ ROUTER edge. Takes Request frames from DEALER (or REQ) clients, checks
// size, version and shape, hands them to the Engine, and sends each Reply once the Engine has
// committed the batch holding its commands.
//
// Frames: DEALER sends [payload] (seen here as [identity, payload]); REQ sends
// [empty, payload]; replies mirror the envelope. A frame above max_frame_bytes, one that does
// not parse, has unknown fields or an unknown version gets an error Reply and the intake goes
// on; a full engine queue gets BUSY for each command at once.
//
// Authentication: with EnableCurve() the socket is a CURVE server and a ZAP handler admits
// only the access file's curve_clients; each frame's commands and query then carry the
// client's principal (Caller) and its name as actor, and the engine authorizes them with the
// same policy as the HTTP API. A client may not set a caller itself. Without CURVE the intake
// is trusted: serve binds it only to loopback then.
//
// Threads: Run() owns the socket on the calling thread. Replies produced on the shard thread
// reach it through a mutex-guarded queue and an eventfd. The ZAP handler has its own thread.

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <mutex>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "engine/auth/access.h"
#include "engine/server/engine.h"

namespace casebus::server {

class Intake {
 public:
  Intake(Engine& engine, const v1::IntakeLimits& limits);
  ~Intake();
  using AccessSource = std::function<std::shared_ptr<const auth::Access>()>;
  // Before Bind: CURVE with the current access snapshot's secret key; clients admitted and
  // mapped to principals by its curve_clients (looked up afresh, so a reload takes effect).
  Status EnableCurve(AccessSource access);
  bool curve() const { return static_cast<bool>(access_); }
  // Binds (e.g. "tcp://127.0.0.1:5555" or "tcp://127.0.0.1:*"); returns the bound endpoint.
  Result<std::string> Bind(const std::string& endpoint);
  // Serves until `stop` is set, then stops the engine (which commits what is queued) and
  // sends the last replies.
  void Run(const std::atomic<bool>& stop);

 private:
  struct Outgoing {
    std::string identity;
    bool req_envelope;
    std::string payload;
  };
  void OnFrame(std::vector<zmq::message_t>& parts);
  void Answer(const std::string& identity, bool req, const v1::Reply& reply);
  void Send(const std::string& identity, bool req, const std::string& payload);
  void Refuse(const std::string& identity, bool req, v1::Code code, std::string msg,
              std::string field = {});
  void FlushReplies();
  void ZapLoop();

  Engine& engine_;
  v1::IntakeLimits limits_;
  zmq::context_t ctx_{1};
  zmq::socket_t router_;
  int wake_fd_ = -1;
  std::mutex mu_;
  std::vector<Outgoing> outgoing_;
  AccessSource access_;
  zmq::socket_t zap_;
  std::atomic<bool> zap_stop_{false};
  std::thread zap_thread_;
};

}  // namespace casebus::server

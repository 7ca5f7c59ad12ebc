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
// Threads: Run() owns the socket on the calling thread. Replies produced on the shard thread
// reach it through a mutex-guarded queue and an eventfd.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "engine/server/engine.h"

namespace casebus::server {

class Intake {
 public:
  Intake(Engine& engine, const v1::IntakeLimits& limits);
  ~Intake();
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

  Engine& engine_;
  v1::IntakeLimits limits_;
  zmq::context_t ctx_{1};
  zmq::socket_t router_;
  int wake_fd_ = -1;
  std::mutex mu_;
  std::vector<Outgoing> outgoing_;
};

}  // namespace casebus::server

#pragma once
// Client: a ZeroMQ DEALER that sends one Request and waits for its Reply. Used by the
// operator verbs, the integration tests' helpers and the benchmark.

#include <chrono>
#include <string>

#include <zmq.hpp>

#include "casebus/v1/command.pb.h"
#include "engine/base/status.h"

namespace casebus::cli {

class Client {
 public:
  explicit Client(const std::string& endpoint);
  // Unavailable when no reply came within `timeout` (the server may or may not have the
  // commands: retry with the same request ids).
  Result<v1::Reply> Call(const v1::Request& request,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t socket_;
  std::string endpoint_;
};

// The endpoint from --endpoint, else $CASEBUS_ENDPOINT, else tcp://127.0.0.1:7450.
std::string DefaultEndpoint();
// The HTTP address from --http, else $CASEBUS_HTTP, else 127.0.0.1:7470.
std::string DefaultHttp();
// A fresh request id, "<prefix>-<16 random hex digits>", for a command the user gave none.
std::string RandomRequestId(const std::string& prefix);

}  // namespace casebus::cli

#pragma once
// CallbackServer: where webhook departments answer. A department POSTs a Command (protobuf
// JSON mapping) to /v1/departments/<id>/replies, signed with its webhook secret exactly as the
// engine signs what it sends (Standard Webhooks: webhook-id, webhook-timestamp,
// webhook-signature). The signature authenticates the department; the engine applies the
// command as that department (whatever actor the body names), and the HTTP answer carries the
// engine's CommandResult:
//   200 applied (or a retry of an applied request_id)     401 bad or missing signature
//   400 body is not a Command, or too deep / has unknown fields
//   404 unknown path or department   405 not POST   413 body over 64 KiB
//   409 request_id reused for another command             422 refused by the engine (reason)
//   503 the engine is busy or did not answer in time (retry with the same request_id)
// A body without request_id uses "webhook-<webhook-id>", so a redelivery is recognised.
//
// Threads: one accept thread, one thread per connection (at most kMaxConnections; reads and
// writes time out after 10 s). Poll() and Settle() are called by the dispatch thread.

#include <memory>
#include <string>
#include <vector>

#include "adapters/webhook/signature.h"
#include "engine/dispatch/adapter.h"

namespace casebus::webhook {

class CallbackServer {
 public:
  static constexpr size_t kMaxBodyBytes = 64 * 1024;
  static constexpr int kMaxConnections = 64;

  // The server listening on `listen` ("127.0.0.1:7460", "0.0.0.0:7460", port 0: any), shared
  // by the departments of one engine.
  static Result<std::shared_ptr<CallbackServer>> For(const std::string& listen);
  ~CallbackServer();
  CallbackServer(const CallbackServer&) = delete;
  CallbackServer& operator=(const CallbackServer&) = delete;

  // The department's secrets verify its replies from now on.
  void Register(const std::string& department, std::vector<Secret> secrets);
  void Unregister(const std::string& department);
  std::vector<dispatch::InboundReply> Poll(const std::string& department);
  void Settle(const std::string& token, const v1::CommandResult& result);
  int port() const;

 private:
  struct Impl;
  explicit CallbackServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace casebus::webhook

#pragma once
// The zmq adapter: departments connected to the engine's ZeroMQ department gateway.
//
// One Gateway per engine (CityConfig.zmq_gateway): a ROUTER socket, CURVE server, with a ZAP
// handler that admits only the client keys the departments' adapters list and tags each
// connection with its department. Protocol: protos/casebus/v1/gateway.proto. Work orders and
// notices are pushed to a connected client of the department and delivered once that client
// acks the id; commands from a client come back as the department's replies, with the actor
// forced to the department, and each gets its result frame.
//
// Threads: the Gateway's own thread owns its sockets; Deliver() (delivery workers),
// PollReplies() and Settle() (dispatch thread) talk to it through a mutex-guarded queue and
// an eventfd.

#include <string>

#include "engine/dispatch/adapter.h"

namespace casebus::zmqgw {

// Registers the "zmq" kind.
void RegisterZmqAdapter(dispatch::AdapterRegistry& registry);

// Z85 keypair for CURVE (`casebus keygen`): {public, secret}.
struct KeyPair {
  std::string public_key, secret_key;
};
Result<KeyPair> NewKeyPair();
// The public key of a Z85 secret key.
Result<std::string> PublicKeyOf(const std::string& secret_key);

}  // namespace casebus::zmqgw

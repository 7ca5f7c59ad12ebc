#include "engine/cli/client.h"

#include <random>
#include <sstream>

#include <cstdlib>

namespace casebus::cli {

std::string DefaultEndpoint() {
  const char* e = std::getenv("CASEBUS_ENDPOINT");
  return e && *e ? e : "tcp://127.0.0.1:7450";
}

std::string DefaultHttp() {
  const char* e = std::getenv("CASEBUS_HTTP");
  return e && *e ? e : "127.0.0.1:7470";
}

Client::Client(const std::string& endpoint) : socket_(ctx_, zmq::socket_type::dealer), endpoint_(endpoint) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.connect(endpoint);
}

Result<v1::Reply> Client::Call(const v1::Request& request, std::chrono::milliseconds timeout) {
  try {
    std::string bytes = request.SerializeAsString();
    socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, timeout);
    if (!(item.revents & ZMQ_POLLIN))
      return Err(Status::Unavailable("no reply from " + endpoint_ + " within " +
                                     std::to_string(timeout.count()) + " ms (is `casebus serve` running?)"));
    zmq::message_t msg;
    (void)socket_.recv(msg, zmq::recv_flags::none);
    v1::Reply reply;
    if (!reply.ParseFromArray(msg.data(), static_cast<int>(msg.size())))
      return Err(Status::Corruption("the reply from " + endpoint_ + " is not a casebus.v1.Reply"));
    return reply;
  } catch (const zmq::error_t& e) {
    return Err(Status::Unavailable(endpoint_ + ": " + e.what()));
  }
}

std::string RandomRequestId(const std::string& prefix) {
  std::random_device rd;
  std::ostringstream s;
  s << prefix << "-" << std::hex << rd() << rd();
  return s.str();
}

}  // namespace casebus::cli

#include "engine/server/frame_decode.h"

#include <algorithm>
#include <utility>

#include "engine/base/proto_check.h"

namespace casebus::server {
namespace {

tl::unexpected<FrameRefusal> Refuse(v1::Code code, std::string message, std::string field = {}) {
  return tl::unexpected<FrameRefusal>(FrameRefusal{code, std::move(message), std::move(field)});
}

}  // namespace

tl::expected<v1::Request, FrameRefusal> DecodeRequestFrame(std::string_view bytes,
                                                           const v1::IntakeLimits& limits) {
  if (bytes.size() > limits.max_frame_bytes())
    return Refuse(v1::TOO_LARGE, "frame is " + std::to_string(bytes.size()) +
                                     " bytes; at most " + std::to_string(limits.max_frame_bytes()));
  v1::Request request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return Refuse(v1::INVALID_ARGUMENT, "frame is not a casebus.v1.Request protobuf");
  if (request.version() != 1)
    return Refuse(v1::UNSUPPORTED_VERSION,
                  "request version " + std::to_string(request.version()) +
                      " is not supported; use 1",
                  "version");
  if (Status st = CheckNoUnknownFields(request); !st.ok())
    return Refuse(v1::INVALID_ARGUMENT, st.message(), st.field());
  if (request.commands_size() == 0 && !request.has_query())
    return Refuse(v1::INVALID_ARGUMENT, "request has neither commands nor a query", "commands");
  // A frame must fit the engine's queue as a whole, or it would be BUSY forever.
  const uint32_t max_commands =
      limits.queue_capacity() > 0
          ? std::min(limits.max_commands_per_frame(), limits.queue_capacity())
          : limits.max_commands_per_frame();
  if (static_cast<uint32_t>(request.commands_size()) > max_commands)
    return Refuse(v1::TOO_LARGE,
                  "request has " + std::to_string(request.commands_size()) +
                      " commands; at most " + std::to_string(max_commands) + " per frame",
                  "commands");
  return request;
}

}  // namespace casebus::server

#pragma once
// DecodeRequestFrame: the intake's checks on one ZeroMQ payload frame, without the socket —
// size, protobuf parse, version, unknown fields, something to do, commands per frame. A frame
// that passes is a Request the Engine may take; one that fails carries the Reply error the
// intake sends back. The per-command field rules (core::CheckCommand) are not applied here:
// the engine answers those per command, so one bad command does not refuse its neighbours.
//
// Thread safety: a pure function of its arguments; call from any thread.

#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"

namespace casebus::server {

// Why a frame was refused, as the Reply's error: TOO_LARGE, INVALID_ARGUMENT or
// UNSUPPORTED_VERSION, a message for people, and the offending field when there is one.
struct FrameRefusal {
  v1::Code code = v1::INVALID_ARGUMENT;
  std::string message;
  std::string field;
};

// REQUIRES: limits.max_frame_bytes() and limits.max_commands_per_frame() are set (the
// intake fills their defaults); queue_capacity 0 means no queue bound on the frame.
tl::expected<v1::Request, FrameRefusal> DecodeRequestFrame(std::string_view bytes,
                                                           const v1::IntakeLimits& limits);

}  // namespace casebus::server

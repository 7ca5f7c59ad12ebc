// Fuzz target: a department's reply file as the spool adapter reads it
// (adapters/spool/spool_adapter.h, ParseSpoolReply): bytes in, a Command the department may
// send (accept, return, resolve, request_extension, note, supervision_reply) or the reason the
// file is rejected out.
//
// Checked beyond "no crash": a rejection says why; an accepted command has a request_id, acts
// as the department whatever the file said (actor and caller are the department), is one of the six bodies,
// and its own JSON reads back to the same command.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/json_util.h>

#include "adapters/spool/spool_adapter.h"

namespace {

constexpr const char* kDepartment = "water";

void Require(bool condition) {
  if (!condition) std::abort();
}

bool MayReply(const casebus::v1::Command& cmd) {
  using C = casebus::v1::Command;
  switch (cmd.body_case()) {
    case C::kAccept:
    case C::kReturn:
    case C::kResolve:
    case C::kRequestExtension:
    case C::kNote:
    case C::kSupervisionReply:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int,
                                     const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace casebus;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = adapters::ParseSpoolReply(bytes, kDepartment);
  if (!parsed) {
    Require(!parsed.error().message().empty());
    return 0;
  }
  Require(!parsed->request_id().empty());
  Require(parsed->actor() == kDepartment);
  // The department's own principal, whatever the file claimed.
  Require(parsed->caller().name() == kDepartment && parsed->caller().role() == casebus::v1::DEPARTMENT &&
          parsed->caller().departments_size() == 1 && parsed->caller().departments(0) == kDepartment);
  Require(MayReply(*parsed));
  std::string json;
  Require(google::protobuf::util::MessageToJsonString(*parsed, &json).ok());
  v1::Command back;
  Require(google::protobuf::util::JsonStringToMessage(json, &back).ok());
  Require(back.SerializeAsString() == parsed->SerializeAsString());
  return 0;
}

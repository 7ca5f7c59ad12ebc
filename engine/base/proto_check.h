#pragma once
// CheckNoUnknownFields: refuses a message that carries fields this build does not know,
// anywhere inside it, so a command from a newer client is never applied with parts of it
// silently dropped. Used by every edge that parses protobuf from outside (the intake, the
// department gateway).

#include <string>
#include <string_view>

#include <google/protobuf/message.h>

#include "engine/base/status.h"

namespace casebus {

// InvalidArgument naming the path of the first unknown field ("request.commands[0]"), with
// `what` as the top-level name when path is empty.
Status CheckNoUnknownFields(const google::protobuf::Message& m, const std::string& path = "",
                            std::string_view what = "request");

}  // namespace casebus

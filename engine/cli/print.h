#pragma once
// How cases look on a terminal: `show` (one case, its history, and why it went where it
// went) and `list` (an aligned table). Times in ISO 8601 at the city's offset.

#include <string>

#include "casebus/v1/case.pb.h"
#include "casebus/v1/command.pb.h"

namespace casebus::cli {

std::string FormatCase(const v1::Case& c, int utc_offset_minutes);
// `status`: per-department delivery (backlog, lag, breaker, last error).
std::string FormatDeliveryLanes(const google::protobuf::RepeatedPtrField<v1::DeliveryLane>& lanes,
                                int utc_offset_minutes, int64_t now);
// `deadletter list`.
std::string FormatDeadLetters(const google::protobuf::RepeatedPtrField<v1::DeadLetter>& letters,
                              int utc_offset_minutes);
std::string FormatCaseList(const google::protobuf::RepeatedPtrField<v1::Case>& cases,
                           int utc_offset_minutes, int64_t now_ms);
std::string FormatResult(const v1::CommandResult& r);

}  // namespace casebus::cli

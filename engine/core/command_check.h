#pragma once
// CheckCommand: the field rules stated in command.proto that need no state — required
// fields, lengths, ranges. A failure names the field ("report.place.grid") and the reason.

#include "casebus/v1/command.pb.h"
#include "engine/base/status.h"

namespace casebus::core {

Status CheckCommand(const v1::Command& cmd);
// The body's name for people and field paths: "report", "dispatch", ...
std::string_view CommandName(const v1::Command& cmd);
// The case a command acts on (0 for a report).
uint64_t TargetCase(const v1::Command& cmd);

}  // namespace casebus::core

#pragma once
// Semantic validation of a CityConfig: every rule stated in protos/casebus/v1/config.proto
// (code formats, unique ids, references that must resolve, required adapters and limits, the
// working calendar, route ambiguity). It reports all problems, not just the first.
// Thread safety: pure functions of their arguments.

#include <string_view>

#include "casebus/v1/config.pb.h"
#include "engine/base/status.h"
#include "engine/config/problems.h"

namespace casebus::config {

// Adds every rule violation in `config` to `problems`, at the lines `lines` knows.
// Expects `config` as read, before ApplyDefaults.
void Validate(const casebus::v1::CityConfig& config, const SourceLines& lines, Problems& problems);

// For a config built in code rather than read from YAML: OK, or InvalidArgument listing every
// problem as "SOURCE: path: reason" (no line numbers).
Status ValidateCityConfig(const casebus::v1::CityConfig& config, std::string_view source_name);

}  // namespace casebus::config

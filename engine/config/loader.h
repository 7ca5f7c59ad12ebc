#pragma once
// Loading the city: one YAML file → an immutable, validated CityConfig with defaults filled in.
// The result is a snapshot shared by readers (shared_ptr<const>) and replaced whole on reload.
// Thread safety: the functions are reentrant; each load works on its own data.

#include <memory>
#include <string>
#include <string_view>

#include "casebus/v1/config.pb.h"
#include "engine/base/status.h"

namespace casebus::config {

// Files and texts larger than this are refused before parsing.
inline constexpr size_t kMaxConfigBytes = 64 << 20;

// Parses YAML text into a CityConfig, validates it (engine/config/validate.h), then applies
// defaults. `source_name` (a file path) prefixes every message. On error: InvalidArgument whose
// message lists every problem, one per line, "FILE:LINE: path.to.key: reason", e.g.
//   city.yaml:42: departments[3].adapter: required
// Never throws.
Result<std::shared_ptr<const casebus::v1::CityConfig>> LoadCityConfigText(
    std::string_view yaml, std::string_view source_name);

// Reads `path` and loads it as above. NotFound when the file does not exist, IOError when it
// cannot be read, InvalidArgument for its contents.
Result<std::shared_ptr<const casebus::v1::CityConfig>> LoadCityConfigFile(const std::string& path);

// Fills what the file left out: calendar windows 08:30–12:00 and 13:30–17:30, work_weekdays
// 1..5, time_zone Asia/Shanghai, dedup radius 50 m and window 24 h, intake queue_capacity
// 65,536, max_frame_bytes 1 MiB, max_commands_per_frame 1,000, max_batch 4,096.
// proto3 numbers have no presence, so 0 counts as absent. utc_offset_minutes becomes 480 when
// it is 0 and time_zone is empty or Asia/Shanghai (a city on UTC names another zone, e.g.
// Etc/UTC, and keeps 0). Idempotent.
void ApplyDefaults(casebus::v1::CityConfig& config);
// The delivery policy's defaults (config.proto DeliveryPolicy) for every field left at 0.
void ApplyDeliveryDefaults(casebus::v1::DeliveryPolicy& policy);
// Metrics policy fields left unset take DOMAIN.md §4 defaults (denominators, min sample, index).
void ApplyMetricsDefaults(casebus::v1::MetricsPolicy& policy);

// A ladder with no steps at all gets DOMAIN.md §4's defaults: accept — reminder 50 % to the
// department, 签收超时 100 % to the district center (yellow); handle — reminder 50 %, yellow 80 %
// to the department, red 100 % to the district center, 督办 200 % to leadership (supervision);
// verify — 100 % to the district center. A city that lists any step keeps exactly its own.
void ApplyLadderDefaults(casebus::v1::EscalationLadder& ladder);

}  // namespace casebus::config

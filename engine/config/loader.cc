#include <tuple>
#include "engine/config/loader.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "engine/config/problems.h"
#include "engine/config/validate.h"
#include "engine/config/yaml_reader.h"

namespace casebus::config {
namespace {

using casebus::v1::CityConfig;

constexpr const char* kDefaultTimeZone = "Asia/Shanghai";
constexpr int kDefaultUtcOffsetMinutes = 480;

// Reads at most kMaxConfigBytes + 1 bytes, so an oversized file is refused without holding it.
Result<std::string> ReadFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    int error = errno;
    std::string message = path + ": cannot open: " + std::strerror(error);
    return Err(error == ENOENT ? Status::NotFound(message) : Status::IOError(message));
  }
  std::string text;
  char buffer[1 << 16];
  size_t n = 0;
  while (text.size() <= kMaxConfigBytes && (n = std::fread(buffer, 1, sizeof buffer, file)) > 0) {
    text.append(buffer, n);
  }
  bool failed = std::ferror(file) != 0;
  int error = errno;
  std::fclose(file);
  if (failed) return Err(Status::IOError(path + ": cannot read: " + std::strerror(error)));
  return text;
}

}  // namespace

Result<std::shared_ptr<const CityConfig>> LoadCityConfigText(std::string_view yaml,
                                                             std::string_view source_name) {
  Problems problems(source_name);
  if (yaml.size() > kMaxConfigBytes) {
    problems.Add(0, "", "larger than " + std::to_string(kMaxConfigBytes >> 20) + " MiB");
    return Err(problems.ToStatus());
  }
  auto config = std::make_shared<CityConfig>();
  SourceLines lines;
  ReadYaml(yaml, *config, lines, problems);
  // Checking a half-read config would only repeat what the reader already said.
  if (!problems.empty()) return Err(problems.ToStatus());
  Validate(*config, lines, problems);
  if (!problems.empty()) return Err(problems.ToStatus());
  ApplyDefaults(*config);
  return std::shared_ptr<const CityConfig>(std::move(config));
}

Result<std::shared_ptr<const CityConfig>> LoadCityConfigFile(const std::string& path) {
  Result<std::string> text = ReadFile(path);
  if (!text) return Err(text.error());
  return LoadCityConfigText(*text, path);
}

void ApplyDefaults(CityConfig& config) {
  auto& calendar = *config.mutable_calendar();
  if (calendar.utc_offset_minutes() == 0 &&
      (calendar.time_zone().empty() || calendar.time_zone() == kDefaultTimeZone)) {
    calendar.set_utc_offset_minutes(kDefaultUtcOffsetMinutes);
  }
  if (calendar.time_zone().empty()) calendar.set_time_zone(kDefaultTimeZone);
  if (calendar.windows().empty()) {
    for (auto [start, end] : {std::pair{"08:30", "12:00"}, std::pair{"13:30", "17:30"}}) {
      auto& window = *calendar.add_windows();
      window.set_start(start);
      window.set_end(end);
    }
  }
  if (calendar.work_weekdays().empty()) {
    for (int day = 1; day <= 5; ++day) calendar.add_work_weekdays(day);
  }
  auto& dedup = *config.mutable_dedup();
  if (dedup.radius_m() == 0) dedup.set_radius_m(50);
  if (dedup.window_hours() == 0) dedup.set_window_hours(24);
  auto& intake = *config.mutable_intake();
  if (intake.queue_capacity() == 0) intake.set_queue_capacity(65536);
  if (intake.max_frame_bytes() == 0) intake.set_max_frame_bytes(1 << 20);
  if (intake.max_commands_per_frame() == 0) intake.set_max_commands_per_frame(1000);
  if (intake.max_batch() == 0) intake.set_max_batch(4096);
  if (intake.request_id_window_hours() == 0) intake.set_request_id_window_hours(168);
  ApplyLadderDefaults(*config.mutable_escalation()->mutable_ladder());
  ApplyDeliveryDefaults(*config.mutable_delivery());
  ApplyMetricsDefaults(*config.mutable_metrics());
}

void ApplyMetricsDefaults(casebus::v1::MetricsPolicy& m) {
  using namespace casebus::v1;
  if (m.closure_denominator() == DENOMINATOR_UNSPECIFIED) m.set_closure_denominator(DUE_CASES);
  if (m.rework_denominator() == DENOMINATOR_UNSPECIFIED) m.set_rework_denominator(DUE_CASES);
  if (m.min_sample() == 0) m.set_min_sample(10);
  if (m.index_size() > 0) return;  // the city's own
  // Chengdu Jinniu's 100 points (DOMAIN.md §4).
  for (auto [rate, weight, inverse] : {std::tuple{HANDLING_RATE, 30.0, false},
                                       std::tuple{ON_TIME_HANDLING_RATE, 20.0, false},
                                       std::tuple{REWORK_RATE, 20.0, true},
                                       std::tuple{OVERDUE_OPEN_RATE, 20.0, true},
                                       std::tuple{EXTENSION_RATE, 10.0, true}}) {
    auto* t = m.add_index();
    t->set_rate(rate);
    t->set_weight(weight);
    t->set_inverse(inverse);
  }
}

void ApplyDeliveryDefaults(casebus::v1::DeliveryPolicy& p) {
  if (p.backoff_base_ms() == 0) p.set_backoff_base_ms(1'000);
  if (p.backoff_cap_ms() == 0) p.set_backoff_cap_ms(600'000);
  if (p.max_attempts() == 0) p.set_max_attempts(100);
  if (p.max_age_hours() == 0) p.set_max_age_hours(72);
  if (p.breaker_failures() == 0) p.set_breaker_failures(5);
  if (p.breaker_cooldown_ms() == 0) p.set_breaker_cooldown_ms(30'000);
  if (p.breaker_cooldown_cap_ms() == 0) p.set_breaker_cooldown_cap_ms(600'000);
  if (p.max_retry_after_ms() == 0) p.set_max_retry_after_ms(3'600'000);
  if (p.workers() == 0) p.set_workers(4);
  if (p.timeout_ms() == 0) p.set_timeout_ms(10'000);
}

void ApplyLadderDefaults(casebus::v1::EscalationLadder& ladder) {
  if (ladder.accept_size() + ladder.handle_size() + ladder.verify_size() > 0) return;  // the city's own
  auto step = [](auto* list, const char* id, double fraction, casebus::v1::EscalationTarget target,
                 casebus::v1::TrafficLight light, bool supervision) {
    auto* s = list->Add();
    s->set_id(id);
    s->set_fraction(fraction);
    s->set_target(target);
    s->set_light(light);
    s->set_supervision(supervision);
  };
  using namespace casebus::v1;
  step(ladder.mutable_accept(), "reminder", 0.5, RESPONSIBLE_DEPARTMENT, LIGHT_UNSPECIFIED, false);
  step(ladder.mutable_accept(), "accept-overdue", 1.0, DISTRICT_CENTER, YELLOW, false);
  step(ladder.mutable_handle(), "reminder", 0.5, RESPONSIBLE_DEPARTMENT, LIGHT_UNSPECIFIED, false);
  step(ladder.mutable_handle(), "yellow", 0.8, RESPONSIBLE_DEPARTMENT, YELLOW, false);
  step(ladder.mutable_handle(), "red", 1.0, DISTRICT_CENTER, RED, false);
  step(ladder.mutable_handle(), "supervise", 2.0, LEADERSHIP, RED, true);
  step(ladder.mutable_verify(), "verify-overdue", 1.0, DISTRICT_CENTER, LIGHT_UNSPECIFIED, false);
}

}  // namespace casebus::config

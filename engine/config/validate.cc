#include "engine/config/validate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>

#include "engine/base/time_format.h"
#include "engine/config/city_checker.h"
#include "engine/config/time_zone.h"

namespace casebus::config {

using casebus::v1::Calendar;
using casebus::v1::Department;

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool DigitsOfLength(std::string_view s, size_t length) {
  return s.size() == length && AllDigits(s);
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string Number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

bool AnyHasPrefix(const std::vector<std::string>& sorted, std::string_view prefix) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), prefix);
  return it != sorted.end() && std::string_view(*it).starts_with(prefix);
}

std::string At(std::string_view list, int i) {
  return std::string(list) + "[" + std::to_string(i) + "]";
}

namespace {

// "HH:MM" → minutes since midnight; "24:00" only when `end_of_day` is allowed.
std::optional<int> ParseClock(std::string_view s, bool end_of_day) {
  if (s.size() != 5 || s[2] != ':' || !AllDigits(s.substr(0, 2)) || !AllDigits(s.substr(3))) {
    return std::nullopt;
  }
  int hours = (s[0] - '0') * 10 + (s[1] - '0');
  int minutes = (s[3] - '0') * 10 + (s[4] - '0');
  if (minutes > 59 || hours > 24 || (hours == 24 && (!end_of_day || minutes != 0))) {
    return std::nullopt;
  }
  return hours * 60 + minutes;
}

// A place code: `length` digits starting with the code of an existing parent level.
struct PlaceLevel {
  std::string_view list;    // "streets"
  std::string_view what;    // "street"
  size_t length;            // 9
  std::string_view parent;  // "district"
  size_t parent_length;     // 6
};

}  // namespace

bool CityChecker::AddUnique(Index& index, const std::string& key, std::string_view what,
                            const std::string& path) {
  auto [it, inserted] = index.emplace(key, path);
  if (inserted) return true;
  Report(path, "duplicate " + std::string(what) + " " + Quote(key) + " (first defined at line " +
                   std::to_string(LineOf(it->second)) + ")");
  return false;
}

void CityChecker::Run() {
  CheckRequiredLists();
  CheckCalendar();
  CheckPlaces();
  CheckGrids();
  CheckDepartments();
  CheckCategories();
  CheckRoutes();
  CheckAssets();
  CheckDedup();
  CheckDelivery();
  CheckMetrics();
  CheckWebhookAllow();
  CheckEscalation();
}

void CityChecker::CheckRequiredLists() {
  if (config_.districts().empty()) Report("districts", "at least one district is required");
  if (config_.grids().empty()) Report("grids", "at least one grid is required");
  if (config_.departments().empty()) Report("departments", "at least one department is required");
  if (config_.categories().empty()) Report("categories", "at least one category is required");
}

void CityChecker::CheckPlaces() {
  for (int i = 0; i < config_.districts_size(); ++i) {
    const std::string& code = config_.districts(i).code();
    std::string path = At("districts", i) + ".code";
    if (!DigitsOfLength(code, 6)) {
      Report(path, "must be 6 digits, got " + Quote(code));
    } else {
      AddUnique(districts_, code, "district code", path);
    }
  }
  auto check_level = [&](const PlaceLevel& level, int count, auto code_of, Index& index,
                         const Index& parents) {
    for (int i = 0; i < count; ++i) {
      const std::string& code = code_of(i);
      std::string path = At(level.list, i) + ".code";
      if (!DigitsOfLength(code, level.length)) {
        Report(path, "must be " + std::to_string(level.length) + " digits, got " + Quote(code));
        continue;
      }
      std::string parent = code.substr(0, level.parent_length);
      if (!parents.contains(parent)) {
        Report(path, std::string(level.parent) + " " + Quote(parent) + " does not exist (a " +
                         std::string(level.what) + " code starts with its " +
                         std::string(level.parent) + "'s code)");
      }
      AddUnique(index, code, std::string(level.what) + " code", path);
    }
  };
  check_level(
      {"streets", "street", 9, "district", 6}, config_.streets_size(),
      [&](int i) -> const std::string& { return config_.streets(i).code(); }, streets_, districts_);
  check_level(
      {"communities", "community", 12, "street", 9}, config_.communities_size(),
      [&](int i) -> const std::string& { return config_.communities(i).code(); }, communities_,
      streets_);
  check_level(
      {"grids", "grid", 15, "community", 12}, config_.grids_size(),
      [&](int i) -> const std::string& { return config_.grids(i).code(); }, grids_, communities_);
  for (const auto& [code, path] : grids_) sorted_grids_.push_back(code);
  std::sort(sorted_grids_.begin(), sorted_grids_.end());
}

void CityChecker::CheckGrids() {
  for (int i = 0; i < config_.grids_size(); ++i) {
    const auto& grid = config_.grids(i);
    std::string path = At("grids", i);
    if (!(grid.lat() >= -90 && grid.lat() <= 90)) {
      Report(path + ".lat", "must be within -90..90 degrees, got " + Number(grid.lat()));
    }
    if (!(grid.lon() >= -180 && grid.lon() <= 180)) {
      Report(path + ".lon", "must be within -180..180 degrees, got " + Number(grid.lon()));
    }
  }
}

void CityChecker::CheckDepartments() {
  auto valid_id = [](const std::string& id) {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
  };
  for (int i = 0; i < config_.departments_size(); ++i) {
    const Department& department = config_.departments(i);
    std::string path = At("departments", i);
    if (!valid_id(department.id())) {
      Report(path + ".id", "must match [a-z0-9_-]{1,64}, got " + Quote(department.id()));
    } else {
      AddUnique(departments_, department.id(), "department id", path + ".id");
    }
    CheckAdapter(department, path);
  }
  for (int i = 0; i < config_.departments_size(); ++i) {
    const Department& department = config_.departments(i);
    const std::string& parent = department.parent();
    if (parent.empty()) continue;
    std::string path = At("departments", i) + ".parent";
    if (parent == department.id()) {
      Report(path, "a department cannot be its own parent");
    } else if (!departments_.contains(parent)) {
      Report(path, "department " + Quote(parent) + " does not exist");
    }
  }
}

void CityChecker::CheckAdapter(const Department& department, const std::string& path) {
  if (!department.has_adapter()) {
    Report(path + ".adapter", "required");
    return;
  }
  const auto& adapter = department.adapter();
  switch (adapter.kind_case()) {
    case casebus::v1::AdapterConfig::KIND_NOT_SET: {
      std::string kinds;
      const auto* oneof = adapter.GetDescriptor()->FindOneofByName("kind");
      for (int k = 0; oneof != nullptr && k < oneof->field_count(); ++k) {
        kinds += (k > 0 ? ", " : "") + oneof->field(k)->name();
      }
      Report(path + ".adapter", "exactly one kind must be set (" + kinds + ")");
      break;
    }
    case casebus::v1::AdapterConfig::kSpool:
      if (adapter.spool().directory().empty()) {
        Report(path + ".adapter.spool.directory", "required");
      }
      break;
    case casebus::v1::AdapterConfig::kWebhook:
      CheckWebhook(adapter.webhook(), path + ".adapter.webhook");
      break;
    case casebus::v1::AdapterConfig::kZmq:
      CheckZmq(department, path + ".adapter.zmq");
      break;
    case casebus::v1::AdapterConfig::kOpen311:
      CheckOpen311(adapter.open311(), path + ".adapter.open311");
      break;
  }
}

void CityChecker::CheckZmq(const Department& department, const std::string& path) {
  const auto& keys = department.adapter().zmq().client_keys();
  if (keys.empty()) Report(path + ".client_keys", "at least one client key is required");
  for (int i = 0; i < keys.size(); ++i) {
    const std::string& k = keys.Get(i);
    const std::string at = At(path + ".client_keys", i);
    if (!Z85Key(k)) {
      Report(at, "must be a Z85-encoded CURVE public key (40 characters), got " + Quote(k));
    } else if (auto [it, added] = zmq_keys_.emplace(k, department.id()); !added) {
      Report(at, "this key already belongs to department " + Quote(it->second) +
                     "; a client acts as one department");
    }
  }
  const auto& gw = config_.zmq_gateway();
  if (!zmq_gateway_checked_) {
    zmq_gateway_checked_ = true;
    if (gw.endpoint().empty())
      Report("zmq_gateway.endpoint", "required when a department uses the zmq adapter");
    if (gw.secret_key_file().empty() == gw.secret_key_env().empty())
      Report("zmq_gateway", "exactly one of secret_key_file and secret_key_env must be set (the "
                            "key itself never goes in the config)");
  }
}

bool CityChecker::Z85Key(const std::string& k) {
  static const std::string kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  return k.size() == 40 && k.find_first_not_of(kAlphabet) == std::string::npos;
}

void CityChecker::CheckOpen311(const casebus::v1::Open311Adapter& o, const std::string& path) {
  const std::string& url = o.endpoint();
  if (url.empty()) {
    Report(path + ".endpoint", "required");
  } else if (!WebUrl(url) || !url.ends_with("/")) {
    Report(path + ".endpoint", "must be an http:// or https:// base URL ending in \"/\", got " + Quote(url));
  } else if (std::none_of(config_.webhook_allow().begin(), config_.webhook_allow().end(),
                          [&](const std::string& p) { return url.starts_with(p); })) {
    Report(path + ".endpoint", Quote(url) + " is not under any webhook_allow prefix");
  }
  if (o.api_key_file().empty() == o.api_key_env().empty())
    Report(path, "exactly one of api_key_file and api_key_env must be set");
  std::set<std::string> seen;
  for (int i = 0; i < o.service_codes_size(); ++i) {
    const auto& sc = o.service_codes(i);
    const std::string at = At(path + ".service_codes", i);
    if (!std::any_of(config_.categories().begin(), config_.categories().end(),
                     [&](const auto& c) { return c.code() == sc.category(); }))
      Report(at + ".category", "category " + Quote(sc.category()) + " does not exist");
    else if (!seen.insert(sc.category()).second)
      Report(at + ".category", "category " + Quote(sc.category()) + " is mapped twice");
    if (sc.service_code().empty()) Report(at + ".service_code", "required");
  }
}

void CityChecker::CheckWebhook(const casebus::v1::WebhookAdapter& w, const std::string& path) {
  const std::string& url = w.url();
  if (url.empty()) {
    Report(path + ".url", "required");
  } else if (!WebUrl(url)) {
    Report(path + ".url", "must be an http:// or https:// URL with a host and no user info, "
                          "spaces or control characters, got " + Quote(url));
  } else if (std::none_of(config_.webhook_allow().begin(), config_.webhook_allow().end(),
                          [&](const std::string& p) { return url.starts_with(p); })) {
    Report(path + ".url", Quote(url) + " is not under any webhook_allow prefix" +
                              (config_.webhook_allow().empty() ? " (webhook_allow is empty)" : ""));
  }
  if (w.secret_file().empty() == w.secret_env().empty()) {
    Report(path, "exactly one of secret_file and secret_env must be set (the secret itself "
                 "never goes in the config)");
  }
}

// http(s)://host[:port][/path]: no user info, no whitespace or control characters.
bool CityChecker::WebUrl(const std::string& url) {
  size_t rest = 0;
  if (url.starts_with("https://")) rest = 8;
  else if (url.starts_with("http://")) rest = 7;
  else return false;
  if (url.size() > 2048) return false;
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7f) return false;
  const std::string authority = url.substr(rest, url.find('/', rest) - rest);
  return !authority.empty() && authority.find('@') == std::string::npos &&
         authority.front() != ':';
}

void CityChecker::CheckWebhookAllow() {
  for (int i = 0; i < config_.webhook_allow_size(); ++i) {
    const std::string& p = config_.webhook_allow(i);
    const std::string at = At("webhook_allow", i);
    if (!WebUrl(p)) {
      Report(at, "must be an http:// or https:// URL prefix, got " + Quote(p));
    } else if (p.find('/', p.find("//") + 2) == std::string::npos) {
      // "https://a.gov" would also allow "https://a.gov.evil.example/".
      Report(at, "must end its host with a path (at least \"/\"), got " + Quote(p));
    }
  }
}

void CityChecker::CheckCalendar() {
  const Calendar& calendar = config_.calendar();
  if (calendar.utc_offset_minutes() < -720 || calendar.utc_offset_minutes() > 840) {
    Report("calendar.utc_offset_minutes",
           "must be within -720..840, got " + std::to_string(calendar.utc_offset_minutes()));
  }
  // The engine reads the zone's offsets when it starts (Engine::Open); a zone it cannot read
  // is this file's mistake, said here rather than by a server that will not start.
  if (!calendar.time_zone().empty()) {
    auto offsets = ZoneOffsets(calendar.time_zone(), 2000, 2100);
    if (!offsets) Report("calendar.time_zone", offsets.error().message());
  }
  CheckWindows(calendar.windows(), "calendar.windows");
  std::set<int> weekdays;
  for (int i = 0; i < calendar.work_weekdays_size(); ++i) {
    int day = calendar.work_weekdays(i);
    std::string path = At("calendar.work_weekdays", i);
    if (day < 1 || day > 7) {
      Report(path, "must be an ISO weekday 1..7 (1 = Monday), got " + std::to_string(day));
    } else if (!weekdays.insert(day).second) {
      Report(path, "weekday " + std::to_string(day) + " is listed twice");
    }
  }
  CheckWeekdayWindows(calendar);
  CheckDates(calendar);
}

void CityChecker::CheckWeekdayWindows(const Calendar& calendar) {
  std::unordered_map<int, std::string> seen;  // weekday → path of its first entry
  for (int i = 0; i < calendar.weekday_windows_size(); ++i) {
    const auto& entry = calendar.weekday_windows(i);
    std::string path = At("calendar.weekday_windows", i);
    int day = entry.weekday();
    if (day < 1 || day > 7) {
      Report(path + ".weekday",
             "must be an ISO weekday 1..7 (1 = Monday), got " + std::to_string(day));
    } else if (auto [it, first] = seen.emplace(day, path); !first) {
      Report(path + ".weekday", "weekday " + std::to_string(day) + " already has windows (" +
                                    it->second + ", line " +
                                    std::to_string(LineOf(it->second)) + ")");
    }
    if (entry.windows().empty()) {
      Report(path + ".windows",
             "required: at least one window (a day off is left out of work_weekdays)");
    }
    CheckWindows(entry.windows(), path + ".windows");
  }
  int make_up = calendar.make_up_windows_weekday();
  if (make_up < 0 || make_up > 7) {
    Report("calendar.make_up_windows_weekday",
           "must be an ISO weekday 1..7 (1 = Monday; 0 or absent = 1), got " +
               std::to_string(make_up));
  }
}

void CityChecker::CheckWindows(const Windows& windows, const std::string& list) {
  std::optional<int> previous_end;
  size_t previous = 0;
  for (int i = 0; i < windows.size(); ++i) {
    const auto& window = windows.Get(i);
    std::string path = At(list, i);
    auto start = ParseClock(window.start(), false);
    auto end = ParseClock(window.end(), true);
    if (!start) Report(path + ".start", "must be a time \"HH:MM\", got " + Quote(window.start()));
    if (!end) Report(path + ".end", "must be a time \"HH:MM\", got " + Quote(window.end()));
    if (!start || !end) continue;
    if (*start >= *end) {
      Report(path, "start " + window.start() + " must be before end " + window.end());
      continue;
    }
    if (previous_end && *start < *previous_end) {
      Report(path, "must start at or after the end of " + At(list, static_cast<int>(previous)) +
                       " (windows are sorted and do not overlap)");
    }
    previous_end = *end;
    previous = static_cast<size_t>(i);
  }
}

void CityChecker::CheckDates(const Calendar& calendar) {
  std::unordered_map<int64_t, std::string> holidays;  // day → path
  for (int i = 0; i < calendar.holidays_size(); ++i) {
    std::string path = At("calendar.holidays", i);
    if (auto day = ParseDate(calendar.holidays(i))) {
      holidays.emplace(*day, path);
    } else {
      Report(path, "must be a date \"YYYY-MM-DD\", got " + Quote(calendar.holidays(i)));
    }
  }
  for (int i = 0; i < calendar.make_up_days_size(); ++i) {
    std::string path = At("calendar.make_up_days", i);
    auto day = ParseDate(calendar.make_up_days(i));
    if (!day) {
      Report(path, "must be a date \"YYYY-MM-DD\", got " + Quote(calendar.make_up_days(i)));
    } else if (auto it = holidays.find(*day); it != holidays.end()) {
      Report(path, calendar.make_up_days(i) + " is also a holiday (" + it->second + ", line " +
                       std::to_string(LineOf(it->second)) + "); a date cannot be both");
    }
  }
}

void CityChecker::CheckDedup() {
  const auto& dedup = config_.dedup();
  if (!(dedup.radius_m() >= 0)) {
    Report("dedup.radius_m", "must be >= 0, got " + Number(dedup.radius_m()));
  }
  if (!(dedup.window_hours() >= 0)) {
    Report("dedup.window_hours", "must be >= 0, got " + Number(dedup.window_hours()));
  }
  // 0 means the default (168). Retries may come a day late (a gateway's outage, a weekend):
  // less than 24 h would let such a retry apply twice.
  const double window = config_.intake().request_id_window_hours();
  if (window != 0 && !(window >= 24 && window <= 24 * 366)) {
    Report("intake.request_id_window_hours",
           "must be between 24 and 8784 (one year), got " + Number(window));
  }
}

// Fields left at 0 take their defaults (ApplyDeliveryDefaults); set ones must make sense.
void CityChecker::CheckDelivery() {
  const auto& d = config_.delivery();
  // A bound and its cap, each at its default when 0: the cap must not be below the bound.
  auto at_most_cap = [&](uint32_t value, uint32_t def, const char* field, uint32_t cap,
                         uint32_t cap_def, const char* cap_field, const char* what) {
    const uint32_t v = value ? value : def, c = cap ? cap : cap_def;
    if (v > c)
      Report(std::string("delivery.") + (cap ? cap_field : field),
             "the cap (" + std::to_string(c) + " ms) must not be below the " + what + " (" +
                 std::to_string(v) + " ms)");
  };
  at_most_cap(d.backoff_base_ms(), 1'000, "backoff_base_ms", d.backoff_cap_ms(), 600'000,
              "backoff_cap_ms", "base");
  at_most_cap(d.breaker_cooldown_ms(), 30'000, "breaker_cooldown_ms", d.breaker_cooldown_cap_ms(),
              600'000, "breaker_cooldown_cap_ms", "cool-down");
  if (!(d.max_age_hours() >= 0 && d.max_age_hours() <= 24 * 366))
    Report("delivery.max_age_hours", "must be between 0 (default 72) and 8784 (one year), got " +
                                         Number(d.max_age_hours()));
  if (d.workers() > 64) Report("delivery.workers", "must be at most 64, got " + std::to_string(d.workers()));
  if (d.timeout_ms() > 600'000)
    Report("delivery.timeout_ms", "must be at most 600000 (10 min), got " + std::to_string(d.timeout_ms()));
  if (d.max_attempts() > 100'000)
    Report("delivery.max_attempts", "must be at most 100000, got " + std::to_string(d.max_attempts()));
}

// The metrics policy: each denominator is one its rate allows; index terms name a rate once,
// with a positive finite weight.
void CityChecker::CheckMetrics() {
  using namespace casebus::v1;
  const auto& m = config_.metrics();
  const auto c = m.closure_denominator();
  if (c != DENOMINATOR_UNSPECIFIED && c != DUE_CASES && c != REGISTERED_LESS_PENDING)
    Report("metrics.closure_denominator", "must be due_cases or registered_less_pending");
  const auto r = m.rework_denominator();
  if (r != DENOMINATOR_UNSPECIFIED && r != DUE_CASES && r != REGISTERED_CASES)
    Report("metrics.rework_denominator", "must be due_cases or registered_cases");
  if (m.min_sample() > 1'000'000)
    Report("metrics.min_sample", "must be at most 1000000, got " + std::to_string(m.min_sample()));
  std::set<int> rates;
  for (int i = 0; i < m.index_size(); ++i) {
    const auto& t = m.index(i);
    const std::string path = "metrics.index[" + std::to_string(i) + "]";
    if (t.rate() == RATE_UNSPECIFIED) Report(path + ".rate", "is required");
    else if (!rates.insert(t.rate()).second)
      Report(path + ".rate", Rate_Name(t.rate()) + " appears twice in the index");
    if (!(std::isfinite(t.weight()) && t.weight() > 0 && t.weight() <= 1000))
      Report(path + ".weight", "must be above 0 and at most 1000, got " + Number(t.weight()));
  }
}

void Validate(const casebus::v1::CityConfig& config, const SourceLines& lines, Problems& problems) {
  CityChecker(config, lines, problems).Run();
}

Status ValidateCityConfig(const casebus::v1::CityConfig& config, std::string_view source_name) {
  SourceLines no_lines;
  Problems problems(source_name);
  Validate(config, no_lines, problems);
  return problems.ToStatus();
}

}  // namespace casebus::config

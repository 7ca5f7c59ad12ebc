#include "engine/config/time_zone.h"

#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>
#include <fstream>
#include <optional>
#include <string>

#include "engine/base/time_format.h"

namespace casebus::config {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::minutes;

// Where date's USE_OS_TZDB build reads the zones (it hard-codes the same directory).
constexpr const char* kZoneInfoDir = "/usr/share/zoneinfo/";
constexpr size_t kMaxZoneFileBytes = 1 << 20;

date::sys_seconds StartOfYear(int year) {
  return date::sys_days{date::year{year} / date::January / 1};
}

Millis ToMillis(date::sys_seconds t) {
  return duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// Adds a change to the history unless it leaves the offset as it is.
void Append(std::vector<OffsetChange>& offsets, Millis at, int offset_minutes) {
  if (offsets.empty() || offsets.back().offset_minutes != offset_minutes) {
    offsets.push_back({at, offset_minutes});
  }
}

// A POSIX TZ rule (RFC 8536 §3.3), the footer of a TZif file: how a zone goes on after the last
// transition its file lists. Debian's files list transitions up to 2037 only. tzdata writes
// every yearly change as Mm.w.d[/time], the only form accepted here.
class PosixRule {
 public:
  // nullopt when `text` is not a rule of that form.
  static std::optional<PosixRule> Parse(std::string_view text);

  // Appends the changes in (after, before) to `offsets`.
  void AppendChanges(Millis after, Millis before, std::vector<OffsetChange>& offsets) const;

 private:
  struct Change {  // the Dth weekday (0 = Sunday) of week W (5 = last) of month M, at `time`
    int month = 0, week = 0, weekday = 0;
    int time_s = 2 * 3600;  // local seconds after midnight, -167 h..167 h
  };
  bool Name();
  std::optional<int> Seconds(bool allow_sign);
  std::optional<Change> ParseChange();
  static int64_t DayOf(int year, const Change& change);

  std::string_view rest_;
  int std_offset_s_ = 0;  // east of UTC, positive
  int dst_offset_s_ = 0;
  bool has_dst_ = false;
  Change start_, end_;  // start: entering DST, in standard time; end: leaving it, in DST
};

bool PosixRule::Name() {
  if (!rest_.empty() && rest_[0] == '<') {
    size_t close = rest_.find('>');
    if (close == std::string_view::npos) return false;
    rest_.remove_prefix(close + 1);
    return true;
  }
  size_t n = 0;
  while (n < rest_.size() && std::isalpha(static_cast<unsigned char>(rest_[n]))) ++n;
  rest_.remove_prefix(n);
  return n >= 3;
}

// [+-]hh[:mm[:ss]] in seconds.
std::optional<int> PosixRule::Seconds(bool allow_sign) {
  int sign = 1;
  if (allow_sign && !rest_.empty() && (rest_[0] == '+' || rest_[0] == '-')) {
    sign = rest_[0] == '-' ? -1 : 1;
    rest_.remove_prefix(1);
  }
  int total = 0;
  for (int part = 0; part < 3; ++part) {
    if (part > 0) {
      if (rest_.empty() || rest_[0] != ':') break;
      rest_.remove_prefix(1);
    }
    int value = 0, digits = 0;
    while (!rest_.empty() && std::isdigit(static_cast<unsigned char>(rest_[0])) && digits < 3) {
      value = value * 10 + (rest_[0] - '0');
      rest_.remove_prefix(1);
      ++digits;
    }
    if (digits == 0 || value > (part == 0 ? 167 : 59)) return std::nullopt;
    total += value * (part == 0 ? 3600 : part == 1 ? 60 : 1);
  }
  return sign * total;
}

std::optional<PosixRule::Change> PosixRule::ParseChange() {
  Change c;
  auto number = [&](int& out, char after) {
    size_t n = 0;
    out = 0;
    while (n < rest_.size() && n < 2 && std::isdigit(static_cast<unsigned char>(rest_[n]))) {
      out = out * 10 + (rest_[n++] - '0');
    }
    rest_.remove_prefix(n);
    if (n == 0 || (after != 0 && (rest_.empty() || rest_[0] != after))) return false;
    if (after != 0) rest_.remove_prefix(1);
    return true;
  };
  if (rest_.empty() || rest_[0] != 'M') return std::nullopt;
  rest_.remove_prefix(1);
  if (!number(c.month, '.') || !number(c.week, '.') || !number(c.weekday, 0)) return std::nullopt;
  if (c.month < 1 || c.month > 12 || c.week < 1 || c.week > 5 || c.weekday > 6) {
    return std::nullopt;
  }
  if (!rest_.empty() && rest_[0] == '/') {
    rest_.remove_prefix(1);
    auto time = Seconds(true);
    if (!time) return std::nullopt;
    c.time_s = *time;
  }
  return c;
}

std::optional<PosixRule> PosixRule::Parse(std::string_view text) {
  PosixRule r;
  r.rest_ = text;
  if (!r.Name()) return std::nullopt;
  auto offset = r.Seconds(true);  // POSIX counts west of UTC as positive
  if (!offset) return std::nullopt;
  r.std_offset_s_ = -*offset;
  if (r.rest_.empty()) return r;
  if (!r.Name()) return std::nullopt;
  r.has_dst_ = true;
  r.dst_offset_s_ = r.std_offset_s_ + 3600;
  if (!r.rest_.empty() && r.rest_[0] != ',') {
    auto dst = r.Seconds(true);
    if (!dst) return std::nullopt;
    r.dst_offset_s_ = -*dst;
  }
  if (r.rest_.empty() || r.rest_[0] != ',') return std::nullopt;
  r.rest_.remove_prefix(1);
  auto start = r.ParseChange();
  if (!start || r.rest_.empty() || r.rest_[0] != ',') return std::nullopt;
  r.rest_.remove_prefix(1);
  auto end = r.ParseChange();
  if (!end || !r.rest_.empty()) return std::nullopt;
  r.start_ = *start;
  r.end_ = *end;
  return r;
}

int64_t PosixRule::DayOf(int year, const Change& c) {
  const int64_t first = DaysFromCivil(year, static_cast<unsigned>(c.month), 1);
  const int64_t next = c.month == 12 ? DaysFromCivil(year + 1, 1, 1)
                                     : DaysFromCivil(year, static_cast<unsigned>(c.month + 1), 1);
  const int first_weekday = static_cast<int>(((first + 4) % 7 + 7) % 7);  // 1970-01-01: Thu
  int64_t day = first + (c.weekday - first_weekday + 7) % 7 + int64_t{7} * (c.week - 1);
  while (day >= next) day -= 7;  // week 5: the last one in the month
  return day;
}

void PosixRule::AppendChanges(Millis after, Millis before,
                              std::vector<OffsetChange>& offsets) const {
  if (!has_dst_) return;  // the offset the file's last interval has
  int y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(after / kDay, y, m, d);
  // A change's local time is in the offset it ends: standard time for start_, DST for end_.
  auto at = [](int year, const Change& c, int offset_s) {
    return DayOf(year, c) * kDay + static_cast<Millis>(c.time_s - offset_s) * 1000;
  };
  std::vector<OffsetChange> changes;
  const int years = static_cast<int>((before - after) / (365 * kDay));
  for (int year = y - 1; year <= y + 1 + years; ++year) {
    changes.push_back({at(year, start_, std_offset_s_), dst_offset_s_ / 60});
    changes.push_back({at(year, end_, dst_offset_s_), std_offset_s_ / 60});
  }
  std::sort(changes.begin(), changes.end(),
            [](const OffsetChange& a, const OffsetChange& b) { return a.at_utc < b.at_utc; });
  for (const OffsetChange& c : changes) {
    if (c.at_utc > after && c.at_utc < before) Append(offsets, c.at_utc, c.offset_minutes);
  }
}

// The footer of the zone's TZif (version 2+) file; nullopt when the file has none.
std::optional<std::string> FooterOf(const std::string& zone_name) {
  std::ifstream in(kZoneInfoDir + zone_name, std::ios::binary | std::ios::ate);
  const std::streamoff size = in ? static_cast<std::streamoff>(in.tellg()) : -1;
  if (size <= 0 || size > static_cast<std::streamoff>(kMaxZoneFileBytes)) return std::nullopt;
  std::string data(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(data.data(), size)) return std::nullopt;
  if (data.size() < 6 || data.compare(0, 4, "TZif") != 0 || data[4] < '2' || data.back() != '\n') {
    return std::nullopt;
  }
  size_t start = data.rfind('\n', data.size() - 2);
  if (start == std::string::npos) return std::nullopt;
  return data.substr(start + 1, data.size() - start - 2);
}

}  // namespace

Result<std::vector<OffsetChange>> ZoneOffsets(std::string_view iana_name, int from_year,
                                              int to_year) {
  const std::string zone_name(iana_name);
  if (from_year < 1900 || to_year > 2200 || from_year > to_year) {
    return Err(Status::InvalidArgument("time zone \"" + zone_name + "\": years " +
                                       std::to_string(from_year) + ".." + std::to_string(to_year) +
                                       " must be within 1900..2200, in order"));
  }
  try {
    const date::time_zone* zone = date::locate_zone(iana_name);
    const date::sys_seconds end = StartOfYear(to_year + 1);
    // An interval ending this late is the last the zone's file lists.
    const date::sys_seconds open_ended = StartOfYear(9999);
    std::vector<OffsetChange> offsets;
    for (date::sys_seconds t = StartOfYear(from_year); t < end;) {
      const date::sys_info info = zone->get_info(t);
      Append(offsets, ToMillis(t), static_cast<int>(duration_cast<minutes>(info.offset).count()));
      if (info.end >= open_ended) {
        auto footer = FooterOf(zone_name);
        auto rule = footer ? PosixRule::Parse(*footer) : std::nullopt;
        if (footer && !footer->empty() && !rule) {
          return Err(Status::InvalidArgument("time zone \"" + zone_name +
                                             "\": unsupported rule for later years: " + *footer));
        }
        if (rule) rule->AppendChanges(ToMillis(t), ToMillis(end), offsets);
        break;
      }
      if (info.end <= t) break;  // defensive: the database always moves forward
      t = info.end;
    }
    return offsets;
  } catch (const std::exception& e) {
    return Err(Status::InvalidArgument("time zone \"" + zone_name + "\": " + e.what()));
  } catch (...) {
    return Err(Status::InvalidArgument("time zone \"" + zone_name + "\": unreadable"));
  }
}

Result<std::vector<OffsetChange>> CalendarOffsets(const casebus::v1::CityConfig& config) {
  const std::string& zone = config.calendar().time_zone();
  if (zone.empty()) return std::vector<OffsetChange>{};
  return ZoneOffsets(zone, 2000, 2100);
}

}  // namespace casebus::config

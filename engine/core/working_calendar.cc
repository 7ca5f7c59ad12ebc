#include "engine/core/working_calendar.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "engine/base/time_format.h"

namespace casebus::core {
namespace {

constexpr int kDayMin = 24 * 60;
constexpr int64_t kRangeDays = WorkingCalendar::kLastDay - WorkingCalendar::kFirstDay + 1;
// Larger limits are nonsense; capping keeps every sum far from int64 overflow (~31,700 years).
constexpr double kMaxMillis = 1e15;

int ParseHhMm(const std::string& s) {
  int h = 0, m = 0;
  if (std::sscanf(s.c_str(), "%d:%d", &h, &m) != 2 || h < 0 || m < 0 || m > 59) return -1;
  return h * 60 + m;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// ISO weekday of a day number (1970-01-01 was a Thursday = 4).
int IsoWeekday(int64_t day) {
  int64_t w = (day + 3) % 7;
  if (w < 0) w += 7;
  return static_cast<int>(w) + 1;
}

Millis ToMillis(double ms) {
  if (!(ms > 0)) return 0;
  return std::llround(std::min(ms, kMaxMillis));
}

// Valid windows, sorted, overlaps merged. Validation already refuses what this repairs.
template <typename Windows, typename Window>
void ParseWindows(const Windows& from, std::vector<Window>& to) {
  for (const auto& w : from) {
    int s = ParseHhMm(w.start()), e = ParseHhMm(w.end());
    if (s >= 0 && e > s && e <= kDayMin) to.push_back({s, e});
  }
  std::sort(to.begin(), to.end(),
            [](const Window& a, const Window& b) { return a.start_min < b.start_min; });
  size_t kept = 0;
  for (size_t k = 0; k < to.size(); ++k) {
    if (kept > 0 && to[k].start_min <= to[kept - 1].end_min) {
      to[kept - 1].end_min = std::max(to[kept - 1].end_min, to[k].end_min);
    } else {
      to[kept++] = to[k];
    }
  }
  to.resize(kept);
}

std::vector<int64_t> SortedDays(const google::protobuf::RepeatedPtrField<std::string>& dates) {
  std::vector<int64_t> days;
  for (const auto& d : dates)
    if (auto day = ParseDate(d)) days.push_back(*day);
  std::sort(days.begin(), days.end());
  return days;
}

}  // namespace

WorkingCalendar::WorkingCalendar(const v1::Calendar& c, std::vector<OffsetChange> offsets)
    : fixed_offset_min_(c.utc_offset_minutes()), offsets_(std::move(offsets)) {
  std::stable_sort(
      offsets_.begin(), offsets_.end(),
      [](const OffsetChange& a, const OffsetChange& b) { return a.at_utc < b.at_utc; });
  std::vector<Window> standard;
  ParseWindows(c.windows(), standard);
  if (standard.empty()) standard = {{8 * 60 + 30, 12 * 60}, {13 * 60 + 30, 17 * 60 + 30}};
  for (int d = 1; d <= 7; ++d) windows_[d] = standard;
  for (const auto& ww : c.weekday_windows()) {
    std::vector<Window> own;
    ParseWindows(ww.windows(), own);
    if (ww.weekday() >= 1 && ww.weekday() <= 7 && !own.empty()) windows_[ww.weekday()] = own;
  }
  const int make_up = c.make_up_windows_weekday();
  windows_[kMakeUp] = windows_[make_up >= 1 && make_up <= 7 ? make_up : 1];
  for (int s = 0; s < 8; ++s) {
    for (const Window& w : windows_[s]) windows_min_[s] += w.end_min - w.start_min;
  }
  if (c.work_weekdays().empty()) {
    for (int d = 1; d <= 5; ++d) weekday_works_[d] = true;
  } else {
    for (int d : c.work_weekdays())
      if (d >= 1 && d <= 7) weekday_works_[d] = true;
  }
  holidays_ = SortedDays(c.holidays());
  make_up_days_ = SortedDays(c.make_up_days());
  BuildDayOffsets();
  BuildPrefixes();
}

// One offset per day, read at local noon (twice: the first guess of noon's UTC instant uses the
// previous day's offset). Consecutive midnights must not go backwards, so a day's offset is at
// most a day more than the previous one's (Samoa's skipped 2011-12-30 becomes an empty day).
void WorkingCalendar::BuildDayOffsets() {
  offset_min_.assign(kRangeDays + 1,
                     static_cast<int16_t>(std::clamp(fixed_offset_min_, -kDayMin, kDayMin)));
  if (offsets_.empty()) return;
  size_t k = 0;
  auto offset_at = [&](Millis t) {
    while (k + 1 < offsets_.size() && offsets_[k + 1].at_utc <= t) ++k;
    while (k > 0 && offsets_[k].at_utc > t) --k;
    return std::clamp(offsets_[k].offset_minutes, -kDayMin, kDayMin);
  };
  int previous = offset_at((kFirstDay - 1) * kDay + 12 * kHour);
  for (int64_t i = 0; i <= kRangeDays; ++i) {
    const Millis noon = (kFirstDay + i) * kDay + 12 * kHour;
    int offset = offset_at(noon - previous * kMinute);
    offset = offset_at(noon - offset * kMinute);
    if (i > 0) offset = std::min(offset, offset_min_[i - 1] + kDayMin);
    offset_min_[i] = static_cast<int16_t>(offset);
    previous = offset;
  }
}

void WorkingCalendar::BuildPrefixes() {
  schedule_.assign(kRangeDays, 0);
  minutes_before_.assign(kRangeDays + 1, 0);
  days_before_.assign(kRangeDays + 1, 0);
  auto holiday = std::lower_bound(holidays_.begin(), holidays_.end(), kFirstDay);
  auto make_up = std::lower_bound(make_up_days_.begin(), make_up_days_.end(), kFirstDay);
  int weekday = IsoWeekday(kFirstDay);
  for (int64_t i = 0; i < kRangeDays; ++i, weekday = weekday % 7 + 1) {
    const int64_t day = kFirstDay + i;
    while (holiday != holidays_.end() && *holiday < day) ++holiday;
    while (make_up != make_up_days_.end() && *make_up < day) ++make_up;
    const bool is_make_up = make_up != make_up_days_.end() && *make_up == day;
    const bool is_holiday = holiday != holidays_.end() && *holiday == day;
    const bool works = is_make_up || (!is_holiday && weekday_works_[weekday]);
    schedule_[i] = static_cast<uint8_t>(is_make_up ? kMakeUp : weekday);
    const int length = kDayMin + offset_min_[i] - offset_min_[i + 1];
    minutes_before_[i + 1] = minutes_before_[i] + (works ? DayMinutes(i, length) : 0);
    days_before_[i + 1] = days_before_[i] + (works ? 1 : 0);
  }
}

// Working minutes of day index i whose local day lasts `day_length_min` (1440 but on DST days).
int WorkingCalendar::DayMinutes(int64_t i, int day_length_min) const {
  const auto& windows = windows_[schedule_[i]];
  if (day_length_min >= kDayMin) return windows_min_[schedule_[i]];
  int total = 0;
  for (const Window& w : windows) {
    total += std::min(w.end_min, day_length_min) - std::min(w.start_min, day_length_min);
  }
  return total;
}

Millis WorkingCalendar::Midnight(int64_t i) const {
  return (kFirstDay + i) * kDay - static_cast<Millis>(offset_min_[i]) * kMinute;
}

int64_t WorkingCalendar::DayIndex(Millis t) const {
  // Offsets are within a day, so the local day is the UTC day or one of its neighbours.
  int64_t i = std::clamp<int64_t>(FloorDiv(t, kDay) - kFirstDay + 1, 0, Days() - 1);
  while (i > 0 && Midnight(i) > t) --i;
  while (i + 1 < Days() && Midnight(i + 1) <= t) ++i;
  return i;
}

Millis WorkingCalendar::Position(Millis t) const {
  const Millis begin = Midnight(0), end = Midnight(Days());
  if (t < begin) return t - begin;
  if (t >= end) return static_cast<Millis>(minutes_before_.back()) * kMinute + (t - end);
  const int64_t i = DayIndex(t);
  Millis worked = static_cast<Millis>(minutes_before_[i]) * kMinute;
  if (!Works(i)) return worked;
  const Millis midnight = Midnight(i), next = Midnight(i + 1);
  for (const Window& w : windows_[schedule_[i]]) {
    const Millis open = std::min(midnight + w.start_min * kMinute, next);
    const Millis close = std::min(midnight + w.end_min * kMinute, next);
    if (t <= open) break;
    worked += std::min(t, close) - open;
  }
  return worked;
}

Millis WorkingCalendar::InstantOf(Millis position) const {
  const Millis total = static_cast<Millis>(minutes_before_.back()) * kMinute;
  if (position <= 0) return Midnight(0) + position;
  if (position > total) return Midnight(Days()) + (position - total);
  // The first day whose working time reaches `position`: a deadline at a day's last close
  // stays on that day.
  auto it = std::lower_bound(minutes_before_.begin() + 1, minutes_before_.end(), position,
                             [](int32_t m, Millis p) { return m * kMinute < p; });
  const int64_t i = (it - minutes_before_.begin()) - 1;
  Millis left = position - static_cast<Millis>(minutes_before_[i]) * kMinute;  // > 0
  const Millis midnight = Midnight(i), next = Midnight(i + 1);
  for (const Window& w : windows_[schedule_[i]]) {
    const Millis open = std::min(midnight + w.start_min * kMinute, next);
    const Millis close = std::min(midnight + w.end_min * kMinute, next);
    if (left <= close - open) return open + left;
    left -= close - open;
  }
  return next;  // unreachable: day i holds at least `position` working time
}

Millis WorkingCalendar::AddWorking(Millis start, Millis working_ms) const {
  if (working_ms <= 0) return start;
  working_ms = std::min(working_ms, static_cast<Millis>(kMaxMillis));
  return InstantOf(Position(start) + working_ms);
}

Millis WorkingCalendar::WorkingBetween(Millis a, Millis b) const {
  return Position(b) - Position(a);
}

Millis WorkingCalendar::CloseOfNthWorkingDayAfter(int64_t local_day, int64_t n) const {
  int64_t first = local_day + 1 - kFirstDay;  // index of the first day that may count
  if (first < 0) {                            // days before the range are 24-hour working days
    if (n <= -first) return Midnight(0) + (first + n) * kDay;
    n += first;
    first = 0;
  }
  if (first > Days()) return Midnight(Days()) + (first - Days() + n) * kDay;
  const int64_t target = days_before_[first] + n;
  if (target > days_before_.back()) {
    return Midnight(Days()) + (target - days_before_.back()) * kDay;
  }
  // Day i is the target-th working day of the range when days_before_[i + 1] == target.
  auto it = std::lower_bound(days_before_.begin() + first + 1, days_before_.end(), target);
  const int64_t i = (it - days_before_.begin()) - 1;
  const Window& last = windows_[schedule_[i]].back();
  return std::min(Midnight(i) + last.end_min * kMinute, Midnight(i + 1));
}

Millis WorkingCalendar::Add(Millis start, const v1::TimeLimit& limit) const {
  const double v = limit.value();
  if (!(v > 0)) return start;
  switch (limit.clock()) {
    case v1::WORKING_HOURS:
      return AddWorking(start, ToMillis(v * kHour));
    case v1::WORKING_DAYS: {
      const double whole = std::floor(std::min(v, 1e6));
      Millis t = whole >= 1
                     ? CloseOfNthWorkingDayAfter(LocalDay(start), static_cast<int64_t>(whole))
                     : start;
      const Millis standard_day = static_cast<Millis>(windows_min_[kMakeUp]) * kMinute;
      return AddWorking(t, ToMillis((v - whole) * static_cast<double>(standard_day)));
    }
    case v1::CALENDAR_DAYS:
      return start + ToMillis(v * kDay);
    default:
      return start + ToMillis(v * kHour);
  }
}

bool WorkingCalendar::IsWorkingDay(int64_t day) const {
  const int64_t i = day - kFirstDay;
  if (i >= 0 && i < Days()) return Works(i);
  if (std::binary_search(make_up_days_.begin(), make_up_days_.end(), day)) return true;
  if (std::binary_search(holidays_.begin(), holidays_.end(), day)) return false;
  return weekday_works_[IsoWeekday(day)];
}

int64_t WorkingCalendar::LocalDay(Millis t) const {
  if (t >= Midnight(0) && t < Midnight(Days())) return kFirstDay + DayIndex(t);
  return FloorDiv(t + static_cast<Millis>(utc_offset_minutes_at(t)) * kMinute, kDay);
}

int WorkingCalendar::utc_offset_minutes_at(Millis t) const {
  if (offsets_.empty()) return fixed_offset_min_;
  auto it = std::upper_bound(offsets_.begin(), offsets_.end(), t,
                             [](Millis x, const OffsetChange& c) { return x < c.at_utc; });
  return (it == offsets_.begin() ? *it : *(it - 1)).offset_minutes;
}

}  // namespace casebus::core

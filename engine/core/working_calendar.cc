#include "engine/core/working_calendar.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/base/time_format.h"

namespace casebus::core {
namespace {

int ParseHhMm(const std::string& s) {
  int h = 0, m = 0;
  if (std::sscanf(s.c_str(), "%d:%d", &h, &m) != 2) return -1;
  return h * 60 + m;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// ISO weekday of a day number (1970-01-01 was a Thursday = 4).
int IsoWeekday(int64_t day) {
  int64_t w = (day + 3) % 7;
  if (w < 0) w += 7;
  return static_cast<int>(w) + 1;
}

}  // namespace

WorkingCalendar::WorkingCalendar(const v1::Calendar& c) : offset_min_(c.utc_offset_minutes()) {
  for (const auto& w : c.windows()) {
    int s = ParseHhMm(w.start()), e = ParseHhMm(w.end());
    if (s >= 0 && e > s) windows_.push_back({s, e});
  }
  if (windows_.empty()) windows_ = {{8 * 60 + 30, 12 * 60}, {13 * 60 + 30, 17 * 60 + 30}};
  std::sort(windows_.begin(), windows_.end(),
            [](const Window& a, const Window& b) { return a.start_min < b.start_min; });
  if (c.work_weekdays().empty()) {
    for (int d = 1; d <= 5; ++d) weekday_works_[d] = true;
  } else {
    for (int d : c.work_weekdays())
      if (d >= 1 && d <= 7) weekday_works_[d] = true;
  }
  for (const auto& h : c.holidays())
    if (auto d = ParseDate(h)) holidays_.insert(*d);
  for (const auto& h : c.make_up_days())
    if (auto d = ParseDate(h)) make_up_days_.insert(*d);
}

bool WorkingCalendar::IsWorkingDay(int64_t day) const {
  if (make_up_days_.count(day)) return true;
  if (holidays_.count(day)) return false;
  return weekday_works_[IsoWeekday(day)];
}

Millis WorkingCalendar::LocalMidnightUtc(int64_t day) const {
  return day * kDay - static_cast<Millis>(offset_min_) * kMinute;
}

Millis WorkingCalendar::AddWorkingMinutes(Millis start, int64_t minutes) const {
  const Millis offset = static_cast<Millis>(offset_min_) * kMinute;
  int64_t day = FloorDiv(start + offset, kDay);
  Millis left = minutes * kMinute;
  // Bounded: a year without a single working day would mean a broken calendar.
  for (int guard = 0; guard < 3660; ++guard, ++day) {
    if (!IsWorkingDay(day)) continue;
    const Millis midnight = LocalMidnightUtc(day);
    for (const auto& w : windows_) {
      Millis ws = midnight + w.start_min * kMinute, we = midnight + w.end_min * kMinute;
      Millis from = std::max(ws, start);
      if (from >= we) continue;
      if (we - from >= left) return from + left;
      left -= we - from;
    }
  }
  return start + minutes * kMinute;  // unreachable with a sane calendar
}

Millis WorkingCalendar::AddWorkingDays(Millis start, int64_t days) const {
  const Millis offset = static_cast<Millis>(offset_min_) * kMinute;
  int64_t day = FloorDiv(start + offset, kDay);
  int64_t counted = 0;
  for (int guard = 0; guard < 3660 && counted < days; ++guard) {
    ++day;
    if (IsWorkingDay(day)) ++counted;
  }
  return LocalMidnightUtc(day) + windows_.back().end_min * kMinute;
}

Millis WorkingCalendar::Add(Millis start, const v1::TimeLimit& limit) const {
  const double v = limit.value();
  switch (limit.clock()) {
    case v1::WORKING_HOURS:
      return AddWorkingMinutes(start, std::llround(v * 60));
    case v1::WORKING_DAYS: {
      // Whole days count to the close of the last one; a fraction is working hours of a
      // standard day on top.
      int64_t whole = static_cast<int64_t>(v);
      Millis t = whole > 0 ? AddWorkingDays(start, whole) : start;
      double frac = v - static_cast<double>(whole);
      if (frac > 0) {
        int64_t day_minutes = 0;
        for (const auto& w : windows_) day_minutes += w.end_min - w.start_min;
        t = AddWorkingMinutes(t, std::llround(frac * static_cast<double>(day_minutes)));
      }
      return t;
    }
    case v1::CALENDAR_DAYS:
      return start + std::llround(v * kDay);
    default:
      return start + std::llround(v * kHour);
  }
}

}  // namespace casebus::core

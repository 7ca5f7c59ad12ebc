#pragma once
// WorkingCalendar: deadline arithmetic in the city's working time (DOMAIN.md §3).
//
// Built once from the config's Calendar and, optionally, the zone's UTC offset history
// (engine/config/time_zone.h reads it from the tz database; the core does no I/O). Thread
// safety: immutable after construction, so any thread may read it; copies are independent.
//
// Conventions
// - Working time is the windows of working days. A working day is a make-up day (调休), or a
//   work weekday that is not a holiday. A weekday listed in Calendar.weekday_windows uses its
//   own windows, other weekdays use Calendar.windows (default 08:30–12:00, 13:30–17:30), and a
//   make-up day uses those of Calendar.make_up_windows_weekday (default Monday).
// - Each local day has one UTC offset: the one in effect at its local noon. The day runs from
//   its local midnight to the next day's, and its windows map to UTC with that offset (clipped
//   to the day). Exact for windows that do not span the zone's change hour (02:00 in New York);
//   near a night-time change an hour before or after midnight may count to the neighbouring day.
// - A working-time deadline is the first instant at which the working time is used up: a limit
//   that ends exactly where a window closes ends at the close, not at the next opening.
// - N working days (N ≥ 1) end at the close of the last window of the Nth working day AFTER
//   the start's local day: dispatched Monday (any hour), 1 working day ends Tuesday's close.
//   A fraction adds that share of a standard day (the make-up weekday's windows) on top.
// - Urgent hours and calendar days are elapsed time: 1 calendar day is 24 h, also across DST.
//
// Range and fallback: working time is tabulated for local days kFirstDay..kLastDay
// (2000-01-01..2100-12-31). Before and after it every instant counts as working time, as
// urgent hours do, and every day as a 24-hour working day; the arithmetic stays continuous
// and monotonic across the range's ends and never fails.
//
// Complexity: construction O(days in range + offset changes), about 0.4 MB; Add, AddWorking,
// WorkingBetween O(log days); LocalDay O(1); utc_offset_minutes_at O(log offset changes).

#include <array>
#include <cstdint>
#include <vector>

#include "casebus/v1/config.pb.h"
#include "engine/base/clock.h"
#include "engine/base/utc_offsets.h"

namespace casebus::core {

class WorkingCalendar {
 public:
  static constexpr int64_t kFirstDay = 10957;  // 2000-01-01, days since 1970-01-01
  static constexpr int64_t kLastDay = 47846;   // 2100-12-31

  // `offsets`: the zone's offset history (utc_offsets.h), in any order; empty means the fixed
  // calendar.utc_offset_minutes(). Expects a validated calendar; malformed windows are skipped.
  explicit WorkingCalendar(const v1::Calendar& calendar, std::vector<OffsetChange> offsets = {});

  // The instant `limit` after `start`, in the limit's clock type (see Conventions). Working
  // hours are rounded to the millisecond. A limit with no clock counts as urgent hours.
  // REQUIRES: limit.value() > 0; otherwise returns `start`.
  Millis Add(Millis start, const v1::TimeLimit& limit) const;
  // The first instant t ≥ start with WorkingBetween(start, t) == working_ms. A start outside
  // working time counts from the next opening. working_ms ≤ 0 returns `start`.
  Millis AddWorking(Millis start, Millis working_ms) const;
  Millis AddWorkingMinutes(Millis start, int64_t minutes) const {
    return AddWorking(start, minutes * kMinute);
  }
  // Working milliseconds in [a, b); negative (−WorkingBetween(b, a)) when b < a.
  // With t = AddWorking(a, WorkingBetween(a, b)) and a ≤ b: WorkingBetween(a, t) equals
  // WorkingBetween(a, b) and t ≤ b; t == b when b is inside a window or at its close, else t is
  // the close of the last working before b (or a, when there is none in [a, b)).
  Millis WorkingBetween(Millis a, Millis b) const;

  bool IsWorkingDay(int64_t local_day) const;  // days since 1970-01-01, local calendar
  int64_t LocalDay(Millis t) const;            // the local day holding t (see Conventions)
  // The offset in effect at t per the offset history (exact, for display).
  int utc_offset_minutes_at(Millis t) const;

 private:
  struct Window {
    int start_min;  // minutes after local midnight
    int end_min;    // ≤ 24 * 60
  };
  static constexpr int kMakeUp = 0;  // schedule index of make-up days; 1..7 are ISO weekdays

  void BuildDayOffsets();
  void BuildPrefixes();
  int DayMinutes(int64_t i, int day_length_min) const;

  int64_t Days() const { return static_cast<int64_t>(schedule_.size()); }
  Millis Midnight(int64_t i) const;  // UTC instant of local midnight of day index i (0..Days())
  int64_t DayIndex(Millis t) const;  // REQUIRES: Midnight(0) ≤ t < Midnight(Days())
  bool Works(int64_t i) const { return days_before_[i + 1] != days_before_[i]; }
  // Working ms in [Midnight(0), t); wall time outside the range.
  Millis Position(Millis t) const;
  Millis InstantOf(Millis position) const;  // the first t with Position(t) == position
  Millis CloseOfNthWorkingDayAfter(int64_t local_day, int64_t n) const;

  int fixed_offset_min_;
  std::vector<OffsetChange> offsets_;           // sorted by at_utc
  std::array<std::vector<Window>, 8> windows_;  // by schedule index
  std::array<int, 8> windows_min_{};            // total minutes of each schedule
  bool weekday_works_[8] = {};                  // ISO 1..7
  std::vector<int64_t> holidays_;               // sorted local days
  std::vector<int64_t> make_up_days_;           // sorted local days

  // Per local day index i = day − kFirstDay:
  std::vector<int16_t> offset_min_;      // i in 0..Days(): UTC offset at local noon
  std::vector<uint8_t> schedule_;        // i in 0..Days()-1: schedule index of a working day
  std::vector<int32_t> minutes_before_;  // i in 0..Days(): working minutes in days [0, i)
  std::vector<int32_t> days_before_;     // i in 0..Days(): working days in [0, i)
};

}  // namespace casebus::core

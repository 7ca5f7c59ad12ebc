#pragma once
// WorkingCalendar: deadline arithmetic in the city's working time (DOMAIN.md §3).
// Built once from the config's Calendar; immutable, so any thread may read it.
//
// Limitations: the zone is a fixed UTC offset (utc_offset_minutes); China has no DST. Adding
// working time walks day by day (cost linear in the days spanned); the deadlines issue
// replaces this with O(log days) arithmetic.

#include <cstdint>
#include <unordered_set>
#include <vector>

#include "casebus/v1/config.pb.h"
#include "engine/base/clock.h"

namespace casebus::core {

class WorkingCalendar {
 public:
  explicit WorkingCalendar(const v1::Calendar& calendar);

  // The instant `limit` after `start`, in the limit's clock type.
  // REQUIRES: limit.value() > 0. A limit with no clock counts as urgent hours.
  Millis Add(Millis start, const v1::TimeLimit& limit) const;
  Millis AddWorkingMinutes(Millis start, int64_t minutes) const;
  bool IsWorkingDay(int64_t local_day) const;
  int utc_offset_minutes() const { return offset_min_; }

 private:
  struct Window {
    int start_min;  // minutes after local midnight
    int end_min;
  };
  Millis AddWorkingDays(Millis start, int64_t days) const;
  Millis LocalMidnightUtc(int64_t local_day) const;

  int offset_min_;
  std::vector<Window> windows_;
  bool weekday_works_[8] = {};  // ISO 1..7
  std::unordered_set<int64_t> holidays_;
  std::unordered_set<int64_t> make_up_days_;
};

}  // namespace casebus::core

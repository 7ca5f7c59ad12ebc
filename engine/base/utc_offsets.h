#pragma once
// OffsetChange: one step of a time zone's UTC offset history, as plain data. engine/config reads
// them from the tz database (time_zone.h); engine/core's WorkingCalendar takes them as input, so
// the core does no I/O and config does not depend on core.
// A zone is a vector sorted by at_utc: entry k's offset holds from its at_utc until the next
// entry's; before the first entry the first offset holds.

#include "engine/base/clock.h"

namespace casebus {

struct OffsetChange {
  Millis at_utc;       // the instant the offset takes effect
  int offset_minutes;  // local time = UTC + offset (DST included), e.g. 480 for +08:00

  friend bool operator==(const OffsetChange&, const OffsetChange&) = default;
};

}  // namespace casebus

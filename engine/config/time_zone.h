#pragma once
// Time zones: a zone's UTC offset history, read from the OS tz database (/usr/share/zoneinfo,
// through Howard Hinnant's date library), as plain data for engine/core's WorkingCalendar.
// Thread safety: reentrant; the tz database is loaded once per process, on first use.

#include <string_view>
#include <vector>

#include "casebus/v1/config.pb.h"
#include "engine/base/status.h"
#include "engine/base/utc_offsets.h"

namespace casebus::config {

// The offsets (DST included) of `iana_name` from 00:00 UTC on 1 January of `from_year` to the
// end of `to_year`: the first entry is at that start, each later one is a change of offset.
// InvalidArgument naming the zone when it is unknown (or the database cannot be read), or when
// the years are not 1900 ≤ from_year ≤ to_year ≤ 2200. Never throws.
Result<std::vector<OffsetChange>> ZoneOffsets(std::string_view iana_name, int from_year,
                                              int to_year);

// ZoneOffsets of config.calendar().time_zone() for 2000..2100 (the WorkingCalendar's range);
// an empty vector when time_zone is empty (the calendar then uses utc_offset_minutes).
Result<std::vector<OffsetChange>> CalendarOffsets(const casebus::v1::CityConfig& config);

}  // namespace casebus::config

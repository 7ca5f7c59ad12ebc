#pragma once
// ISO 8601 formatting and parsing of instants at a fixed UTC offset (the city's).

#include <optional>
#include <string>
#include <string_view>

#include "engine/base/clock.h"

namespace casebus {

// "2026-11-27T09:30:00+08:00"
std::string FormatIso(Millis t, int utc_offset_minutes);
// Accepts "YYYY-MM-DDTHH:MM[:SS][.fff](Z|±HH:MM)". nullopt when malformed.
std::optional<Millis> ParseIso(std::string_view text);
// Days since 1970-01-01 for a civil date, and back (proleptic Gregorian).
int64_t DaysFromCivil(int y, unsigned m, unsigned d);
void CivilFromDays(int64_t z, int& y, unsigned& m, unsigned& d);
// Days since 1970-01-01 → "YYYY-MM-DD".
std::string FormatDate(int64_t days);
// "YYYY-MM-DD" → days since epoch; nullopt when malformed or not a real date.
std::optional<int64_t> ParseDate(std::string_view text);

}  // namespace casebus

// engine/config/time_zone: offset histories read from the OS tz database. Expected instants are
// worked out by hand from the zones' rules.

#include "engine/config/time_zone.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string_view>
#include <vector>

#include "engine/base/time_format.h"

namespace casebus {

// Found by gtest through argument-dependent lookup.
void PrintTo(const OffsetChange& c, std::ostream* os) {
  *os << "{" << FormatIso(c.at_utc, 0) << ", " << c.offset_minutes << "}";
}

namespace config {
namespace {

Millis Utc(std::string_view iso) { return ParseIso(iso).value(); }

// The offset the history gives at t.
int OffsetAt(const std::vector<OffsetChange>& offsets, Millis t) {
  int offset = offsets.front().offset_minutes;
  for (const auto& change : offsets)
    if (change.at_utc <= t) offset = change.offset_minutes;
  return offset;
}

TEST(ZoneOffsets, ShanghaiIsPlusEightWithDaylightTimeIn1986To1991) {
  auto offsets = ZoneOffsets("Asia/Shanghai", 1985, 2026);
  ASSERT_TRUE(offsets) << offsets.error().message();
  // 1985 starts at +08:00; then six summers at +09:00 and +08:00 ever since: 13 entries.
  ASSERT_EQ(offsets->size(), 13u);
  EXPECT_EQ(offsets->front(), (OffsetChange{Utc("1985-01-01T00:00:00Z"), 480}));
  // Rule Shang 1986 May 4 02:00 standard time = 1986-05-03 18:00 UTC.
  EXPECT_EQ((*offsets)[1], (OffsetChange{Utc("1986-05-03T18:00:00Z"), 540}));
  int summers = 0;
  for (size_t k = 1; k < offsets->size(); ++k) {
    EXPECT_EQ((*offsets)[k].offset_minutes, k % 2 == 1 ? 540 : 480) << k;
    EXPECT_LT((*offsets)[k - 1].at_utc, (*offsets)[k].at_utc);
    if ((*offsets)[k].offset_minutes == 540) ++summers;
  }
  EXPECT_EQ(summers, 6);  // 1986..1991
  EXPECT_LT(offsets->back().at_utc, Utc("1992-01-01T00:00:00Z"));
  EXPECT_EQ(OffsetAt(*offsets, Utc("1988-07-01T00:00:00Z")), 540);
  EXPECT_EQ(OffsetAt(*offsets, Utc("2026-07-01T00:00:00Z")), 480);
  EXPECT_EQ(OffsetAt(*offsets, Utc("2026-12-31T23:59:59Z")), 480);
}

TEST(ZoneOffsets, NewYorkSwitchesBetweenMinusFiveAndMinusFour) {
  auto offsets = ZoneOffsets("America/New_York", 2026, 2026);
  ASSERT_TRUE(offsets) << offsets.error().message();
  // US rule: second Sunday of March 02:00 EST (07:00 UTC), first Sunday of November 02:00 EDT
  // (06:00 UTC). 2026-03-08 and 2026-11-01 are those Sundays.
  std::vector<OffsetChange> want = {{Utc("2026-01-01T00:00:00Z"), -300},
                                    {Utc("2026-03-08T07:00:00Z"), -240},
                                    {Utc("2026-11-01T06:00:00Z"), -300}};
  EXPECT_EQ(*offsets, want);
}

TEST(ZoneOffsets, ReachesTheEndOfTheCentury) {
  auto offsets = ZoneOffsets("America/New_York", 2000, 2100);
  ASSERT_TRUE(offsets) << offsets.error().message();
  EXPECT_EQ(offsets->size(), 1u + 2 * 101);  // the start, then two changes a year
  // 2100-03-14 is the second Sunday of March: 07:00 UTC.
  EXPECT_EQ((*offsets)[offsets->size() - 2], (OffsetChange{Utc("2100-03-14T07:00:00Z"), -240}));
  // Every change falls on a Sunday at 02:00 local time: 07:00 UTC into DST, 06:00 UTC out of it,
  // through 2037 (the last year the file lists) and after it (the file's rule).
  for (size_t k = 1; k < offsets->size(); ++k) {
    const OffsetChange& c = (*offsets)[k];
    EXPECT_EQ((c.at_utc / kDay + 4) % 7, 0) << FormatIso(c.at_utc, 0);  // 1970-01-01: Thursday
    EXPECT_EQ(c.at_utc % kDay, c.offset_minutes == -240 ? 7 * kHour : 6 * kHour);
    EXPECT_EQ(c.offset_minutes, k % 2 == 1 ? -240 : -300);
  }
}

// Debian's zone files list changes up to 2037; later years follow the file's POSIX rule.
TEST(ZoneOffsets, LaterYearsFollowTheZonesRule) {
  // Sydney "AEST-10AEDT,M10.1.0,M4.1.0/3": DST ends on the first Sunday of April (2050-04-03)
  // at 03:00 +11:00 = 04-02 16:00 UTC, starts on the first Sunday of October (2050-10-02) at
  // 02:00 +10:00 = 10-01 16:00 UTC.
  auto sydney = ZoneOffsets("Australia/Sydney", 2050, 2050);
  ASSERT_TRUE(sydney) << sydney.error().message();
  std::vector<OffsetChange> want = {{Utc("2050-01-01T00:00:00Z"), 660},
                                    {Utc("2050-04-02T16:00:00Z"), 600},
                                    {Utc("2050-10-01T16:00:00Z"), 660}};
  EXPECT_EQ(*sydney, want);
  // Dublin "IST-1GMT0,M10.5.0,M3.5.0/1" (negative DST, winter is the exception): GMT from the
  // last Sunday of October (2050-10-30) 02:00 +01:00 = 01:00 UTC; back to +01:00 on the last
  // Sunday of March (2050-03-27) 01:00 +00:00 = 01:00 UTC.
  auto dublin = ZoneOffsets("Europe/Dublin", 2050, 2050);
  ASSERT_TRUE(dublin) << dublin.error().message();
  want = {{Utc("2050-01-01T00:00:00Z"), 0},
          {Utc("2050-03-27T01:00:00Z"), 60},
          {Utc("2050-10-30T01:00:00Z"), 0}};
  EXPECT_EQ(*dublin, want);
}

TEST(ZoneOffsets, UnknownZoneIsAnErrorNamingIt) {
  auto offsets = ZoneOffsets("Mars/Olympus_Mons", 2000, 2100);
  ASSERT_FALSE(offsets);
  EXPECT_EQ(offsets.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(offsets.error().message().find("Mars/Olympus_Mons"), std::string::npos)
      << offsets.error().message();
  EXPECT_FALSE(ZoneOffsets("", 2000, 2100));
}

TEST(ZoneOffsets, YearsOutOfOrderAreAnError) {
  auto offsets = ZoneOffsets("Asia/Shanghai", 2030, 2020);
  ASSERT_FALSE(offsets);
  EXPECT_EQ(offsets.error().code(), StatusCode::kInvalidArgument);
}

TEST(CalendarOffsets, ReadsTheConfigsZoneFor2000To2100) {
  casebus::v1::CityConfig city;
  auto none = CalendarOffsets(city);
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_TRUE(none->empty());

  city.mutable_calendar()->set_time_zone("Asia/Shanghai");
  auto shanghai = CalendarOffsets(city);
  ASSERT_TRUE(shanghai) << shanghai.error().message();
  std::vector<OffsetChange> want = {{Utc("2000-01-01T00:00:00Z"), 480}};
  EXPECT_EQ(*shanghai, want);

  city.mutable_calendar()->set_time_zone("Nowhere/Special");
  EXPECT_FALSE(CalendarOffsets(city));
}

}  // namespace
}  // namespace config
}  // namespace casebus

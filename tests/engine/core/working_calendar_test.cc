// WorkingCalendar: deadline arithmetic on SmallCity's calendar (+08:00, 08:30–12:00 and
// 13:30–17:30, Mon–Fri; holidays 2026-09-25 and the National Day week; make-up working days
// Sunday 2026-09-20 and Saturday 2026-10-10). Every expected instant is worked out by hand.

#include "engine/core/working_calendar.h"

#include <gtest/gtest.h>

#include <string_view>

#include "engine/base/time_format.h"
#include "tests/engine/core/machine_fixture.h"
#include "tests/support/test_city.h"

namespace casebus::core {
namespace {

v1::TimeLimit Limit(double value, v1::ClockType clock) {
  v1::TimeLimit l;
  l.set_value(value);
  l.set_clock(clock);
  return l;
}

class WorkingCalendarTest : public ::testing::Test {
 protected:
  WorkingCalendarTest() : calendar_(casebus::testing::SmallCity()->calendar()) {}

  // FormatIso of start + value in clock, so a failure prints readable instants.
  std::string Plus(std::string_view start, double value, v1::ClockType clock) const {
    return FormatIso(calendar_.Add(At(start), Limit(value, clock)), 480);
  }
  std::string WorkingHours(std::string_view start, double hours) const {
    return Plus(start, hours, v1::WORKING_HOURS);
  }
  std::string WorkingDays(std::string_view start, double days) const {
    return Plus(start, days, v1::WORKING_DAYS);
  }

  WorkingCalendar calendar_;
};

TEST_F(WorkingCalendarTest, WorkingHoursInsideOneWindow) {
  EXPECT_EQ(WorkingHours("2026-11-02T09:00:00+08:00", 2), "2026-11-02T11:00:00+08:00");
  EXPECT_EQ(WorkingHours("2026-11-02T09:00:00+08:00", 0.5), "2026-11-02T09:30:00+08:00");
  // Ending exactly at the close of a window stays there.
  EXPECT_EQ(WorkingHours("2026-11-02T09:00:00+08:00", 3), "2026-11-02T12:00:00+08:00");
  EXPECT_EQ(WorkingHours("2026-11-02T13:30:00+08:00", 4), "2026-11-02T17:30:00+08:00");
}

TEST_F(WorkingCalendarTest, WorkingHoursSkipLunch) {
  EXPECT_EQ(WorkingHours("2026-11-02T11:00:00+08:00", 2), "2026-11-02T14:30:00+08:00");
  EXPECT_EQ(WorkingHours("2026-11-02T11:45:00+08:00", 0.5), "2026-11-02T13:45:00+08:00");
  // Starting during lunch counts from 13:30.
  EXPECT_EQ(WorkingHours("2026-11-02T12:30:00+08:00", 1), "2026-11-02T14:30:00+08:00");
}

TEST_F(WorkingCalendarTest, WorkingHoursRunOvernightToTheNextMorning) {
  EXPECT_EQ(WorkingHours("2026-11-02T16:30:00+08:00", 2), "2026-11-03T09:30:00+08:00");
  EXPECT_EQ(WorkingHours("2026-11-02T18:00:00+08:00", 1), "2026-11-03T09:30:00+08:00");
  EXPECT_EQ(WorkingHours("2026-11-02T07:00:00+08:00", 1), "2026-11-02T09:30:00+08:00");
  // A full working day is 7.5 h: 8 h from Monday 08:30 ends Tuesday 09:00.
  EXPECT_EQ(WorkingHours("2026-11-02T08:30:00+08:00", 8), "2026-11-03T09:00:00+08:00");
}

TEST_F(WorkingCalendarTest, WorkingHoursSkipTheWeekend) {
  // Friday 2026-11-06 17:00: half an hour left, then Monday 2026-11-09.
  EXPECT_EQ(WorkingHours("2026-11-06T17:00:00+08:00", 1), "2026-11-09T09:00:00+08:00");
  EXPECT_EQ(WorkingHours("2026-11-07T10:00:00+08:00", 1), "2026-11-09T09:30:00+08:00");
}

TEST_F(WorkingCalendarTest, WorkingHoursSkipHolidays) {
  // Thursday 2026-09-24 17:00; Friday 09-25 is a holiday, then the weekend.
  EXPECT_EQ(WorkingHours("2026-09-24T17:00:00+08:00", 1), "2026-09-28T09:00:00+08:00");
  // Wednesday 2026-09-30 17:00; Oct 1–7 are off (holidays and a weekend), Oct 8 works.
  EXPECT_EQ(WorkingHours("2026-09-30T17:00:00+08:00", 1), "2026-10-08T09:00:00+08:00");
}

TEST_F(WorkingCalendarTest, WorkingHoursUseMakeUpDays) {
  // Friday 2026-10-09 17:00 → Saturday 10-10 is a make-up working day.
  EXPECT_EQ(WorkingHours("2026-10-09T17:00:00+08:00", 1), "2026-10-10T09:00:00+08:00");
  // Saturday 2026-09-19 is off, Sunday 09-20 works.
  EXPECT_EQ(WorkingHours("2026-09-19T10:00:00+08:00", 1), "2026-09-20T09:30:00+08:00");
}

TEST_F(WorkingCalendarTest, WorkingDaysEndAtTheCloseOfTheLastDay) {
  EXPECT_EQ(WorkingDays("2026-11-02T10:00:00+08:00", 1), "2026-11-03T17:30:00+08:00");
  EXPECT_EQ(WorkingDays("2026-11-02T10:00:00+08:00", 3), "2026-11-05T17:30:00+08:00");
  EXPECT_EQ(WorkingDays("2026-11-06T10:00:00+08:00", 1), "2026-11-09T17:30:00+08:00");  // Fri
  EXPECT_EQ(WorkingDays("2026-11-07T10:00:00+08:00", 1), "2026-11-09T17:30:00+08:00");  // Sat
  EXPECT_EQ(WorkingDays("2026-09-30T10:00:00+08:00", 1), "2026-10-08T17:30:00+08:00");
  EXPECT_EQ(WorkingDays("2026-10-09T10:00:00+08:00", 1), "2026-10-10T17:30:00+08:00");
  // A fraction is working hours of a 7.5 h day on top: 0.5 day = 3 h 45 min after Tuesday's
  // close, i.e. Wednesday 08:30–12:00 and 13:30–13:45.
  EXPECT_EQ(WorkingDays("2026-11-02T10:00:00+08:00", 1.5), "2026-11-04T13:45:00+08:00");
  EXPECT_EQ(WorkingDays("2026-11-02T09:00:00+08:00", 0.5), "2026-11-02T14:15:00+08:00");
}

TEST_F(WorkingCalendarTest, UrgentHoursAndCalendarDaysRunNonStop) {
  EXPECT_EQ(Plus("2026-11-06T17:00:00+08:00", 2, v1::URGENT_HOURS), "2026-11-06T19:00:00+08:00");
  EXPECT_EQ(Plus("2026-09-30T23:00:00+08:00", 2, v1::URGENT_HOURS), "2026-10-01T01:00:00+08:00");
  EXPECT_EQ(Plus("2026-11-02T11:45:00+08:00", 0.5, v1::URGENT_HOURS), "2026-11-02T12:15:00+08:00");
  // A limit without a clock counts as urgent hours.
  EXPECT_EQ(Plus("2026-11-06T17:00:00+08:00", 3, v1::CLOCK_UNSPECIFIED),
            "2026-11-06T20:00:00+08:00");
  EXPECT_EQ(Plus("2026-11-06T17:00:00+08:00", 3, v1::CALENDAR_DAYS), "2026-11-09T17:00:00+08:00");
  EXPECT_EQ(Plus("2026-09-30T10:00:00+08:00", 1, v1::CALENDAR_DAYS), "2026-10-01T10:00:00+08:00");
  EXPECT_EQ(Plus("2026-11-06T17:00:00+08:00", 0.5, v1::CALENDAR_DAYS), "2026-11-07T05:00:00+08:00");
}

TEST_F(WorkingCalendarTest, WorkingDayRules) {
  auto day = [](std::string_view date) { return ParseDate(date).value(); };
  EXPECT_TRUE(calendar_.IsWorkingDay(day("2026-11-02")));   // Monday
  EXPECT_FALSE(calendar_.IsWorkingDay(day("2026-11-07")));  // Saturday
  EXPECT_FALSE(calendar_.IsWorkingDay(day("2026-11-08")));  // Sunday
  EXPECT_FALSE(calendar_.IsWorkingDay(day("2026-10-01")));  // holiday on a Thursday
  EXPECT_TRUE(calendar_.IsWorkingDay(day("2026-10-10")));   // make-up Saturday
  EXPECT_TRUE(calendar_.IsWorkingDay(day("2026-09-20")));   // make-up Sunday
  EXPECT_EQ(calendar_.utc_offset_minutes(), 480);
}

TEST(WorkingCalendarOtherCitiesTest, OffsetWindowsAndWeekdaysComeFromTheConfig) {
  v1::Calendar c;  // UTC, 09:00–17:00, Monday to Saturday
  auto* w = c.add_windows();
  w->set_start("09:00");
  w->set_end("17:00");
  for (int d = 1; d <= 6; ++d) c.add_work_weekdays(d);
  WorkingCalendar utc(c);
  EXPECT_EQ(utc.AddWorkingMinutes(At("2026-11-02T16:30:00Z"), 60), At("2026-11-03T09:30:00Z"));
  // Saturday works, Sunday does not.
  EXPECT_EQ(utc.AddWorkingMinutes(At("2026-11-06T16:30:00Z"), 60), At("2026-11-07T09:30:00Z"));
  EXPECT_EQ(utc.AddWorkingMinutes(At("2026-11-07T16:30:00Z"), 60), At("2026-11-09T09:30:00Z"));
  EXPECT_EQ(utc.Add(At("2026-11-06T12:00:00Z"), Limit(1, v1::WORKING_DAYS)),
            At("2026-11-07T17:00:00Z"));

  // An empty calendar falls back to 08:30–12:00, 13:30–17:30, Monday to Friday.
  WorkingCalendar plain{v1::Calendar()};
  EXPECT_EQ(plain.AddWorkingMinutes(At("2026-11-06T17:00:00Z"), 60), At("2026-11-09T09:00:00Z"));
  EXPECT_EQ(plain.AddWorkingMinutes(At("2026-11-02T11:30:00Z"), 60), At("2026-11-02T14:00:00Z"));
}

}  // namespace
}  // namespace casebus::core

// WorkingCalendar: deadline arithmetic on SmallCity's calendar (+08:00, 08:30–12:00 and
// 13:30–17:30, Mon–Fri; holidays 2026-09-25 and the National Day week; make-up working days
// Sunday 2026-09-20 and Saturday 2026-10-10). Every expected instant is worked out by hand.

#include "engine/core/working_calendar.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/time_format.h"
#include "tests/engine/core/machine_fixture.h"
#include "tests/support/test_city.h"

namespace casebus::core {
namespace {

int64_t Day(std::string_view date) { return ParseDate(date).value(); }

void AddWindow(google::protobuf::RepeatedPtrField<v1::WorkWindow>* windows, const char* start,
               const char* end) {
  auto* w = windows->Add();
  w->set_start(start);
  w->set_end(end);
}

// +08:00, default windows (08:30–12:00, 13:30–17:30 = 7.5 h), Mon–Fri, built in code: the real
// 2026 National Day (Oct 1–7 off, make-up Sun Sep 20 and Sat Oct 10) and 2027-01-01 off.
v1::Calendar NationalDay2026() {
  v1::Calendar c;
  c.set_utc_offset_minutes(480);
  for (int d = 1; d <= 7; ++d) c.add_holidays("2026-10-0" + std::to_string(d));
  c.add_holidays("2027-01-01");
  c.add_make_up_days("2026-09-20");
  c.add_make_up_days("2026-10-10");
  return c;
}

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
  EXPECT_EQ(calendar_.utc_offset_minutes_at(At("2026-11-02T09:00:00+08:00")), 480);
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

// Everything below is on NationalDay2026() unless it says otherwise. Working time is 7.5 h a
// day: 3.5 h in the morning (08:30–12:00), 4 h in the afternoon (13:30–17:30).
class HolidayCalendarTest : public ::testing::Test {
 protected:
  std::string Iso(Millis t) const { return FormatIso(t, 480); }
  std::string Plus(std::string_view start, double value, v1::ClockType clock) const {
    return Iso(calendar_.Add(At(start), Limit(value, clock)));
  }
  WorkingCalendar calendar_{NationalDay2026()};
};

TEST_F(HolidayCalendarTest, WorkingHoursJumpTheHolidayWeek) {
  // Wed 09-30 16:00: 1.5 h to 17:30; Oct 1–7 off; Thu 10-08 08:30 + 2.5 h = 11:00.
  EXPECT_EQ(Plus("2026-09-30T16:00:00+08:00", 4, v1::WORKING_HOURS), "2026-10-08T11:00:00+08:00");
  // Fri 10-09 16:00: 1.5 h; Sat 10-10 is a make-up day: 08:30 + 1.5 h = 10:00.
  EXPECT_EQ(Plus("2026-10-09T16:00:00+08:00", 3, v1::WORKING_HOURS), "2026-10-10T10:00:00+08:00");
  // Fri 09-18 17:00: 0.5 h; Sat off; Sun 09-20 make-up: 7.5 h ends exactly at its 17:30 close,
  // not at Monday's opening.
  EXPECT_EQ(Plus("2026-09-18T17:00:00+08:00", 8, v1::WORKING_HOURS), "2026-09-20T17:30:00+08:00");
  // Sat 09-19 09:00 is off: Sun 08:30 + 1 h.
  EXPECT_EQ(Plus("2026-09-19T09:00:00+08:00", 1, v1::WORKING_HOURS), "2026-09-20T09:30:00+08:00");
  // Wed 09-30 12:00 → Thu 10-08 12:00: 13:30–17:30 (4 h) + 08:30–12:00 (3.5 h).
  EXPECT_EQ(
      calendar_.WorkingBetween(At("2026-09-30T12:00:00+08:00"), At("2026-10-08T12:00:00+08:00")),
      7 * kHour + 30 * kMinute);
  EXPECT_FALSE(calendar_.IsWorkingDay(Day("2026-10-03")));  // Saturday inside the week
  EXPECT_FALSE(calendar_.IsWorkingDay(Day("2026-10-07")));  // Wednesday holiday
  EXPECT_TRUE(calendar_.IsWorkingDay(Day("2026-10-10")));   // make-up Saturday
  EXPECT_FALSE(calendar_.IsWorkingDay(Day("2026-10-11")));  // the Sunday after it
}

TEST_F(HolidayCalendarTest, WorkingDaysAcrossTheHolidayWeek) {
  // Tue 09-29: working days after it are Wed 09-30 (1), Thu 10-08 (2), Fri 10-09 (3),
  // Sat 10-10 make-up (4), Mon 10-12 (5); each ends at its 17:30 close.
  EXPECT_EQ(Plus("2026-09-29T10:00:00+08:00", 1, v1::WORKING_DAYS), "2026-09-30T17:30:00+08:00");
  EXPECT_EQ(Plus("2026-09-29T10:00:00+08:00", 3, v1::WORKING_DAYS), "2026-10-09T17:30:00+08:00");
  EXPECT_EQ(Plus("2026-09-29T10:00:00+08:00", 4, v1::WORKING_DAYS), "2026-10-10T17:30:00+08:00");
  EXPECT_EQ(Plus("2026-09-29T10:00:00+08:00", 5, v1::WORKING_DAYS), "2026-10-12T17:30:00+08:00");
  // Started on a holiday (Sat 10-03): the first working day after it is Thu 10-08.
  EXPECT_EQ(Plus("2026-10-03T10:00:00+08:00", 1, v1::WORKING_DAYS), "2026-10-08T17:30:00+08:00");
  // 1.5 days from Wed 09-30: Thu 10-08 close, then 3 h 45 min: Fri 08:30–12:00 + 13:30–13:45.
  EXPECT_EQ(Plus("2026-09-30T09:00:00+08:00", 1.5, v1::WORKING_DAYS), "2026-10-09T13:45:00+08:00");
}

TEST_F(HolidayCalendarTest, UrgentHoursAndCalendarDaysIgnoreTheHolidays) {
  // Non-stop: Wed 09-30 20:00 + 24 h and + 48 h, inside the holiday week.
  EXPECT_EQ(Plus("2026-09-30T20:00:00+08:00", 24, v1::URGENT_HOURS), "2026-10-01T20:00:00+08:00");
  EXPECT_EQ(Plus("2026-09-30T20:00:00+08:00", 48, v1::URGENT_HOURS), "2026-10-02T20:00:00+08:00");
  EXPECT_EQ(Plus("2026-09-30T10:00:00+08:00", 3, v1::CALENDAR_DAYS), "2026-10-03T10:00:00+08:00");
}

TEST_F(HolidayCalendarTest, YearBoundary) {
  // Thu 2026-12-31 16:00: 1.5 h; Fri 2027-01-01 holiday, weekend; Mon 01-04 08:30 + 2.5 h.
  EXPECT_EQ(Plus("2026-12-31T16:00:00+08:00", 4, v1::WORKING_HOURS), "2027-01-04T11:00:00+08:00");
  EXPECT_EQ(Plus("2026-12-31T10:00:00+08:00", 1, v1::WORKING_DAYS), "2027-01-04T17:30:00+08:00");
  // 12:00 Thu → 12:00 Mon: 4 h (Thu afternoon) + 3.5 h (Mon morning).
  EXPECT_EQ(
      calendar_.WorkingBetween(At("2026-12-31T12:00:00+08:00"), At("2027-01-04T12:00:00+08:00")),
      7 * kHour + 30 * kMinute);
  EXPECT_EQ(calendar_.LocalDay(At("2026-12-31T23:59:59+08:00")), Day("2026-12-31"));
  EXPECT_EQ(calendar_.LocalDay(At("2026-12-31T16:00:00Z")), Day("2027-01-01"));  // 00:00 local
}

TEST_F(HolidayCalendarTest, StartInsideBeforeAfterAndOnADayOff) {
  auto plus = [&](std::string_view start, Millis ms) {
    return Iso(calendar_.AddWorking(At(start), ms));
  };
  const Millis half_hour = 30 * kMinute;
  EXPECT_EQ(plus("2026-11-02T09:15:00+08:00", half_hour), "2026-11-02T09:45:00+08:00");  // inside
  EXPECT_EQ(plus("2026-11-02T06:00:00+08:00", half_hour), "2026-11-02T09:00:00+08:00");  // before
  EXPECT_EQ(plus("2026-11-02T12:10:00+08:00", half_hour), "2026-11-02T14:00:00+08:00");  // lunch
  EXPECT_EQ(plus("2026-11-02T19:00:00+08:00", half_hour), "2026-11-03T09:00:00+08:00");  // after
  EXPECT_EQ(plus("2026-11-07T11:00:00+08:00", half_hour), "2026-11-09T09:00:00+08:00");  // Sat
  // Ending at a close stays there; starting at a close goes on the next morning.
  EXPECT_EQ(plus("2026-11-02T17:00:00+08:00", half_hour), "2026-11-02T17:30:00+08:00");
  EXPECT_EQ(plus("2026-11-02T17:30:00+08:00", half_hour), "2026-11-03T09:00:00+08:00");
  EXPECT_EQ(plus("2026-11-07T11:00:00+08:00", 0), "2026-11-07T11:00:00+08:00");  // nothing to add
  EXPECT_EQ(Iso(calendar_.AddWorkingMinutes(At("2026-11-02T11:50:00+08:00"), 15)),
            "2026-11-02T13:35:00+08:00");  // 10 min before lunch, 5 after
}

TEST_F(HolidayCalendarTest, FractionalWorkingHours) {
  // 0.5 h from 11:45: 15 min to 12:00, 15 min from 13:30.
  EXPECT_EQ(Plus("2026-11-02T11:45:00+08:00", 0.5, v1::WORKING_HOURS), "2026-11-02T13:45:00+08:00");
  // 0.1 h = 6 min from 17:27: 3 min, then Tue 08:30 + 3 min.
  EXPECT_EQ(Plus("2026-11-02T17:27:00+08:00", 0.1, v1::WORKING_HOURS), "2026-11-03T08:33:00+08:00");
  // 1/3 h = 1,200,000 ms after rounding.
  EXPECT_EQ(calendar_.Add(At("2026-11-02T09:00:00+08:00"), Limit(1.0 / 3, v1::WORKING_HOURS)),
            At("2026-11-02T09:20:00+08:00"));
}

TEST_F(HolidayCalendarTest, WorkingBetweenIsSignedAndSkipsTimeOff) {
  const Millis fri5pm = At("2026-11-06T17:00:00+08:00"), mon9am = At("2026-11-09T09:00:00+08:00");
  EXPECT_EQ(calendar_.WorkingBetween(fri5pm, mon9am), 60 * kMinute);  // 30 min + 30 min
  EXPECT_EQ(calendar_.WorkingBetween(mon9am, fri5pm), -60 * kMinute);
  EXPECT_EQ(calendar_.WorkingBetween(mon9am, mon9am), 0);
  // Saturday to Sunday: nothing.
  EXPECT_EQ(
      calendar_.WorkingBetween(At("2026-11-07T08:00:00+08:00"), At("2026-11-08T20:00:00+08:00")),
      0);
}

// Friday closes at 16:00: 08:30–12:00, 13:30–16:00 (6 h).
v1::Calendar FridayClosesAt16(int make_up_windows_weekday) {
  v1::Calendar c = NationalDay2026();
  auto* friday = c.add_weekday_windows();
  friday->set_weekday(5);
  AddWindow(friday->mutable_windows(), "08:30", "12:00");
  AddWindow(friday->mutable_windows(), "13:30", "16:00");
  c.add_make_up_days("2026-11-07");  // a make-up Saturday, for this test only
  c.set_make_up_windows_weekday(make_up_windows_weekday);
  return c;
}

TEST(WorkingCalendarWeekdayWindowsTest, FridayUsesItsOwnWindows) {
  WorkingCalendar cal(FridayClosesAt16(0));  // make-up days: Monday's windows (default)
  auto iso = [](Millis t) { return FormatIso(t, 480); };
  // Fri 11-06 15:00: 1 h to 16:00; Sat 11-07 (make-up, Monday's windows) 08:30 + 1 h.
  EXPECT_EQ(iso(cal.AddWorkingMinutes(At("2026-11-06T15:00:00+08:00"), 120)),
            "2026-11-07T09:30:00+08:00");
  // Thu 11-05 17:00: 0.5 h; Fri 6 h; Sat 08:30 + 1.5 h.
  EXPECT_EQ(iso(cal.AddWorkingMinutes(At("2026-11-05T17:00:00+08:00"), 8 * 60)),
            "2026-11-07T10:00:00+08:00");
  EXPECT_EQ(iso(cal.Add(At("2026-11-05T10:00:00+08:00"), Limit(1, v1::WORKING_DAYS))),
            "2026-11-06T16:00:00+08:00");
  EXPECT_EQ(cal.WorkingBetween(At("2026-11-06T00:00:00+08:00"), At("2026-11-07T00:00:00+08:00")),
            6 * kHour);
  // Sat 15:00 on Monday's windows: 15:00–17:30 is 2.5 h, so 2 h end at 17:00.
  EXPECT_EQ(iso(cal.AddWorkingMinutes(At("2026-11-07T15:00:00+08:00"), 120)),
            "2026-11-07T17:00:00+08:00");
  // A standard day (for fractions of working days) is Monday's 7.5 h: 0.5 day = 3 h 45 min.
  EXPECT_EQ(iso(cal.Add(At("2026-11-02T09:00:00+08:00"), Limit(0.5, v1::WORKING_DAYS))),
            "2026-11-02T14:15:00+08:00");
}

TEST(WorkingCalendarWeekdayWindowsTest, MakeUpDaysCanUseFridaysWindows) {
  WorkingCalendar cal(FridayClosesAt16(5));
  auto iso = [](Millis t) { return FormatIso(t, 480); };
  // Sat 11-07 15:00 on Friday's windows: 1 h to 16:00; Mon 11-09 08:30 + 1 h.
  EXPECT_EQ(iso(cal.AddWorkingMinutes(At("2026-11-07T15:00:00+08:00"), 120)),
            "2026-11-09T09:30:00+08:00");
  // A standard day is now Friday's 6 h: 0.5 day = 3 h from Mon 09:00 = 12:00.
  EXPECT_EQ(iso(cal.Add(At("2026-11-02T09:00:00+08:00"), Limit(0.5, v1::WORKING_DAYS))),
            "2026-11-02T12:00:00+08:00");
}

// New York: EST (−05:00) until Sun 2026-03-08 07:00 UTC, EDT (−04:00) until Sun 2026-11-01
// 06:00 UTC. Passed in directly: the core needs no tz database.
std::vector<OffsetChange> NewYork2026() {
  return {{At("2025-11-02T06:00:00Z"), -300},
          {At("2026-03-08T07:00:00Z"), -240},
          {At("2026-11-01T06:00:00Z"), -300}};
}

TEST(WorkingCalendarTimeZoneTest, WindowsFollowDaylightSavingTime) {
  v1::Calendar c;  // default windows, Mon–Fri
  c.set_utc_offset_minutes(-300);
  WorkingCalendar ny(c, NewYork2026());
  // Fri 03-06 17:00 EST: 0.5 h; Mon 03-09 opens 08:30 EDT (12:30 UTC, not 13:30): + 0.5 h.
  EXPECT_EQ(ny.AddWorkingMinutes(At("2026-03-06T17:00:00-05:00"), 60),
            At("2026-03-09T09:00:00-04:00"));
  // Fri 12:00 EST → Mon 12:00 EDT: 4 h + 3.5 h of work in 71 h of wall time.
  EXPECT_EQ(ny.WorkingBetween(At("2026-03-06T12:00:00-05:00"), At("2026-03-09T12:00:00-04:00")),
            7 * kHour + 30 * kMinute);
  EXPECT_EQ(ny.Add(At("2026-03-06T10:00:00-05:00"), Limit(1, v1::WORKING_DAYS)),
            At("2026-03-09T17:30:00-04:00"));
  // Back to EST: Fri 10-30 17:00 EDT + 1 h = Mon 11-02 09:00 EST (14:00 UTC).
  EXPECT_EQ(ny.AddWorkingMinutes(At("2026-10-30T17:00:00-04:00"), 60),
            At("2026-11-02T09:00:00-05:00"));
  // Urgent hours and calendar days are elapsed time: Sat 12:00 EST + 24 h = Sun 13:00 EDT.
  EXPECT_EQ(ny.Add(At("2026-03-07T12:00:00-05:00"), Limit(24, v1::URGENT_HOURS)),
            At("2026-03-08T13:00:00-04:00"));
  EXPECT_EQ(ny.Add(At("2026-03-07T12:00:00-05:00"), Limit(1, v1::CALENDAR_DAYS)),
            At("2026-03-08T13:00:00-04:00"));
  EXPECT_EQ(ny.utc_offset_minutes_at(At("2026-03-08T06:59:59Z")), -300);
  EXPECT_EQ(ny.utc_offset_minutes_at(At("2026-03-08T07:00:00Z")), -240);
  EXPECT_EQ(ny.utc_offset_minutes_at(At("2020-01-01T00:00:00Z")), -300);  // before the list
  EXPECT_EQ(ny.LocalDay(At("2026-03-09T00:30:00-04:00")), Day("2026-03-09"));
  // Documented: Sun 03-08 has one offset (EDT, its noon's), so it starts at 23:00 EST Sat.
  EXPECT_EQ(ny.LocalDay(At("2026-03-07T23:30:00-05:00")), Day("2026-03-08"));
  // Without the offsets the city stays on −05:00 and Monday opens an hour later in UTC.
  WorkingCalendar fixed(c);
  EXPECT_EQ(fixed.AddWorkingMinutes(At("2026-03-06T17:00:00-05:00"), 60),
            At("2026-03-09T09:00:00-05:00"));
}

TEST(WorkingCalendarRangeTest, OutsideTheRangeTimeRunsNonStop) {
  EXPECT_EQ(DaysFromCivil(2000, 1, 1), WorkingCalendar::kFirstDay);
  EXPECT_EQ(DaysFromCivil(2100, 12, 31), WorkingCalendar::kLastDay);
  WorkingCalendar cal(NationalDay2026());
  // Before 2000-01-01 (+08:00) every instant counts.
  EXPECT_EQ(cal.AddWorkingMinutes(At("1999-12-31T10:00:00+08:00"), 120),
            At("1999-12-31T12:00:00+08:00"));
  // 1 h before the range, then the range's first working time: Sat 01-01 and Sun off, Mon
  // 2000-01-03 08:30 + 1 h.
  EXPECT_EQ(cal.AddWorkingMinutes(At("1999-12-31T23:00:00+08:00"), 120),
            At("2000-01-03T09:30:00+08:00"));
  // Fri 2100-12-31 17:00: 0.5 h to its close, then 0.5 h from the range's end (midnight).
  EXPECT_EQ(cal.AddWorkingMinutes(At("2100-12-31T17:00:00+08:00"), 60),
            At("2101-01-01T00:30:00+08:00"));
  EXPECT_EQ(cal.WorkingBetween(At("2101-01-02T00:00:00Z"), At("2101-01-03T00:00:00Z")), kDay);
  // Working days past the range are 24-hour days ending at midnight.
  EXPECT_EQ(cal.Add(At("2100-12-31T10:00:00+08:00"), Limit(2, v1::WORKING_DAYS)),
            At("2101-01-03T00:00:00+08:00"));
  EXPECT_EQ(cal.Add(At("1980-06-02T10:00:00+08:00"), Limit(2, v1::WORKING_DAYS)),
            At("1980-06-05T00:00:00+08:00"));
  // IsWorkingDay still follows the rules there.
  EXPECT_FALSE(cal.IsWorkingDay(Day("2101-01-01")));  // Saturday
  EXPECT_TRUE(cal.IsWorkingDay(Day("2101-01-03")));   // Monday
  EXPECT_TRUE(cal.IsWorkingDay(Day("1999-12-31")));   // Friday
}

// The slow way, for checking: SmallCity's rules, every day and window between a and b.
Millis SlowWorkingBetween(Millis a, Millis b) {
  const std::vector<int64_t> off = {Day("2026-09-25"), Day("2026-10-01"), Day("2026-10-02"),
                                    Day("2026-10-05"), Day("2026-10-06"), Day("2026-10-07")};
  const std::vector<int64_t> on = {Day("2026-09-20"), Day("2026-10-10")};
  Millis sum = 0;
  for (int64_t day = (a + 8 * kHour) / kDay; day <= (b + 8 * kHour) / kDay; ++day) {
    const int weekday = static_cast<int>((day + 3) % 7) + 1;  // 1970-01-01 was a Thursday
    bool works = weekday <= 5 && std::find(off.begin(), off.end(), day) == off.end();
    if (std::find(on.begin(), on.end(), day) != on.end()) works = true;
    if (!works) continue;
    for (auto [open, close] : {std::pair{510, 720}, std::pair{810, 1050}}) {
      const Millis o = day * kDay - 8 * kHour + open * kMinute;
      const Millis c = day * kDay - 8 * kHour + close * kMinute;
      sum += std::max<Millis>(0, std::min(b, c) - std::max(a, o));
    }
  }
  return sum;
}

// True when t is inside a SmallCity window or at its close: (open, close] on a working day.
bool IsWorkingInstant(const WorkingCalendar& cal, Millis t) {
  const Millis minute_of_day = (t + 8 * kHour) % kDay;
  auto in = [&](int open, int close) {
    return minute_of_day > open * kMinute && minute_of_day <= close * kMinute;
  };
  return cal.IsWorkingDay((t - 1 + 8 * kHour) / kDay) && (in(510, 720) || in(810, 1050));
}

// Property: with t = AddWorking(a, WorkingBetween(a, b)) for a ≤ b, WorkingBetween(a, t) equals
// WorkingBetween(a, b), t ≤ b and no working time lies in [t, b); t == b exactly when b is a
// working instant (inside a window or at its close), otherwise t is the close before b (or a
// when [a, b) holds no working time). Also WorkingBetween(a, AddWorking(a, w)) == w, and
// AddWorking returns the first such instant.
TEST_F(WorkingCalendarTest, WorkingBetweenAndAddWorkingAgree) {
  std::mt19937_64 rng(20261127);
  const Millis from = At("2026-08-01T00:00:00+08:00"), to = At("2027-02-01T00:00:00+08:00");
  std::uniform_int_distribution<Millis> instant(from, to);
  auto draw = [&] {  // every other instant on a quarter hour, to land on opens and closes
    Millis t = instant(rng);
    return rng() % 2 ? t - t % (15 * kMinute) : t;
  };
  for (int k = 0; k < 2000; ++k) {
    Millis a = draw(), b = draw();
    if (b < a) std::swap(a, b);
    const Millis w = calendar_.WorkingBetween(a, b);
    ASSERT_EQ(w, SlowWorkingBetween(a, b)) << FormatIso(a, 480) << " → " << FormatIso(b, 480);
    ASSERT_EQ(calendar_.WorkingBetween(b, a), -w);
    const Millis t = calendar_.AddWorking(a, w);
    ASSERT_EQ(calendar_.WorkingBetween(a, t), w);
    ASSERT_LE(t, b);
    ASSERT_EQ(calendar_.WorkingBetween(t, b), 0);
    if (w == 0) {
      ASSERT_EQ(t, a);
    } else {
      ASSERT_TRUE(IsWorkingInstant(calendar_, t)) << FormatIso(t, 480);
      ASSERT_EQ(t == b, IsWorkingInstant(calendar_, b)) << FormatIso(b, 480);
    }
    const Millis add = std::uniform_int_distribution<Millis>(0, 200 * kHour)(rng);
    const Millis end = calendar_.AddWorking(a, add);
    ASSERT_EQ(calendar_.WorkingBetween(a, end), add) << FormatIso(a, 480) << " + " << add;
    if (add > 0) {
      ASSERT_LT(calendar_.WorkingBetween(a, end - 1), add);
    }
  }
}

}  // namespace
}  // namespace casebus::core

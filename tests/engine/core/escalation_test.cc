// The escalation ladder, stage by stage: CaseMachine::FireDue fires each step of the accept,
// handle and verify stages once, at the instant its stage clock reaches fraction × limit, and
// notifies whom the step names. Every instant below is worked out by hand from SmallCity
// (tests/support/test_city.h): +08:00, windows 08:30–12:00 and 13:30–17:30 (7.5 h a day),
// Monday to Friday, and its default ladder (accept 0.5 / 1.0, handle 0.5 / 0.8 / 1.0 / 2.0,
// verify 1.0). Extension, suspension, rework, return and replay: escalation_rounds_test.cc.

#include <set>
#include <string>
#include <vector>

#include "tests/engine/core/ladder_fixture.h"

namespace casebus::core {
namespace {

using ::testing::HasSubstr;

// "HH:MM" on a day of the week of Monday 2026-11-02 (+08:00).
Millis Mon(std::string_view hhmm) { return At("2026-11-02T" + std::string(hhmm) + ":00+08:00"); }
Millis Tue(std::string_view hhmm) { return At("2026-11-03T" + std::string(hhmm) + ":00+08:00"); }

// Drain clog (200101: accept 1, handle 4 working hours) in grid A1 → drainage, district 320501
// (centre command-320501). Dispatched Monday 09:00, accepted 09:10, before the accept reminder,
// so no accept step fires. Handle limit 4 wh = 14,400,000 ms:
//   reminder  0.5 × 4 h = 2 h      09:00 + 2 h                                      Mon 11:00
//   yellow    0.8 × 4 h = 3.2 h    09:00–12:00 holds 3 h; 0.2 h = 12 min after 13:30 Mon 13:42
//   red       1.0 × 4 h = 4 h      3 h, then 1 h after 13:30                         Mon 14:30
//   supervise 2.0 × 4 h = 8 h      Monday holds 3 h + 4 h = 7 h; 1 h after 08:30     Tue 09:30
// Level = step index + 1 (never lower than before); light green → yellow → red.
TEST_F(LadderTest, HandleStepsFireOnceEachAtTheirInstant) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  ASSERT_EQ(Get(id).department(), "drainage");
  Do(cmd::Accept(id), Mon("09:10"));
  EXPECT_EQ(Get(id).accept_deadline_ms(), Mon("10:00"));
  EXPECT_EQ(Get(id).handle_deadline_ms(), Mon("14:30"));
  EXPECT_EQ(Get(id).light(), v1::GREEN);
  EXPECT_EQ(Get(id).escalation_level(), 0);
  EXPECT_EQ(machine_->NextDueAt(), Mon("11:00"));
  EXPECT_TRUE(Fire(Mon("10:00")).empty());  // accepted: the accept steps are gone

  FiresOnceAt(id, Mon("11:00"), {v1::HANDLE, "reminder", "drainage", v1::GREEN, 1});
  EXPECT_EQ(Get(id).light(), v1::GREEN);
  EXPECT_EQ(Get(id).escalation_level(), 1);

  FiresOnceAt(id, Mon("13:42"), {v1::HANDLE, "yellow", "drainage", v1::YELLOW, 2});
  EXPECT_EQ(Get(id).light(), v1::YELLOW);
  EXPECT_EQ(Get(id).escalation_level(), 2);
  EXPECT_EQ(Get(id).overdue_at_ms(), 0);

  Effects red = FiresOnceAt(id, Mon("14:30"), {v1::HANDLE, "red", "command-320501", v1::RED, 3});
  ASSERT_EQ(red.notices.size(), 1u);
  EXPECT_EQ(red.notices[0].id(), "n1-handle-red-1");
  EXPECT_EQ(red.notices[0].deadline_ms(), Mon("14:30"));
  EXPECT_EQ(red.notices[0].work_order_id(), "1-1");
  EXPECT_EQ(red.notices[0].place().grid(), kGridA1);
  EXPECT_EQ(Get(id).light(), v1::RED);
  EXPECT_EQ(Get(id).overdue_at_ms(), Mon("14:30"));
  EXPECT_FALSE(Get(id).supervision_open());

  FiresOnceAt(id, Tue("09:30"), {v1::HANDLE, "supervise", "leadership", v1::RED, 4, true});
  const v1::Case& c = Get(id);
  EXPECT_EQ(c.light(), v1::RED);
  EXPECT_EQ(c.escalation_level(), 4);
  EXPECT_TRUE(c.supervision_open());
  EXPECT_EQ(c.supervision_count(), 1);
  EXPECT_EQ(c.escalation_count(), 4);
  EXPECT_EQ(c.handle_clock().steps_fired(), 4);
  EXPECT_EQ(c.overdue_at_ms(), Mon("14:30"));
  EXPECT_EQ(machine_->NextDueAt(), 0);  // the ladder is spent
  EXPECT_TRUE(Fire(At("2026-12-31T00:00:00+08:00")).empty());
}

// Never accepted, and the engine is down from Monday 09:00 to Wednesday 12:00. Accept limit
// 1 wh: reminder 0.5 h = 09:30, accept-overdue 1 h = 10:00 (→ the district centre, yellow).
// Handle steps as above. One FireDue fires all six, in due order, each stamped with when it was
// due; levels 1, 2, then 2 (the handle reminder's index 0 does not lower it), 2, 3, 4.
TEST_F(LadderTest, AfterDowntimeEveryDueStepFiresOnceInDueOrder) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  const Millis wednesday = At("2026-11-04T12:00:00+08:00");
  std::vector<Effects> fired = Fire(wednesday);
  ASSERT_EQ(fired.size(), 6u);
  const Millis due[] = {Mon("09:30"), Mon("10:00"), Mon("11:00"),
                        Mon("13:42"), Mon("14:30"), Tue("09:30")};
  const Step want[] = {
      {v1::ACCEPT, "reminder", "drainage", v1::GREEN, 1},
      {v1::ACCEPT, "accept-overdue", "command-320501", v1::YELLOW, 2},
      {v1::HANDLE, "reminder", "drainage", v1::YELLOW, 2},
      {v1::HANDLE, "yellow", "drainage", v1::YELLOW, 2},
      {v1::HANDLE, "red", "command-320501", v1::RED, 3},
      {v1::HANDLE, "supervise", "leadership", v1::RED, 4, true},
  };
  std::set<std::string> ids;
  for (size_t i = 0; i < fired.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectStep(fired[i], id, due[i], wednesday, want[i]);
    if (!fired[i].notices.empty()) ids.insert(fired[i].notices[0].id());
  }
  EXPECT_EQ(ids, (std::set<std::string>{"n1-accept-reminder-1", "n1-accept-accept-overdue-1",
                                        "n1-handle-reminder-1", "n1-handle-yellow-1",
                                        "n1-handle-red-1", "n1-handle-supervise-1"}));
  EXPECT_TRUE(Fire(wednesday).empty());
  EXPECT_TRUE(Fire(wednesday + kDay).empty());
  EXPECT_EQ(Get(id).escalation_count(), 6);
  EXPECT_EQ(Get(id).overdue_at_ms(), Mon("14:30"));  // when it was due, not when it fired
  EXPECT_TRUE(Get(id).supervision_open());
}

// Accept limit 1 wh from Monday 09:00: reminder 09:30, accept-overdue 10:00.
TEST_F(LadderTest, AcceptingBeforeTheLimitCancelsTheRemainingAcceptSteps) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  EXPECT_EQ(Get(id).accept_deadline_ms(), Mon("10:00"));
  Effects reminder =
      FiresOnceAt(id, Mon("09:30"), {v1::ACCEPT, "reminder", "drainage", v1::GREEN, 1});
  ASSERT_EQ(reminder.notices.size(), 1u);
  EXPECT_EQ(reminder.notices[0].id(), "n1-accept-reminder-1");
  EXPECT_EQ(reminder.notices[0].deadline_ms(), Mon("10:00"));
  Do(cmd::Accept(id), Mon("09:45"));
  EXPECT_EQ(machine_->NextDueAt(), Mon("11:00"));  // the handle reminder: no accept step left
  EXPECT_TRUE(Fire(Mon("10:00")).empty());
  EXPECT_EQ(Get(id).accept_clock().steps_fired(), 1);
  EXPECT_EQ(Get(id).light(), v1::GREEN);
  EXPECT_EQ(Get(id).escalation_count(), 1);
}

TEST_F(LadderTest, NotAcceptingFiresAcceptOverdueToTheDistrictCenter) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  FiresOnceAt(id, Mon("09:30"), {v1::ACCEPT, "reminder", "drainage", v1::GREEN, 1});
  Effects overdue = FiresOnceAt(id, Mon("10:00"),
                                {v1::ACCEPT, "accept-overdue", "command-320501", v1::YELLOW, 2});
  ASSERT_EQ(overdue.notices.size(), 1u);
  EXPECT_EQ(overdue.notices[0].responsible(), "drainage");
  EXPECT_EQ(Get(id).state(), v1::DISPATCHED);
  EXPECT_EQ(Get(id).light(), v1::YELLOW);
  EXPECT_EQ(Get(id).accept_clock().steps_fired(), 2);
  EXPECT_EQ(machine_->NextDueAt(), Mon("11:00"));
}

// Once accepted, the light and level are the handling stage's: the accept stage's yellow (and
// its level 2) do not carry over while the handle clock is still green.
TEST_F(LadderTest, AcceptanceResetsTheLightToTheHandlingStage) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  FiresOnceAt(id, Mon("09:30"), {v1::ACCEPT, "reminder", "drainage", v1::GREEN, 1});
  FiresOnceAt(id, Mon("10:00"), {v1::ACCEPT, "accept-overdue", "command-320501", v1::YELLOW, 2});
  Do(cmd::Accept(id), Mon("10:10"));
  EXPECT_EQ(Get(id).light(), v1::GREEN);
  EXPECT_EQ(Get(id).escalation_level(), 0);
  FiresOnceAt(id, Mon("11:00"), {v1::HANDLE, "reminder", "drainage", v1::GREEN, 1});
  FiresOnceAt(id, Mon("13:42"), {v1::HANDLE, "yellow", "drainage", v1::YELLOW, 2});
}

// Property management (300101: accept 1, handle 5 working days) in grid B2 → housing, district
// 320502 (centre command-320502). Dispatched Monday 09:00.
//   accept: 1 working day ends at Tuesday's close, 17:30; limit = Mon 7 h + Tue 7.5 h = 14.5 h.
//     reminder 7.25 h: Monday's 7 h, then 0.25 h after 08:30 → Tue 08:45; overdue Tue 17:30.
//   handle: 5 working days end Monday 2026-11-09 17:30: 7 + 4 × 7.5 + 7.5 = 44.5 h; its
//     reminder at 22.25 h: Mon 7, Tue 7.5, Wed 7.5 (22 h), 0.25 h after Thu 08:30 → Thu 08:45.
TEST_F(LadderTest, WorkingDayAcceptStageEscalatesToTheOtherDistrictCenter) {
  const uint64_t id = DispatchedAt(kProperty, kGridB2, Monday9());
  ASSERT_EQ(Get(id).department(), "housing");
  EXPECT_EQ(Get(id).accept_deadline_ms(), Tue("17:30"));
  EXPECT_EQ(Get(id).handle_deadline_ms(), At("2026-11-09T17:30:00+08:00"));
  FiresOnceAt(id, Tue("08:45"), {v1::ACCEPT, "reminder", "housing", v1::GREEN, 1});
  FiresOnceAt(id, Tue("17:30"), {v1::ACCEPT, "accept-overdue", "command-320502", v1::YELLOW, 2});
  EXPECT_EQ(machine_->NextDueAt(), At("2026-11-05T08:45:00+08:00"));
}

// Verify limit 2 wh. Accepted 09:10, resolved 10:30 (before the 11:00 handle reminder): the
// verify clock runs 10:30–12:00 (1.5 h), then 0.5 h after 13:30 → verify-overdue at 14:00.
TEST_F(LadderTest, ResolveStartsTheVerifyStageWhoseStepFiresAtItsLimit) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  Do(cmd::Accept(id), Mon("09:10"));
  Do(cmd::Resolve(id), Mon("10:30"));
  EXPECT_EQ(Get(id).verify_deadline_ms(), Mon("14:00"));
  EXPECT_EQ(machine_->NextDueAt(), Mon("14:00"));  // the handle steps stopped with their clock
  EXPECT_TRUE(Fire(Mon("13:59")).empty());         // no handle reminder at 11:00
  Effects fx = FiresOnceAt(
      id, Mon("14:00"), {v1::VERIFY, "verify-overdue", "command-320501", v1::LIGHT_UNSPECIFIED, 1});
  ASSERT_EQ(fx.notices.size(), 1u);
  EXPECT_EQ(fx.notices[0].id(), "n1-verify-verify-overdue-1");
  EXPECT_EQ(fx.notices[0].deadline_ms(), Mon("14:00"));
  EXPECT_EQ(Get(id).state(), v1::RESOLVED);
  EXPECT_EQ(Get(id).verify_clock().steps_fired(), 1);
  EXPECT_EQ(machine_->NextDueAt(), 0);
}

TEST_F(LadderTest, VerifyingBeforeTheLimitCancelsVerifyOverdue) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  Do(cmd::Accept(id), Mon("09:10"));
  Do(cmd::Resolve(id), Mon("10:30"));
  Do(cmd::Verify(id, true), Mon("13:00"));
  EXPECT_EQ(machine_->NextDueAt(), 0);
  EXPECT_TRUE(Fire(Tue("12:00")).empty());
  EXPECT_EQ(Get(id).escalation_count(), 0);
}

// Well cover (100101: accept 0.5, handle 2 urgent hours) in grid A1 → water. Urgent hours run
// non-stop. Dispatched Friday 2026-11-06 23:00, accepted 23:05 (accept reminder 23:15 and
// overdue 23:30 never fire); the handle steps fall on Saturday night:
//   reminder 1 h → Sat 00:00, yellow 1.6 h = 96 min → Sat 00:36, red 2 h → Sat 01:00,
//   supervise 4 h → Sat 03:00.
TEST_F(LadderTest, UrgentHourStepsRunThroughTheNightAndTheWeekend) {
  const uint64_t id = DispatchedAt(kWellCover, kGridA1, At("2026-11-06T23:00:00+08:00"));
  ASSERT_EQ(Get(id).department(), "water");
  Do(cmd::Accept(id), At("2026-11-06T23:05:00+08:00"));
  EXPECT_EQ(Get(id).handle_deadline_ms(), At("2026-11-07T01:00:00+08:00"));
  FiresOnceAt(id, At("2026-11-07T00:00:00+08:00"), {v1::HANDLE, "reminder", "water", v1::GREEN, 1});
  FiresOnceAt(id, At("2026-11-07T00:36:00+08:00"), {v1::HANDLE, "yellow", "water", v1::YELLOW, 2});
  FiresOnceAt(id, At("2026-11-07T01:00:00+08:00"),
              {v1::HANDLE, "red", "command-320501", v1::RED, 3});
  FiresOnceAt(id, At("2026-11-07T03:00:00+08:00"),
              {v1::HANDLE, "supervise", "leadership", v1::RED, 4, true});
}

// Across a holiday: dispatched Wednesday 2026-09-30 22:00, not accepted. Accept (0.5 uh):
// reminder 22:15, overdue 22:30. Handle: reminder 23:00, yellow 23:36, then on Thursday
// 2026-10-01 (国庆, a holiday) red 00:00 and supervise 02:00.
TEST_F(LadderTest, UrgentHourStepsFireOnAHoliday) {
  const uint64_t id = DispatchedAt(kWellCover, kGridA1, At("2026-09-30T22:00:00+08:00"));
  std::vector<Effects> fired = Fire(At("2026-10-01T02:00:00+08:00"));
  ASSERT_EQ(fired.size(), 6u);
  const char* due[] = {"2026-09-30T22:15", "2026-09-30T22:30", "2026-09-30T23:00",
                       "2026-09-30T23:36", "2026-10-01T00:00", "2026-10-01T02:00"};
  for (size_t i = 0; i < fired.size(); ++i)
    EXPECT_EQ(fired[i].record.events(0).due_at_ms(), At(std::string(due[i]) + ":00+08:00")) << i;
  EXPECT_EQ(fired[4].record.events(0).step_id(), "red");
  EXPECT_EQ(Get(id).overdue_at_ms(), At("2026-10-01T00:00:00+08:00"));
}

// A 督办 reply needs an open 督办 record, and only the responsible department (or an operator)
// may give it. The supervise step of a drain clog dispatched Monday 09:00 fires Tue 09:30.
TEST_F(LadderTest, SupervisionReplyNeedsAnOpenSupervisionFromTheResponsibleDepartment) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  Do(cmd::Accept(id), Mon("09:10"));
  Effects early = Run(cmd::SupervisionReply(id, "drainage"), Mon("12:00"));
  EXPECT_EQ(early.result.code(), v1::FAILED_PRECONDITION);
  EXPECT_THAT(early.result.message(), HasSubstr("no open supervision"));
  EXPECT_FALSE(early.Changed());

  EXPECT_EQ(Fire(Tue("09:30")).size(), 4u);  // reminder, yellow, red, supervise
  ASSERT_TRUE(Get(id).supervision_open());

  Effects other = Run(cmd::SupervisionReply(id, "municipal"), Tue("10:00"));
  EXPECT_EQ(other.result.code(), v1::FAILED_PRECONDITION);
  EXPECT_THAT(other.result.message(), HasSubstr("is not with department municipal"));
  EXPECT_FALSE(other.Changed());
  EXPECT_TRUE(Get(id).supervision_open());

  Effects reply = Do(cmd::SupervisionReply(id, "drainage", "crew on site"), Tue("10:05"));
  ASSERT_EQ(reply.record.events_size(), 1);
  EXPECT_EQ(reply.record.events(0).type(), v1::EV_SUPERVISION_REPLIED);
  EXPECT_EQ(reply.record.events(0).reason(), "crew on site");
  EXPECT_FALSE(Get(id).supervision_open());
  EXPECT_EQ(Get(id).supervision_count(), 1);

  Effects again = Run(cmd::SupervisionReply(id, "drainage"), Tue("10:10"));
  EXPECT_EQ(again.result.code(), v1::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace casebus::core

// The escalation ladder across the events that move a stage clock: an extension, a suspension,
// a failed verification (rework), a return and re-dispatch; and the timer queue's changes and the
// journal's replay, which the durable `due` rows rely on. Instants worked out by hand from
// SmallCity (tests/support/test_city.h; windows 08:30–12:00, 13:30–17:30, Monday to Friday).

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/engine/core/ladder_fixture.h"

namespace casebus::core {
namespace {

using ::google::protobuf::util::MessageDifferencer;

Millis Mon(std::string_view hhmm) { return At("2026-11-02T" + std::string(hhmm) + ":00+08:00"); }
Millis Tue(std::string_view hhmm) { return At("2026-11-03T" + std::string(hhmm) + ":00+08:00"); }
Millis Thu(std::string_view hhmm) { return At("2026-11-05T" + std::string(hhmm) + ":00+08:00"); }
Millis Fri(std::string_view hhmm) { return At("2026-11-06T" + std::string(hhmm) + ":00+08:00"); }

// Drain clog (handle 4 wh) in A1 → drainage, dispatched Monday 09:00, accepted 09:10; the
// reminder (11:00) and yellow (13:42) fire; at 14:00 an extension of 2 working hours is
// approved: limit 4 h → 6 h.
//   red       1.0 × 6 h: 09:00–12:00 3 h, 3 h after 13:30 → Mon 16:30 = old red 14:30 + 2 wh
//   supervise 2.0 × 6 h = 12 h: Monday 7 h, Tuesday 08:30–12:00 3.5 h, 1.5 h after 13:30
//             → Tue 15:00 (it was Tue 09:30)
// The fired steps stay fired: steps_fired 2, light yellow, level 2, nothing fires twice.
TEST_F(LadderTest, AnExtensionMovesTheLaterStepsAndKeepsTheFiredOnes) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  Do(cmd::Accept(id), Mon("09:10"));
  FiresOnceAt(id, Mon("11:00"), {v1::HANDLE, "reminder", "drainage", v1::GREEN, 1});
  FiresOnceAt(id, Mon("13:42"), {v1::HANDLE, "yellow", "drainage", v1::YELLOW, 2});
  Do(cmd::RequestExtension(id, 2), Mon("13:50"));
  Do(cmd::ApproveExtension(id, 2), Mon("14:00"));
  const v1::Case& c = Get(id);
  EXPECT_EQ(c.handle_clock().limit_ms(), 6 * kHour);
  EXPECT_EQ(c.handle_clock().steps_fired(), 2);
  EXPECT_EQ(c.handle_deadline_ms(), Mon("16:30"));
  EXPECT_EQ(c.light(), v1::YELLOW);
  EXPECT_EQ(c.escalation_level(), 2);
  EXPECT_EQ(machine_->NextDueAt(), Mon("16:30"));
  EXPECT_TRUE(Fire(Mon("14:30")).empty());  // the old red instant
  FiresOnceAt(id, Mon("16:30"), {v1::HANDLE, "red", "command-320501", v1::RED, 3});
  EXPECT_EQ(Get(id).overdue_at_ms(), Mon("16:30"));
  EXPECT_TRUE(Fire(Tue("09:30")).empty());  // the old supervise instant
  FiresOnceAt(id, Tue("15:00"), {v1::HANDLE, "supervise", "leadership", v1::RED, 4, true});
  EXPECT_EQ(Get(id).escalation_count(), 4);
}

// Accepted 09:10, reminder fired 11:00, suspended 11:30 with 2.5 h of the 4 h used
// (09:00–11:30). Resumed Thursday 2026-11-05 16:00; the rest runs from there:
//   yellow    3.2 h − 2.5 h = 0.7 h = 42 min → Thu 16:42
//   red       4 h − 2.5 h = 1.5 h; 16:00–17:30 holds exactly 1.5 h → Thu 17:30 (a limit that ends
//             at a window's close ends there, not at Friday's opening)
//   supervise 8 h − 2.5 h = 5.5 h: Thu 1.5 h, Fri 08:30–12:00 3.5 h, 0.5 h after 13:30 → Fri 14:00
// While suspended nothing fires and the case is neither due nor overdue-open (its old deadline,
// Mon 14:30, passes meanwhile).
TEST_F(LadderTest, SuspensionPausesTheLadderAndResumeContinuesIt) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  Do(cmd::Accept(id), Mon("09:10"));
  FiresOnceAt(id, Mon("11:00"), {v1::HANDLE, "reminder", "drainage", v1::GREEN, 1});
  Do(cmd::Suspend(id), Mon("11:30"));
  EXPECT_EQ(Get(id).state(), v1::SUSPENDED);
  EXPECT_EQ(Get(id).handle_clock().consumed_ms(), 2 * kHour + 30 * kMinute);
  EXPECT_EQ(Get(id).handle_deadline_ms(), 0);
  EXPECT_EQ(machine_->NextDueAt(), 0);
  EXPECT_EQ(machine_->scheduled_timers(), 0u);
  for (Millis t : {Mon("13:42"), Mon("14:30"), Tue("09:30"), At("2026-11-04T12:00:00+08:00")})
    EXPECT_TRUE(Fire(t).empty()) << FormatIso(t, 480);
  // Drainage's closure row as of `as_of`, asked then (the maintained counters) and a week later
  // (counted from the cases): both must agree.
  auto drainage = [&](Millis as_of) {
    v1::Query q;
    q.mutable_closure()->set_as_of_ms(as_of);
    v1::ClosureRow rows[2];
    for (int i = 0; i < 2; ++i) {
      v1::QueryResult r = machine_->Answer(q, as_of + i * 7 * kDay);
      for (const auto& row : r.by_department())
        if (row.key() == "drainage") rows[i] = row;
    }
    EXPECT_EQ(rows[0].key(), "drainage");
    EXPECT_EQ(rows[0].DebugString(), rows[1].DebugString()) << FormatIso(as_of, 480);
    return rows[1];
  };
  EXPECT_EQ(drainage(Tue("12:00")).overdue_open(), 0);
  EXPECT_EQ(drainage(Tue("12:00")).due(), 0);
  EXPECT_EQ(Get(id).overdue_at_ms(), 0);

  Do(cmd::Resume(id), Thu("16:00"));
  EXPECT_EQ(Get(id).state(), v1::ACCEPTED);
  EXPECT_EQ(Get(id).handle_deadline_ms(), Thu("17:30"));
  EXPECT_EQ(machine_->NextDueAt(), Thu("16:42"));
  FiresOnceAt(id, Thu("16:42"), {v1::HANDLE, "yellow", "drainage", v1::YELLOW, 2});
  EXPECT_EQ(drainage(Thu("17:00")).overdue_open(), 0);
  FiresOnceAt(id, Thu("17:30"), {v1::HANDLE, "red", "command-320501", v1::RED, 3});
  EXPECT_EQ(Get(id).overdue_at_ms(), Thu("17:30"));
  EXPECT_EQ(drainage(Fri("09:00")).overdue_open(), 1);
  EXPECT_EQ(drainage(Fri("09:00")).due(), 1);
  FiresOnceAt(id, Fri("14:00"), {v1::HANDLE, "supervise", "leadership", v1::RED, 4, true});
}

// Suspended before acceptance: both clocks pause. Dispatched 09:00, suspended 09:20 (20 min used
// of each), resumed Tuesday 09:00:
//   accept reminder 30 − 20 = 10 min → Tue 09:10; accept-overdue 60 − 20 = 40 min → Tue 09:40
//   handle reminder 2 h − 20 min = 1 h 40 min → Tue 10:40
TEST_F(LadderTest, SuspensionBeforeAcceptancePausesTheAcceptStageToo) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  Do(cmd::Suspend(id), Mon("09:20"));
  EXPECT_TRUE(Fire(Mon("17:30")).empty());
  Do(cmd::Resume(id), Tue("09:00"));
  EXPECT_EQ(Get(id).state(), v1::DISPATCHED);
  EXPECT_EQ(Get(id).accept_deadline_ms(), Tue("09:40"));
  FiresOnceAt(id, Tue("09:10"), {v1::ACCEPT, "reminder", "drainage", v1::GREEN, 1});
  FiresOnceAt(id, Tue("09:40"), {v1::ACCEPT, "accept-overdue", "command-320501", v1::YELLOW, 2});
  FiresOnceAt(id, Tue("10:40"), {v1::HANDLE, "reminder", "drainage", v1::YELLOW, 2});
}

// Well cover (100101: accept 0.5 uh, handle 2 uh, verify 2 wh, rework 1 uh) in A1 → water.
// Round 1: dispatched Mon 09:00, accepted 09:05; reminder 10:00 and yellow 1.6 h = 10:36 fire;
// resolved 10:40 (verify 2 wh: 10:40–12:00 is 1 h 20 min, 40 min after 13:30 → 14:10).
// Verification fails at 11:00: round 2 runs on the rework limit, 1 urgent hour, from 11:00:
//   accept  reminder 11:15, accept-overdue 11:30 (0.5 uh again; accepted 11:20, so no overdue)
//   handle  reminder 0.5 h → 11:30, yellow 0.8 h = 48 min → 11:48, red 12:00, supervise 13:00
// Light back to green, level back to 0; notices of round 2 end in "-2".
TEST_F(LadderTest, ReworkStartsANewRoundOnTheReworkLimit) {
  const uint64_t id = DispatchedAt(kWellCover, kGridA1, Monday9());
  ASSERT_EQ(Get(id).department(), "water");
  Do(cmd::Accept(id), Mon("09:05"));
  FiresOnceAt(id, Mon("10:00"), {v1::HANDLE, "reminder", "water", v1::GREEN, 1});
  FiresOnceAt(id, Mon("10:36"), {v1::HANDLE, "yellow", "water", v1::YELLOW, 2});
  Do(cmd::Resolve(id), Mon("10:40"));
  EXPECT_EQ(Get(id).verify_deadline_ms(), Mon("14:10"));
  EXPECT_EQ(machine_->NextDueAt(), Mon("14:10"));
  Do(cmd::Verify(id, false, "still open"), Mon("11:00"));
  const v1::Case& c = Get(id);
  EXPECT_EQ(c.state(), v1::DISPATCHED);
  EXPECT_EQ(c.work_order_id(), "1-2");
  EXPECT_EQ(c.light(), v1::GREEN);
  EXPECT_EQ(c.escalation_level(), 0);
  EXPECT_EQ(c.handle_clock().limit_ms(), kHour);
  EXPECT_EQ(c.handle_clock().steps_fired(), 0);
  EXPECT_EQ(c.accept_deadline_ms(), Mon("11:30"));
  EXPECT_EQ(c.handle_deadline_ms(), Mon("12:00"));

  Effects accept = FiresOnceAt(id, Mon("11:15"), {v1::ACCEPT, "reminder", "water", v1::GREEN, 1});
  ASSERT_EQ(accept.notices.size(), 1u);
  EXPECT_EQ(accept.notices[0].id(), "n1-accept-reminder-2");
  Do(cmd::Accept(id), Mon("11:20"));
  Effects reminder = FiresOnceAt(id, Mon("11:30"), {v1::HANDLE, "reminder", "water", v1::GREEN, 1});
  ASSERT_EQ(reminder.notices.size(), 1u);
  EXPECT_EQ(reminder.notices[0].id(), "n1-handle-reminder-2");  // round 1's was ...-1
  FiresOnceAt(id, Mon("11:48"), {v1::HANDLE, "yellow", "water", v1::YELLOW, 2});
  FiresOnceAt(id, Mon("12:00"), {v1::HANDLE, "red", "command-320501", v1::RED, 3});
  EXPECT_EQ(Get(id).overdue_at_ms(), Mon("12:00"));
  FiresOnceAt(id, Mon("13:00"), {v1::HANDLE, "supervise", "leadership", v1::RED, 4, true});
  EXPECT_TRUE(Fire(Mon("14:10")).empty());  // round 1's verify stage ended with the failure
  EXPECT_EQ(Get(id).escalation_count(), 2 + 1 + 4);
}

// Drain clog dispatched Mon 09:00 to drainage; its accept reminder fires 09:30; drainage returns
// it at 09:40 (the accept clock stops: no accept-overdue at 10:00); re-dispatched 10:30 to
// municipal. The handling clock is bundled (捆绑计时): it runs from the first dispatch, so its
// steps stay at 11:00 / 13:42 / 14:30 and the deadline at 14:30. The accept stage restarts at
// 10:30 (1 wh): reminder 11:00, accept-overdue 11:30 (accepted 11:10, so it never fires).
TEST_F(LadderTest, ReturnAndRedispatchKeepTheBundledHandleStepsAndRestartAccept) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  FiresOnceAt(id, Mon("09:30"), {v1::ACCEPT, "reminder", "drainage", v1::GREEN, 1});
  Do(cmd::Return(id), Mon("09:40"));
  EXPECT_TRUE(Fire(Mon("10:00")).empty());
  EXPECT_EQ(machine_->NextDueAt(), Mon("11:00"));
  Effects redispatch = Do(cmd::Dispatch(id, "municipal"), Mon("10:30"));
  ASSERT_EQ(redispatch.work_orders.size(), 1u);
  EXPECT_EQ(redispatch.work_orders[0].id(), "1-2");
  EXPECT_EQ(redispatch.work_orders[0].accept_deadline_ms(), Mon("11:30"));
  EXPECT_EQ(redispatch.work_orders[0].handle_deadline_ms(), Mon("14:30"));  // bundled
  const v1::Case& c = Get(id);
  EXPECT_EQ(c.department(), "municipal");
  EXPECT_EQ(c.dispatch_count(), 2);
  EXPECT_EQ(c.accept_deadline_ms(), Mon("11:30"));
  EXPECT_EQ(c.handle_deadline_ms(), Mon("14:30"));
  EXPECT_EQ(c.handle_clock().started_ms(), Monday9());
  EXPECT_EQ(c.light(), v1::GREEN);
  EXPECT_EQ(c.escalation_level(), 1);  // not a new round

  EXPECT_TRUE(Fire(Mon("11:00") - 1).empty());
  std::vector<Effects> at11 = Fire(Mon("11:00"));
  ASSERT_EQ(at11.size(), 2u);  // same instant: the accept stage's before the handle stage's
  ExpectStep(at11[0], id, Mon("11:00"), Mon("11:00"),
             {v1::ACCEPT, "reminder", "municipal", v1::GREEN, 1});
  ExpectStep(at11[1], id, Mon("11:00"), Mon("11:00"),
             {v1::HANDLE, "reminder", "municipal", v1::GREEN, 1});
  EXPECT_EQ(at11[0].notices[0].id(), "n1-accept-reminder-2");
  Do(cmd::Accept(id), Mon("11:10"));
  EXPECT_TRUE(Fire(Mon("11:30")).empty());
  FiresOnceAt(id, Mon("13:42"), {v1::HANDLE, "yellow", "municipal", v1::YELLOW, 2});
  FiresOnceAt(id, Mon("14:30"), {v1::HANDLE, "red", "command-320501", v1::RED, 3});
}

// While a case is returned it waits for the dispatcher: a step addressed to the responsible
// department goes to the district centre instead of the department that returned it.
TEST_F(LadderTest, StepsDueWhileReturnedGoToTheDistrictCenter) {
  const uint64_t id = DispatchedAt(kDrainClog, kGridA1, Monday9());
  Do(cmd::Accept(id), Mon("09:10"));
  Do(cmd::Return(id), Mon("10:00"));
  FiresOnceAt(id, Mon("11:00"), {v1::HANDLE, "reminder", "command-320501", v1::GREEN, 1});
}

// TakeTimerChanges reports every entry added to and removed from the queue, so a store that
// applies them as `due` rows holds exactly ScheduledTimers(); replaying the journal (records of
// Execute and of FireDue) rebuilds the same cases and the same queue, and both then fire alike.
TEST_F(LadderTest, TimerChangesFollowTheQueueAndTheJournalReplaysToTheSameState) {
  std::set<TimerKey> due_rows;  // what the store would hold
  auto take = [&] {
    auto changes = machine_->TakeTimerChanges();
    for (const auto& [key, added] : changes) {
      if (added)
        EXPECT_TRUE(due_rows.insert(key).second);
      else
        EXPECT_EQ(due_rows.erase(key), 1u);
    }
    return changes;
  };
  const uint64_t id = Do(cmd::Report(kDrainClog, kGridA1), Monday9()).result.case_id();
  Do(cmd::Register(id), Monday9());
  EXPECT_TRUE(take().empty());  // no clock runs before dispatch
  Do(cmd::Dispatch(id), Monday9());
  auto dispatched = take();
  std::set<TimerKey> added;
  for (const auto& [key, was_added] : dispatched) {
    EXPECT_TRUE(was_added);
    added.insert(key);
  }
  const auto scheduled = machine_->ScheduledTimers();  // the case's next key of each clock
  EXPECT_EQ(added, std::set<TimerKey>(scheduled.begin(), scheduled.end()));
  EXPECT_TRUE(added.count(TimerKey{Mon("09:30"), id, v1::ACCEPT}));
  EXPECT_TRUE(added.count(TimerKey{Mon("11:00"), id, v1::HANDLE}));

  ASSERT_EQ(Fire(Mon("09:30")).size(), 1u);
  auto fired = take();
  ASSERT_FALSE(fired.empty());
  EXPECT_EQ(fired[0], std::make_pair(TimerKey{Mon("09:30"), id, v1::ACCEPT}, false));
  EXPECT_NE(std::find(fired.begin(), fired.end(),
                      std::make_pair(TimerKey{Mon("10:00"), id, v1::ACCEPT}, true)),
            fired.end());

  // A second case, returned and re-dispatched; then every kind of clock event on both.
  const uint64_t cover = DispatchedAt(kWellCover, kGridA3, Mon("09:35"));
  Do(cmd::Accept(id), Mon("09:45"));
  Do(cmd::Return(cover), Mon("09:50"));
  Do(cmd::Dispatch(cover, "municipal"), Mon("10:00"));
  Fire(Mon("11:00"));
  Do(cmd::RequestExtension(id, 1), Mon("11:10"));
  Do(cmd::ApproveExtension(id), Mon("11:20"));
  Do(cmd::Suspend(id), Mon("12:00"));
  Do(cmd::Resume(id), Tue("09:00"));
  Fire(Tue("12:00"));
  ASSERT_TRUE(Get(cover).supervision_open());
  Do(cmd::SupervisionReply(cover, "municipal"), Tue("12:10"));
  Do(cmd::Resolve(id), Tue("12:15"));
  Do(cmd::Verify(id, false, "still blocked"), Tue("14:00"));
  Fire(At("2026-11-04T10:00:00+08:00"));
  take();
  const auto queue = machine_->ScheduledTimers();
  EXPECT_EQ(due_rows, std::set<TimerKey>(queue.begin(), queue.end()));

  auto replica = CaseMachine::Create(casebus::testing::SmallCity());
  ASSERT_TRUE(replica.has_value());
  for (const auto& record : journal_) (*replica)->Replay(record);
  EXPECT_TRUE((*replica)->TakeTimerChanges().empty());  // the due rows exist already
  ASSERT_EQ((*replica)->case_count(), machine_->case_count());
  std::vector<uint64_t> ids;
  machine_->ForEachCase([&](const v1::Case& c) { ids.push_back(c.id()); });
  for (uint64_t case_id : ids) {
    std::optional<v1::Case> original = machine_->CaseWithHistory(case_id);
    std::optional<v1::Case> replayed = (*replica)->CaseWithHistory(case_id);
    ASSERT_TRUE(replayed.has_value()) << case_id;
    std::string diff;
    MessageDifferencer differ;
    differ.ReportDifferencesToString(&diff);
    EXPECT_TRUE(differ.Compare(*original, *replayed)) << "case " << case_id << ":\n" << diff;
  }
  EXPECT_EQ((*replica)->ScheduledTimers(), machine_->ScheduledTimers());
  EXPECT_EQ((*replica)->NextDueAt(), machine_->NextDueAt());

  const Millis later = At("2026-11-09T12:00:00+08:00");
  std::vector<Effects> a = machine_->FireDue(later), b = (*replica)->FireDue(later);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(a[i].record, b[i].record)) << i;
    ASSERT_EQ(a[i].notices.size(), b[i].notices.size()) << i;
    for (size_t n = 0; n < a[i].notices.size(); ++n)
      EXPECT_TRUE(MessageDifferencer::Equals(a[i].notices[n], b[i].notices[n])) << i;
  }
}

}  // namespace
}  // namespace casebus::core

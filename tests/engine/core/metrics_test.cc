// The Metrics query (CaseMachine::AnswerMetrics) on scripted SmallCity scenarios. Every expected
// figure is worked out by hand from the timeline in the test's comment and written as a literal;
// after every step the maintained ledger must equal a recount of the cases.
//
// Time: drain clogs (200101) have 4 working hours to handle in windows 08:30–12:00, 13:30–17:30,
// so one dispatched Monday 2026-11-02 09:00 is due 14:30, at 13:30 due 17:30, at 16:00 due
// Tuesday 11:00. Every case is a drain clog, dispatched by name, so the grid only keeps
// reports apart for the deduplicator.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/ledger.h"
#include "tests/engine/core/machine_fixture.h"

namespace casebus::core {
namespace {

Millis Mon(std::string_view hhmm) { return At("2026-11-02T" + std::string(hhmm) + ":00+08:00"); }
Millis Tue(std::string_view hhmm) { return At("2026-11-03T" + std::string(hhmm) + ":00+08:00"); }

// The counters of one row. -1: not checked (ladder-dependent).
struct Counted {
  int64_t registered = 0, dispatched = 0, due = 0, closed = 0, closed_on_time = 0, overdue_open = 0,
          handle_due = 0, handled = 0, handled_on_time = 0, rework = 0, rework_times = 0,
          returned = 0, extended = 0, extension_hours = 0, suspended = 0, voided = 0,
          pending_on_time = 0, escalated = -1, supervised = -1;
};

void ExpectCounts(const v1::ClosureRow& r, const Counted& w) {
  SCOPED_TRACE("row \"" + r.key() + "\"");
  EXPECT_EQ(r.registered(), w.registered);
  EXPECT_EQ(r.reported(), w.registered);  // every report here is registered
  EXPECT_EQ(r.dispatched(), w.dispatched);
  EXPECT_EQ(r.due(), w.due);
  EXPECT_EQ(r.closed(), w.closed);
  EXPECT_EQ(r.closed_on_time(), w.closed_on_time);
  EXPECT_EQ(r.overdue_open(), w.overdue_open);
  EXPECT_EQ(r.handle_due(), w.handle_due);
  EXPECT_EQ(r.handled(), w.handled);
  EXPECT_EQ(r.handled_on_time(), w.handled_on_time);
  EXPECT_EQ(r.rework(), w.rework);
  EXPECT_EQ(r.rework_times(), w.rework_times);
  EXPECT_EQ(r.returned(), w.returned);
  EXPECT_EQ(r.suspended(), w.suspended);
  EXPECT_EQ(r.voided(), w.voided);
  EXPECT_EQ(r.pending_on_time(), w.pending_on_time);
  EXPECT_EQ(r.extended(), w.extended);
  EXPECT_EQ(r.extension_hours(), w.extension_hours);
  EXPECT_EQ(r.public_reported(), 0);  // inspectors report everything here
  if (w.escalated >= 0) {
    EXPECT_EQ(r.escalated(), w.escalated);
  }
  if (w.supervised >= 0) {
    EXPECT_EQ(r.supervised(), w.supervised);
  }
}

// has_rates bits: 0 closure, 1 on-time closure, 2 handling, 3 on-time handling, 4 rework,
// 5 overdue open, 6 extension, 7 public report. A rate without its bit must read 0.
struct Rated {
  uint32_t bits;
  double closure, on_time_closure, handling, on_time_handling, rework, overdue_open, extension,
      public_report;
};
constexpr uint32_t kAllRates = 0xFF;

void ExpectRates(const v1::ClosureRow& r, const Rated& w) {
  SCOPED_TRACE("row \"" + r.key() + "\"");
  EXPECT_EQ(r.has_rates(), w.bits);
  EXPECT_NEAR(r.closure_rate(), w.closure, 1e-12);
  EXPECT_NEAR(r.on_time_closure_rate(), w.on_time_closure, 1e-12);
  EXPECT_NEAR(r.handling_rate(), w.handling, 1e-12);
  EXPECT_NEAR(r.on_time_handling_rate(), w.on_time_handling, 1e-12);
  EXPECT_NEAR(r.rework_rate(), w.rework, 1e-12);
  EXPECT_NEAR(r.overdue_open_rate(), w.overdue_open, 1e-12);
  EXPECT_NEAR(r.extension_rate(), w.extension, 1e-12);
  EXPECT_NEAR(r.public_report_rate(), w.public_report, 1e-12);
}

void ExpectIndex(const v1::ClosureRow& r, bool has, double index, int rank) {
  SCOPED_TRACE("row \"" + r.key() + "\"");
  EXPECT_EQ(r.has_index(), has);
  EXPECT_NEAR(r.index(), index, 1e-9);
  EXPECT_EQ(r.rank(), rank);
}

class MetricsTest : public MachineTest {
 protected:
  // Rebuilds the machine on SmallCity with its metrics policy edited (before any command).
  void UsePolicy(const std::function<void(v1::MetricsPolicy&)>& edit) {
    auto city = std::make_shared<v1::CityConfig>(*casebus::testing::SmallCity());
    edit(*city->mutable_metrics());
    auto m = CaseMachine::Create(city);
    ASSERT_TRUE(m.has_value()) << m.error().message();
    machine_ = std::move(*m);
  }

  void ExpectLedgerIsARecount() {
    size_t total = 0;
    const auto diff = CompareLedgers(machine_->ledger(), machine_->Recount(), 1, total);
    EXPECT_EQ(total, 0u) << (diff.empty()
                                 ? std::string()
                                 : std::string(DimName(diff[0].dim)) + " \"" + diff[0].key +
                                       "\" day " + std::to_string(diff[0].day) + " " +
                                       std::string(CounterName(diff[0].counter)) + ": " +
                                       std::to_string(diff[0].maintained) + " maintained, " +
                                       std::to_string(diff[0].recomputed) + " recounted");
  }
  // Fires the ladder steps and deadline timers due by `t`, as the engine does before a batch.
  void Tick(Millis t) {
    (void)machine_->FireDue(t);
    ExpectLedgerIsARecount();
  }
  void Do(v1::Command c, Millis t) {
    Tick(t);
    Ok(std::move(c), t);
    ExpectLedgerIsARecount();
  }
  // A drain clog reported in `grid` at `t`, registered and dispatched to `department` at `t`.
  uint64_t Open(std::string_view grid, const std::string& department, Millis t) {
    Tick(t);
    const Effects fx = Ok(cmd::Report(kDrainClog, grid), t);
    EXPECT_FALSE(fx.result.merged());
    const uint64_t id = fx.result.case_id();
    Do(cmd::Register(id), t);
    Do(cmd::Dispatch(id, department), t);
    return id;
  }
  // Resolved at `t`, verified 5 min later, closed 10 min later.
  void Finish(uint64_t id, Millis t) {
    Do(cmd::Resolve(id), t);
    Do(cmd::Verify(id, true), t + 5 * kMinute);
    Do(cmd::Close(id), t + 10 * kMinute);
  }
  // Opened at `t`, accepted, resolved, verified and closed within the next 4 minutes.
  void ClosedOnTime(std::string_view grid, const std::string& department, Millis t) {
    const uint64_t id = Open(grid, department, t);
    Do(cmd::Accept(id), t + kMinute);
    Do(cmd::Resolve(id), t + 2 * kMinute);
    Do(cmd::Verify(id, true), t + 3 * kMinute);
    Do(cmd::Close(id), t + 4 * kMinute);
  }

  v1::QueryResult Ask(v1::MetricsGroup group, Millis now, std::string from, std::string to) {
    v1::Query q;
    q.mutable_metrics()->set_group_by(group);
    q.mutable_metrics()->set_from(std::move(from));
    q.mutable_metrics()->set_to(std::move(to));
    return machine_->Answer(q, now);
  }
  // Monday's cohort unless a range is given.
  v1::MetricsReply Metrics(v1::MetricsGroup group, Millis now, std::string from = "2026-11-02",
                           std::string to = "2026-11-02") {
    const v1::QueryResult r = Ask(group, now, std::move(from), std::move(to));
    EXPECT_EQ(r.code(), v1::OK) << r.message();
    return r.metrics();
  }
  static const v1::ClosureRow& Row(const v1::MetricsReply& m, std::string_view key) {
    for (const auto& r : m.rows())
      if (r.key() == key) return r;
    ADD_FAILURE() << "no row \"" << key << "\" in\n" << m.DebugString();
    return v1::ClosureRow::default_instance();
  }
};

// 应结案 counts the handled cases plus the open ones past their deadline — and the deadline
// timer is what moves an open case in. Four cases to drainage on Monday:
//   c1 A1 dispatched 09:00 (due 14:30), resolved 10:00, closed 10:35       closed on time
//   c2 A2 dispatched 09:00 (due 14:30), resolved 15:00, closed 15:10       closed late
//   c3 A3 dispatched 13:30 (due 17:30), accepted, open                     overdue from 17:30
//   c4 A4 dispatched 16:00 (due Tue 11:00), accepted, open                 within its deadline
// At 16:10: due 2 (c1, c2), on time 1 of 2; index 30 + 20·½ + 20 + 20 + 10 = 90.
// At 17:45 once the timer fired: due 3, closed 2 → 2/3, on time 1/3, overdue open 1/3;
// index 30·⅔ + 20·⅓ + 20·1 + 20·⅔ + 10·1 = 70. Escalated: c2 (reminder at 11:00) and c3
// (reminder 15:30); c1 and c4 finished their stage before any step.
TEST_F(MetricsTest, DueCountsClosedPlusOpenPastTheDeadlineOnceTheTimerFires) {
  const uint64_t c1 = Open(kGridA1, "drainage", Mon("09:00"));
  const uint64_t c2 = Open(kGridA2, "drainage", Mon("09:00"));
  Do(cmd::Accept(c1), Mon("09:05"));
  Do(cmd::Accept(c2), Mon("09:05"));
  EXPECT_EQ(Get(c1).handle_deadline_ms(), Mon("14:30"));
  Do(cmd::Resolve(c1), Mon("10:00"));
  Do(cmd::Verify(c1, true), Mon("10:30"));
  Do(cmd::Close(c1), Mon("10:35"));
  const uint64_t c3 = Open(kGridA3, "drainage", Mon("13:30"));
  Do(cmd::Accept(c3), Mon("13:35"));
  EXPECT_EQ(Get(c3).handle_deadline_ms(), Mon("17:30"));
  Finish(c2, Mon("15:00"));
  const uint64_t c4 = Open(kGridA4, "drainage", Mon("16:00"));
  Do(cmd::Accept(c4), Mon("16:05"));
  EXPECT_EQ(Get(c4).handle_deadline_ms(), Tue("11:00"));

  Tick(Mon("16:10"));
  const Counted before{.registered = 4,
                       .dispatched = 4,
                       .due = 2,
                       .closed = 2,
                       .closed_on_time = 1,
                       .handle_due = 2,
                       .handled = 2,
                       .handled_on_time = 1,
                       .pending_on_time = 2,
                       .escalated = 2,
                       .supervised = 0};
  const v1::MetricsReply at_four = Metrics(v1::BY_DEPARTMENT, Mon("16:10"));
  ExpectCounts(Row(at_four, "drainage"), before);
  ExpectRates(Row(at_four, "drainage"), {kAllRates, 1.0, 0.5, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0});
  ExpectIndex(Row(at_four, "drainage"), true, 90.0, 0);  // 2 due < min sample 10

  // 17:45, c3's deadline passed, its timer not yet fired: the ledger has not moved it.
  ExpectCounts(Row(Metrics(v1::BY_DEPARTMENT, Mon("17:45")), "drainage"), before);
  Tick(Mon("17:45"));
  const Counted after{.registered = 4,
                      .dispatched = 4,
                      .due = 3,
                      .closed = 2,
                      .closed_on_time = 1,
                      .overdue_open = 1,
                      .handle_due = 3,
                      .handled = 2,
                      .handled_on_time = 1,
                      .pending_on_time = 1,
                      .escalated = 2,
                      .supervised = 0};
  const Rated after_rates{kAllRates, 2.0 / 3, 1.0 / 3, 2.0 / 3, 1.0 / 3, 0.0, 1.0 / 3, 0.0, 0.0};
  const v1::MetricsReply m = Metrics(v1::BY_DEPARTMENT, Mon("17:45"));
  EXPECT_EQ(m.rows_size(), 9);  // every department of the city, none left undispatched
  ExpectCounts(Row(m, "drainage"), after);
  ExpectRates(Row(m, "drainage"), after_rates);
  ExpectIndex(Row(m, "drainage"), true, 70.0, 0);
  EXPECT_EQ(Row(m, "drainage").name(), "排水公司");
  ExpectCounts(Row(m, "municipal"), {});
  ExpectIndex(Row(m, "municipal"), false, 0.0, 0);
  ExpectCounts(m.total(), after);
  ExpectRates(m.total(), after_rates);

  // The same cases by district and by day.
  const v1::MetricsReply districts = Metrics(v1::BY_DISTRICT, Mon("17:45"));
  ExpectCounts(Row(districts, "320501"), after);
  ExpectRates(Row(districts, "320501"), after_rates);
  EXPECT_EQ(Row(districts, "320501").name(), "东区");
  ExpectCounts(Row(districts, "320502"), {});
  const v1::MetricsReply days = Metrics(v1::BY_DAY, Mon("17:45"));
  ASSERT_EQ(days.rows_size(), 1);
  EXPECT_EQ(days.rows(0).key(), "2026-11-02");
  ExpectCounts(days.rows(0), after);
  EXPECT_EQ(days.rows(0).rank(), 0);
}

// 挂账: a suspended case leaves 应结案, 应处置 and overdue-open and is counted as suspended.
//   s1 A1 dispatched 09:00, accepted, suspended 10:00 (1 of 4 working hours used), resumed
//      Tuesday 09:00 → due Tuesday 12:00, overdue from then
//   s2 A2 dispatched 09:00, accepted, overdue 14:30, suspended 15:30, resumed Tuesday 09:00:
//      still past its deadline, so straight back into overdue-open
TEST_F(MetricsTest, ASuspendedCaseLeavesTheHandlingFiguresUntilResumed) {
  const uint64_t s1 = Open(kGridA1, "drainage", Mon("09:00"));
  const uint64_t s2 = Open(kGridA2, "drainage", Mon("09:00"));
  Do(cmd::Accept(s1), Mon("09:05"));
  Do(cmd::Accept(s2), Mon("09:05"));
  Do(cmd::Suspend(s1), Mon("10:00"));
  auto drainage = [&](Millis now) { return Row(Metrics(v1::BY_DEPARTMENT, now), "drainage"); };
  ExpectCounts(drainage(Mon("10:00")),
               {.registered = 2, .dispatched = 2, .suspended = 1, .pending_on_time = 2});

  Tick(Mon("15:00"));  // s2 overdue; s1's clock is paused, so it is not
  ExpectCounts(drainage(Mon("15:00")), {.registered = 2,
                                        .dispatched = 2,
                                        .due = 1,
                                        .overdue_open = 1,
                                        .handle_due = 1,
                                        .suspended = 1,
                                        .pending_on_time = 1});
  Do(cmd::Suspend(s2), Mon("15:30"));
  const v1::ClosureRow both = drainage(Mon("15:30"));
  ExpectCounts(both, {.registered = 2, .dispatched = 2, .suspended = 2, .pending_on_time = 2});
  ExpectRates(both, {0x80, 0, 0, 0, 0, 0, 0, 0, 0.0});  // only public report (0 of 2 registered)
  ExpectIndex(both, false, 0.0, 0);

  Tick(Tue("08:59"));  // overnight: no deadline passes while paused
  ExpectCounts(drainage(Tue("08:59")),
               {.registered = 2, .dispatched = 2, .suspended = 2, .pending_on_time = 2});
  Do(cmd::Resume(s1), Tue("09:00"));
  EXPECT_EQ(Get(s1).handle_deadline_ms(), Tue("12:00"));
  ExpectCounts(drainage(Tue("09:00")),
               {.registered = 2, .dispatched = 2, .suspended = 1, .pending_on_time = 2});
  Do(cmd::Resume(s2), Tue("09:00"));
  ExpectCounts(drainage(Tue("09:00")), {.registered = 2,
                                        .dispatched = 2,
                                        .due = 1,
                                        .overdue_open = 1,
                                        .handle_due = 1,
                                        .pending_on_time = 1});
  Tick(Tue("12:15"));
  const v1::ClosureRow back = drainage(Tue("12:15"));
  ExpectCounts(back,
               {.registered = 2, .dispatched = 2, .due = 2, .overdue_open = 2, .handle_due = 2});
  ExpectRates(back, {kAllRates, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0});
  ExpectIndex(back, true, 30.0, 0);  // 0·30 + 0·20 + (1 − 0)·20 + (1 − 1)·20 + (1 − 0)·10
}

// 返工: a failed verification sends the case back; rework counts the case once, rework_times
// every failure.
//   a A1 dispatched 09:00, resolved 10:00, failed 10:30 (new round due 16:00), resolved 11:00,
//        failed 11:30 (due 17:00), resolved 13:45, verified 14:00, closed 14:05   on time
//   b A2 dispatched 09:00, resolved 09:30, closed 09:40                             on time
//   c A3 dispatched 13:30 (due 17:30), open
// At 14:10: registered 3, due 2 (a, b), closed 2 on time, rework 1, rework_times 2.
class ReworkTest : public MetricsTest {
 protected:
  void Script() {
    const uint64_t a = Open(kGridA1, "drainage", Mon("09:00"));
    const uint64_t b = Open(kGridA2, "drainage", Mon("09:00"));
    Do(cmd::Accept(a), Mon("09:05"));
    Do(cmd::Accept(b), Mon("09:05"));
    Finish(b, Mon("09:30"));
    Do(cmd::Resolve(a), Mon("10:00"));
    Do(cmd::Verify(a, false, "still blocked"), Mon("10:30"));
    EXPECT_EQ(Get(a).handle_deadline_ms(), Mon("16:00"));
    ExpectCounts(Row(Metrics(v1::BY_DEPARTMENT, Mon("10:30")), "drainage"), {.registered = 2,
                                                                             .dispatched = 2,
                                                                             .due = 1,
                                                                             .closed = 1,
                                                                             .closed_on_time = 1,
                                                                             .handle_due = 1,
                                                                             .handled = 1,
                                                                             .handled_on_time = 1,
                                                                             .rework = 0,  // a is back in handling, not in due: not yet in the figures
                                                                             .rework_times = 1,
                                                                             .pending_on_time = 1});
    Do(cmd::Accept(a), Mon("10:35"));
    Do(cmd::Resolve(a), Mon("11:00"));
    Do(cmd::Verify(a, false, "blocked again"), Mon("11:30"));
    EXPECT_EQ(Get(a).handle_deadline_ms(), Mon("17:00"));
    Do(cmd::Accept(a), Mon("11:35"));
    const uint64_t c = Open(kGridA3, "drainage", Mon("13:30"));
    Do(cmd::Accept(c), Mon("13:35"));
    Do(cmd::Resolve(a), Mon("13:45"));
    Do(cmd::Verify(a, true), Mon("14:00"));
    Do(cmd::Close(a), Mon("14:05"));
    Tick(Mon("14:10"));
  }
  static constexpr Counted kAt1410{.registered = 3,
                                   .dispatched = 3,
                                   .due = 2,
                                   .closed = 2,
                                   .closed_on_time = 2,
                                   .handle_due = 2,
                                   .handled = 2,
                                   .handled_on_time = 2,
                                   .rework = 1,
                                   .rework_times = 2,
                                   .pending_on_time = 1};
};

TEST_F(ReworkTest, ReworkRateIsOverDueCasesByDefault) {
  Script();
  const v1::ClosureRow r = Row(Metrics(v1::BY_DEPARTMENT, Mon("14:10")), "drainage");
  ExpectCounts(r, kAt1410);
  ExpectRates(r, {kAllRates, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.0});  // rework 1 / due 2
  ExpectIndex(r, true, 90.0, 0);  // 30 + 20 + 20·(1 − ½) + 20 + 10
}

TEST_F(ReworkTest, ReworkRateIsOverRegisteredCasesWhenTheCitySaysSo) {
  UsePolicy([](v1::MetricsPolicy& p) { p.set_rework_denominator(v1::REGISTERED_CASES); });
  Script();
  const v1::ClosureRow r = Row(Metrics(v1::BY_DEPARTMENT, Mon("14:10")), "drainage");
  ExpectCounts(r, kAt1410);
  ExpectRates(r, {kAllRates, 1.0, 1.0, 1.0, 1.0, 1.0 / 3, 0.0, 0.0, 0.0});  // 1 / registered 3
  ExpectIndex(r, true, 280.0 / 3, 0);  // 30 + 20 + 20·⅔ + 20 + 10 = 93.33
}

// A term with no denominator is left out and the others scaled to the same total. With rework
// over registered cases, a department with nothing due yet has only the rework term:
//   a A1 dispatched 09:00, resolved 09:30, failed verification 10:00, open again
//   b A2 dispatched 09:00, open
// rework 0 of 2 registered (a reworked case counts once it is due again) → 20·(1 − 0) = 20
// of the 20 points present → 20 · 100/20 = 100.
// Under the default policy (rework over due cases) no index term has a denominator.
TEST_F(MetricsTest, AnIndexTermWithoutADenominatorIsLeftOutAndTheRestScaled) {
  auto script = [&] {
    const uint64_t a = Open(kGridA1, "drainage", Mon("09:00"));
    const uint64_t b = Open(kGridA2, "drainage", Mon("09:00"));
    Do(cmd::Accept(a), Mon("09:05"));
    Do(cmd::Accept(b), Mon("09:05"));
    Do(cmd::Resolve(a), Mon("09:30"));
    Do(cmd::Verify(a, false, "still blocked"), Mon("10:00"));
    Tick(Mon("10:30"));
    return Row(Metrics(v1::BY_DEPARTMENT, Mon("10:30")), "drainage");
  };
  // a is reworked but back in handling, not in due: rework 0 (rework_times 1).
  const Counted counts{.registered = 2, .dispatched = 2, .rework_times = 1, .pending_on_time = 2};
  const v1::ClosureRow by_due = script();
  ExpectCounts(by_due, counts);
  ExpectRates(by_due, {0x80, 0, 0, 0, 0, 0, 0, 0, 0.0});
  ExpectIndex(by_due, false, 0.0, 0);

  UsePolicy([](v1::MetricsPolicy& p) { p.set_rework_denominator(v1::REGISTERED_CASES); });
  const v1::ClosureRow by_registered = script();
  ExpectCounts(by_registered, counts);
  ExpectRates(by_registered, {0x90, 0, 0, 0, 0, 0.0, 0, 0, 0.0});
  ExpectIndex(by_registered, true, 100.0, 0);  // 20·(1 − 0) = 20 of the 20 points present
}

// 回退: a returned case stays with its department until re-dispatched; then it moves, with its
// return, to the new one, and keeps the deadline of the first dispatch (捆绑计时).
//   r A1 dispatched 09:00 → drainage (due 14:30), returned 09:30, dispatched 10:00 → municipal,
//     overdue from 14:30 at municipal
TEST_F(MetricsTest, AReturnedCaseMovesToTheDepartmentItIsDispatchedTo) {
  Tick(Mon("09:00"));
  const uint64_t r = Ok(cmd::Report(kDrainClog, kGridA1), Mon("09:00")).result.case_id();
  Do(cmd::Register(r), Mon("09:00"));
  Do(cmd::Dispatch(r), Mon("09:00"));  // the router: drainage
  ASSERT_EQ(Get(r).department(), "drainage");
  EXPECT_EQ(Get(r).handle_deadline_ms(), Mon("14:30"));
  Do(cmd::Return(r), Mon("09:30"));
  v1::MetricsReply m = Metrics(v1::BY_DEPARTMENT, Mon("09:30"));
  ExpectCounts(Row(m, "drainage"),
               {.registered = 1, .dispatched = 1, .returned = 1, .pending_on_time = 1});
  ExpectCounts(Row(m, "municipal"), {});

  Do(cmd::Dispatch(r, "municipal"), Mon("10:00"));
  EXPECT_EQ(Get(r).handle_deadline_ms(), Mon("14:30"));
  m = Metrics(v1::BY_DEPARTMENT, Mon("10:00"));
  ExpectCounts(Row(m, "drainage"), {});
  ExpectIndex(Row(m, "drainage"), false, 0.0, 0);
  ExpectCounts(Row(m, "municipal"),
               {.registered = 1, .dispatched = 1, .returned = 1, .pending_on_time = 1});

  Tick(Mon("14:45"));
  m = Metrics(v1::BY_DEPARTMENT, Mon("14:45"));
  ExpectCounts(Row(m, "drainage"), {});
  ExpectCounts(Row(m, "municipal"), {.registered = 1,
                                     .dispatched = 1,
                                     .due = 1,
                                     .overdue_open = 1,
                                     .handle_due = 1,
                                     .returned = 1});
  ExpectRates(Row(m, "municipal"), {kAllRates, 0, 0, 0, 0, 0, 1.0, 0, 0.0});
}

// Ranking with min_sample 3. Monday, all closed on time unless said:
//   drainage  3 closed                                   index 100            rank 1
//   water     3 closed, one late (w3: due 14:30, resolved 15:00)
//             30 + 20·⅔ + 20 + 20 + 10 = 93.33                                rank 2
//   municipal 2 closed, m3 overdue from 14:30
//             30·⅔ + 20·⅔ + 20 + 20·⅔ + 10 = 76.67                            rank 3
//   enforce   2 closed: index 100 but 2 due < 3                               not ranked
// Rows: ranked ones by index, then the rest by id.
TEST_F(MetricsTest, UnitsBelowTheMinimumSampleAreListedButNotRanked) {
  UsePolicy([](v1::MetricsPolicy& p) { p.set_min_sample(3); });
  const uint64_t m3 = Open(kGridA2, "municipal", Mon("09:00"));
  const uint64_t w3 = Open(kGridA3, "water", Mon("09:00"));
  Do(cmd::Accept(m3), Mon("09:05"));
  Do(cmd::Accept(w3), Mon("09:05"));
  const char* quick[] = {"drainage", "drainage", "drainage", "municipal", "municipal",
                         "water",    "water",    "enforce",  "enforce"};
  Millis t = Mon("09:10");
  for (const char* department : quick) {
    ClosedOnTime(kGridA1, department, t);
    t += 10 * kMinute;
  }
  Finish(w3, Mon("15:00"));
  Tick(Mon("15:30"));

  const v1::MetricsReply m = Metrics(v1::BY_DEPARTMENT, Mon("15:30"));
  EXPECT_EQ(m.min_sample(), 3u);
  std::vector<std::string> order;
  for (const auto& r : m.rows()) order.push_back(r.key());
  EXPECT_EQ(order, (std::vector<std::string>{"drainage", "water", "municipal", "command-320501",
                                             "command-320502", "enforce", "housing", "leadership",
                                             "traffic"}));
  ExpectIndex(Row(m, "drainage"), true, 100.0, 1);
  ExpectIndex(Row(m, "water"), true, 280.0 / 3, 2);
  ExpectIndex(Row(m, "municipal"), true, 230.0 / 3, 3);
  ExpectIndex(Row(m, "enforce"), true, 100.0, 0);
  ExpectIndex(Row(m, "housing"), false, 0.0, 0);
  ExpectCounts(Row(m, "water"), {.registered = 3,
                                 .dispatched = 3,
                                 .due = 3,
                                 .closed = 3,
                                 .closed_on_time = 2,
                                 .handle_due = 3,
                                 .handled = 3,
                                 .handled_on_time = 2});
  ExpectRates(Row(m, "water"), {kAllRates, 1.0, 2.0 / 3, 1.0, 2.0 / 3, 0, 0, 0, 0.0});
  ExpectCounts(Row(m, "municipal"), {.registered = 3,
                                     .dispatched = 3,
                                     .due = 3,
                                     .closed = 2,
                                     .closed_on_time = 2,
                                     .overdue_open = 1,
                                     .handle_due = 3,
                                     .handled = 2,
                                     .handled_on_time = 2});
  ExpectRates(Row(m, "municipal"),
              {kAllRates, 2.0 / 3, 2.0 / 3, 2.0 / 3, 2.0 / 3, 0, 1.0 / 3, 0, 0.0});
  ExpectCounts(Row(m, "enforce"), {.registered = 2,
                                   .dispatched = 2,
                                   .due = 2,
                                   .closed = 2,
                                   .closed_on_time = 2,
                                   .handle_due = 2,
                                   .handled = 2,
                                   .handled_on_time = 2});
  // Districts are ranked too: every case is in 320501.
  const v1::MetricsReply d = Metrics(v1::BY_DISTRICT, Mon("15:30"));
  EXPECT_EQ(Row(d, "320501").rank(), 1);
  EXPECT_EQ(Row(d, "320501").due(), 11);
  EXPECT_EQ(Row(d, "320502").rank(), 0);
  // A day is not an evaluated unit.
  EXPECT_EQ(Metrics(v1::BY_DAY, Mon("15:30")).rows(0).rank(), 0);
}

// Closure over 立案数 − 按时待处置数 (registered_less_pending):
//   c1 A1 09:00, resolved 10:00, closed           on time
//   c2 A2 09:00, resolved 15:00, closed           late
//   c3 A3 09:00, open, overdue from 14:30
//   c4 A4 13:30 (due 17:30), open                  pending on time
//   c5 B1 09:00, voided 09:30                      registered, neither pending nor due
// At 15:30: registered 5, pending on time 1 → denominator 4: closure 2/4, on time 1/4; the
// default (due 3) gives 2/3 and 1/3. The index does not use closure: 70 either way.
class ClosureDenominatorTest : public MetricsTest {
 protected:
  v1::ClosureRow Script() {
    const uint64_t c1 = Open(kGridA1, "drainage", Mon("09:00"));
    const uint64_t c2 = Open(kGridA2, "drainage", Mon("09:00"));
    const uint64_t c3 = Open(kGridA3, "drainage", Mon("09:00"));
    const uint64_t c5 = Open(kGridB1, "drainage", Mon("09:00"));
    for (uint64_t id : {c1, c2, c3}) Do(cmd::Accept(id), Mon("09:05"));
    Do(cmd::Void(c5), Mon("09:30"));
    Finish(c1, Mon("10:00"));
    const uint64_t c4 = Open(kGridA4, "drainage", Mon("13:30"));
    Do(cmd::Accept(c4), Mon("13:35"));
    Finish(c2, Mon("15:00"));
    Tick(Mon("15:30"));
    const v1::ClosureRow r = Row(Metrics(v1::BY_DEPARTMENT, Mon("15:30")), "drainage");
    ExpectCounts(r, {.registered = 5,
                     .dispatched = 5,
                     .due = 3,
                     .closed = 2,
                     .closed_on_time = 1,
                     .overdue_open = 1,
                     .handle_due = 3,
                     .handled = 2,
                     .handled_on_time = 1,
                     .voided = 1,
                     .pending_on_time = 1});
    ExpectIndex(r, true, 70.0, 0);
    return r;
  }
};

TEST_F(ClosureDenominatorTest, RegisteredLessPendingOnTime) {
  UsePolicy([](v1::MetricsPolicy& p) { p.set_closure_denominator(v1::REGISTERED_LESS_PENDING); });
  ExpectRates(Script(), {kAllRates, 0.5, 0.25, 2.0 / 3, 1.0 / 3, 0, 1.0 / 3, 0, 0.0});
}

TEST_F(ClosureDenominatorTest, DueCasesByDefault) {
  ExpectRates(Script(), {kAllRates, 2.0 / 3, 1.0 / 3, 2.0 / 3, 1.0 / 3, 0, 1.0 / 3, 0, 0.0});
}

// 延期: an approved extension lengthens the handling clock; one that moves the deadline past
// now takes an overdue case out of 应结案 until the new deadline passes.
//   e1 A1 dispatched 09:00 (due 14:30), 2 h approved 10:05 → due 16:30, resolved 16:00,
//      closed 16:10                                                        on time
//   e2 A2 dispatched 09:00, overdue 14:30, 4 h approved 15:05 → due Tuesday 09:30
// Tuesday 09:45: due 2, closed 1 on time, overdue 1, extended 2 (6 h);
// index 30·½ + 20·½ + 20·1 + 20·½ + 10·(1 − 1) = 55.
TEST_F(MetricsTest, AnExtensionPastNowTakesAnOverdueCaseOutOfDue) {
  const uint64_t e1 = Open(kGridA1, "drainage", Mon("09:00"));
  const uint64_t e2 = Open(kGridA2, "drainage", Mon("09:00"));
  Do(cmd::Accept(e1), Mon("09:05"));
  Do(cmd::Accept(e2), Mon("09:05"));
  Do(cmd::RequestExtension(e1, 2), Mon("10:00"));
  Do(cmd::ApproveExtension(e1), Mon("10:05"));
  EXPECT_EQ(Get(e1).handle_deadline_ms(), Mon("16:30"));
  Tick(Mon("15:00"));
  ExpectCounts(Row(Metrics(v1::BY_DEPARTMENT, Mon("15:00")), "drainage"), {.registered = 2,
                                                                           .dispatched = 2,
                                                                           .due = 1,
                                                                           .overdue_open = 1,
                                                                           .handle_due = 1,
                                                                           // e1's extension counts once e1 is in handle_due
                                                                           .extended = 0,
                                                                           .extension_hours = 2,
                                                                           .pending_on_time = 1});
  Do(cmd::RequestExtension(e2, 4), Mon("15:00"));
  Do(cmd::ApproveExtension(e2), Mon("15:05"));
  EXPECT_EQ(Get(e2).handle_deadline_ms(), Tue("09:30"));
  ExpectCounts(Row(Metrics(v1::BY_DEPARTMENT, Mon("15:05")), "drainage"), {.registered = 2,
                                                                           .dispatched = 2,
                                                                           .extended = 0,  // neither case is in handle_due now
                                                                           .extension_hours = 6,
                                                                           .pending_on_time = 2});
  Finish(e1, Mon("16:00"));
  Tick(Tue("09:45"));
  const v1::ClosureRow r = Row(Metrics(v1::BY_DEPARTMENT, Tue("09:45")), "drainage");
  ExpectCounts(r, {.registered = 2,
                   .dispatched = 2,
                   .due = 2,
                   .closed = 1,
                   .closed_on_time = 1,
                   .overdue_open = 1,
                   .handle_due = 2,
                   .handled = 1,
                   .handled_on_time = 1,
                   .extended = 2,
                   .extension_hours = 6});
  ExpectRates(r, {kAllRates, 0.5, 0.5, 0.5, 0.5, 0.0, 0.5, 1.0, 0.0});
  ExpectIndex(r, true, 55.0, 0);
}

// A rate is a share of its denominator (0..1) and the index lies within 0..the sum of the
// weights (command.proto ClosureRow.index). Drainage on Monday:
//   a1 A1, a2 A4 dispatched 09:00, resolved 09:30, failed verification 09:40: open again
//      (new round due 15:10), reworked, not due
//   b1 A2, b2 B1 dispatched 09:00, 2 h extension approved 09:50 (due 16:30), open, not due
//   c  A3 dispatched 09:00, never resolved: overdue from 14:30, the only case due
// At 15:00: due 1, handle_due 1. Counting the two reworked and two extended cases that are
// not due would make rework / due = 2, extended / handle_due = 2 and the index
// 0 + 0 + 20·(1 − 2) + 20·(1 − 1) + 10·(1 − 2) = −30.
TEST_F(MetricsTest, RatesStayWithinZeroAndOneAndTheIndexWithinItsWeights) {
  const uint64_t a1 = Open(kGridA1, "drainage", Mon("09:00"));
  const uint64_t a2 = Open(kGridA4, "drainage", Mon("09:00"));
  const uint64_t b1 = Open(kGridA2, "drainage", Mon("09:00"));
  const uint64_t b2 = Open(kGridB1, "drainage", Mon("09:00"));
  const uint64_t c = Open(kGridA3, "drainage", Mon("09:00"));
  for (uint64_t id : {a1, a2, b1, b2, c}) Do(cmd::Accept(id), Mon("09:05"));
  for (uint64_t id : {a1, a2}) {
    Do(cmd::Resolve(id), Mon("09:30"));
    Do(cmd::Verify(id, false, "still blocked"), Mon("09:40"));
  }
  for (uint64_t id : {b1, b2}) {
    Do(cmd::RequestExtension(id, 2), Mon("09:45"));
    Do(cmd::ApproveExtension(id), Mon("09:50"));
  }
  Tick(Mon("15:00"));
  const v1::ClosureRow r = Row(Metrics(v1::BY_DEPARTMENT, Mon("15:00")), "drainage");
  ExpectCounts(r, {.registered = 5,
                   .dispatched = 5,
                   .due = 1,
                   .overdue_open = 1,
                   .handle_due = 1,
                   .rework_times = 2,
                   .extension_hours = 4,
                   .pending_on_time = 4});
  // Reworked and extended cases count in rework and extended once they are due again, so
  // rework ⊆ due and extended ⊆ handle_due: 0 + 0 + 20·(1 − 0) + 20·(1 − 1) + 10·(1 − 0) = 30.
  ExpectIndex(r, true, 30.0, 0);
  EXPECT_LE(r.rework_rate(), 1.0) << "rework " << r.rework() << " / due " << r.due();
  EXPECT_LE(r.extension_rate(), 1.0)
      << "extended " << r.extended() << " / handle_due " << r.handle_due();
  EXPECT_GE(r.index(), 0.0);
  EXPECT_LE(r.index(), 100.0);
}

// Cohorts by local registration day:
//   a A1 registered Monday 09:00, closed 09:34 on time
//   b A2 registered Tuesday 07:00 +08:00 (Monday 23:00 UTC): Tuesday's cohort; open
//   c A3 reported Monday 17:00, registered Tuesday 09:00: Tuesday's cohort
TEST_F(MetricsTest, FromAndToSelectTheLocalDaysCasesWereRegistered) {
  ClosedOnTime(kGridA1, "drainage", Mon("09:00"));
  Tick(Mon("17:00"));
  const uint64_t c = Ok(cmd::Report(kDrainClog, kGridA3), Mon("17:00")).result.case_id();
  // Not registered yet: c counts by its report day, under no department.
  const v1::ClosureRow desk = Row(Metrics(v1::BY_DEPARTMENT, Mon("17:00")), "");
  EXPECT_EQ(desk.reported(), 1);
  EXPECT_EQ(desk.registered(), 0);
  EXPECT_EQ(desk.name(), "未派遣 not dispatched");
  EXPECT_EQ(Metrics(v1::BY_DAY, Mon("17:00")).rows(0).reported(), 2);
  Open(kGridA2, "drainage", Tue("07:00"));
  Do(cmd::Register(c), Tue("09:00"));
  Do(cmd::Dispatch(c, "drainage"), Tue("09:00"));
  const Millis now = Tue("10:00");
  Tick(now);

  ExpectCounts(Row(Metrics(v1::BY_DEPARTMENT, now, "2026-11-02", "2026-11-02"), "drainage"),
               {.registered = 1,
                .dispatched = 1,
                .due = 1,
                .closed = 1,
                .closed_on_time = 1,
                .handle_due = 1,
                .handled = 1,
                .handled_on_time = 1});
  ExpectCounts(Row(Metrics(v1::BY_DEPARTMENT, now, "2026-11-03", "2026-11-03"), "drainage"),
               {.registered = 2, .dispatched = 2, .pending_on_time = 2});
  const v1::MetricsReply all = Metrics(v1::BY_DEPARTMENT, now, "", "");
  EXPECT_EQ(all.from(), "2026-11-02");
  EXPECT_EQ(all.to(), "2026-11-03");
  ExpectCounts(all.total(), {.registered = 3,
                             .dispatched = 3,
                             .due = 1,
                             .closed = 1,
                             .closed_on_time = 1,
                             .handle_due = 1,
                             .handled = 1,
                             .handled_on_time = 1,
                             .pending_on_time = 2});
  const v1::MetricsReply days = Metrics(v1::BY_DAY, now, "2026-11-01", "2026-11-30");
  ASSERT_EQ(days.rows_size(), 2);
  EXPECT_EQ(days.rows(0).key(), "2026-11-02");
  EXPECT_EQ(days.rows(0).registered(), 1);
  EXPECT_EQ(days.rows(1).key(), "2026-11-03");
  EXPECT_EQ(days.rows(1).registered(), 2);
  const v1::MetricsReply october = Metrics(v1::BY_DEPARTMENT, now, "2026-10-01", "2026-10-31");
  ExpectCounts(Row(october, "drainage"), {});
  ExpectCounts(october.total(), {});
}

// Ranges that cover whole months read the month roll-ups, the ragged ends day buckets:
//   a A1 registered Friday 2026-10-30 09:00, closed 09:04                 on time
//   b A2 registered Monday 2026-11-02 09:00, open: overdue from 14:30 (fired on Dec 1)
//   c A3 registered Tuesday 2026-12-01 09:00, open
TEST_F(MetricsTest, RangesAcrossMonthsAddUpTheirDays) {
  ClosedOnTime(kGridA1, "drainage", At("2026-10-30T09:00:00+08:00"));
  Open(kGridA2, "drainage", Mon("09:00"));
  Open(kGridA3, "drainage", At("2026-12-01T09:00:00+08:00"));
  const Millis now = At("2026-12-01T10:00:00+08:00");
  Tick(now);
  const Counted october{.registered = 1,
                        .dispatched = 1,
                        .due = 1,
                        .closed = 1,
                        .closed_on_time = 1,
                        .handle_due = 1,
                        .handled = 1,
                        .handled_on_time = 1};
  const Counted november{
      .registered = 1, .dispatched = 1, .due = 1, .overdue_open = 1, .handle_due = 1};
  const Counted december{.registered = 1, .dispatched = 1, .pending_on_time = 1};
  auto sum = [](std::initializer_list<Counted> parts) {
    Counted s;
    for (const Counted& p : parts) {
      s.registered += p.registered, s.dispatched += p.dispatched, s.due += p.due;
      s.closed += p.closed, s.closed_on_time += p.closed_on_time, s.overdue_open += p.overdue_open;
      s.handle_due += p.handle_due, s.handled += p.handled, s.handled_on_time += p.handled_on_time;
      s.pending_on_time += p.pending_on_time;
    }
    return s;
  };
  const struct {
    const char* from;
    const char* to;
    Counted want;
  } ranges[] = {
      {"2026-11-01", "2026-11-30", november},
      {"2026-10-30", "2026-10-30", october},
      {"2026-10-01", "2026-10-31", october},
      {"2026-10-15", "2026-11-30", sum({october, november})},
      {"2026-10-31", "2026-12-01", sum({november, december})},
      {"2026-11-01", "2026-12-31", sum({november, december})},
      {"2026-09-01", "2026-12-31", sum({october, november, december})},
      {"2026-12-02", "2026-12-31", {}},
  };
  for (const auto& r : ranges) {
    SCOPED_TRACE(std::string(r.from) + " .. " + r.to);
    const v1::MetricsReply m = Metrics(v1::BY_DEPARTMENT, now, r.from, r.to);
    ExpectCounts(Row(m, "drainage"), r.want);
    ExpectCounts(m.total(), r.want);
    ExpectCounts(Row(Metrics(v1::BY_DISTRICT, now, r.from, r.to), "320501"), r.want);
  }
}

TEST_F(MetricsTest, BadRangesAndAMissingGroupingAreRefusedByName) {
  ClosedOnTime(kGridA1, "drainage", Mon("09:00"));
  const Millis now = Mon("10:00");
  struct Bad {
    const char* from;
    const char* to;
    const char* field;
  };
  const Bad bad[] = {
      {"2026-02-30", "", "metrics.from: \"2026-02-30\" is not a date"},
      {"", "2026-13-01", "metrics.to: \"2026-13-01\" is not a date"},
      {"garbage", "", "metrics.from: \"garbage\" is not a date"},
      {"", "11/02/2026", "metrics.to: \"11/02/2026\" is not a date"},
      {"2026-11-2", "", "metrics.from: \"2026-11-2\" is not a date"},
      {"1999-12-31", "", "metrics.from: \"1999-12-31\" is not a date YYYY-MM-DD (2000..2100)"},
      {"2026-11-03", "2026-11-02", "metrics.from: must not be after metrics.to"},
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(std::string(b.from) + " .. " + b.to);
    const v1::QueryResult r = Ask(v1::BY_DEPARTMENT, now, b.from, b.to);
    EXPECT_EQ(r.code(), v1::INVALID_ARGUMENT);
    EXPECT_THAT(r.message(), ::testing::StartsWith(b.field));
  }
  const v1::QueryResult none = Ask(v1::GROUP_UNSPECIFIED, now, "", "");
  EXPECT_EQ(none.code(), v1::INVALID_ARGUMENT);
  EXPECT_THAT(none.message(), ::testing::StartsWith("metrics.group_by: required"));
  // Empty from and to are documented (command.proto Metrics) as "all history up to today".
  const v1::QueryResult open = Ask(v1::BY_DEPARTMENT, now, "", "");
  EXPECT_EQ(open.code(), v1::OK) << open.message();
  EXPECT_EQ(open.metrics().from(), "2026-11-02");
  EXPECT_EQ(open.metrics().to(), "2026-11-02");
}

}  // namespace
}  // namespace casebus::core

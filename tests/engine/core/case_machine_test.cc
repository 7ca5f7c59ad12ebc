// CaseMachine: every lifecycle transition of DESIGN.md's loop and its side paths, legal and
// illegal, with the deadlines and work orders each one produces (SmallCity, +08:00).

#include "tests/engine/core/machine_fixture.h"

namespace casebus::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using CaseMachineTest = MachineTest;

TEST_F(CaseMachineTest, ReportCreatesAReportedCase) {
  Effects fx = Ok(cmd::Report(kDrainClog, kGridA1), Monday9());
  EXPECT_EQ(fx.result.case_id(), 1u);
  EXPECT_FALSE(fx.result.merged());
  EXPECT_TRUE(fx.work_orders.empty());
  ASSERT_EQ(fx.record.events_size(), 1);
  EXPECT_EQ(fx.record.events(0).type(), v1::EV_REPORTED);
  const v1::Case& c = Get(1);
  EXPECT_EQ(c.state(), v1::REPORTED);
  EXPECT_EQ(c.category(), kDrainClog);
  EXPECT_EQ(c.place().grid(), kGridA1);
  EXPECT_EQ(c.source(), v1::INSPECTOR);
  EXPECT_EQ(c.urgency(), v1::NORMAL);  // unspecified counts as normal
  EXPECT_EQ(c.reported_at_ms(), Monday9());
  EXPECT_EQ(c.report_count(), 1);
  ASSERT_EQ(c.reporters_size(), 1);
  EXPECT_EQ(c.reporters(0).name(), "张三");
  EXPECT_EQ(c.reporters(0).source(), v1::INSPECTOR);
  EXPECT_EQ(c.reporters(0).at_ms(), Monday9());
  ASSERT_EQ(c.history_size(), 1);
  EXPECT_FALSE(c.history(0).has_reported());  // the fields above the history hold it
  EXPECT_EQ(machine_->next_case_id(), 2u);
}

TEST_F(CaseMachineTest, ReportRefusesWhatTheCityDoesNotKnow) {
  struct Bad {
    v1::Command command;
    std::string field, says;
  };
  v1::Command with_condition = cmd::Report(kRoadDamage, kGridA1);
  with_condition.mutable_report()->set_condition("landslide");
  const Bad bad[] = {
      {cmd::Report("999999", kGridA1), "report.category", "is not a category of Testville"},
      {cmd::Report("2001", kGridA1), "report.category", "is a class"},
      {with_condition, "report.condition", "landslide is not a condition of category 200103"},
      {cmd::Report(kDrainClog, "320501001001099"), "report.place.grid", "is not a unit grid"},
  };
  for (const Bad& b : bad) {
    Effects fx = Run(b.command, Monday9());
    EXPECT_EQ(fx.result.code(), v1::INVALID_ARGUMENT) << b.field;
    EXPECT_EQ(fx.result.field(), b.field);
    EXPECT_THAT(fx.result.message(), HasSubstr(b.says));
    EXPECT_FALSE(fx.Changed());
  }
  EXPECT_EQ(machine_->case_count(), 0u);
}

TEST_F(CaseMachineTest, RegisterSetsTheConditionAndRejectEndsTheCase) {
  uint64_t road = Reported(kRoadDamage, kGridA1);
  Effects bad = Run(cmd::Register(road, "landslide"), Monday9());
  EXPECT_EQ(bad.result.code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(bad.result.field(), "register.condition");
  Ok(cmd::Register(road, "excavation"), Monday9() + kMinute);
  EXPECT_EQ(Get(road).state(), v1::REGISTERED);
  EXPECT_EQ(Get(road).condition(), "excavation");
  EXPECT_EQ(Get(road).registered_at_ms(), Monday9() + kMinute);

  uint64_t junk = Reported(kDrainClog, kGridA1);
  Ok(cmd::Reject(junk, "a private yard"), Monday9());
  EXPECT_EQ(Get(junk).state(), v1::REJECTED);
  EXPECT_EQ(Get(junk).history(1).type(), v1::EV_REJECTED);
  EXPECT_EQ(Get(junk).history(1).reason(), "a private yard");
}

TEST_F(CaseMachineTest, DispatchAsksTheRouterAndIssuesTheFirstWorkOrder) {
  uint64_t id = Reported(kDrainClog, kGridA1);
  Ok(cmd::Register(id), Monday9());
  Effects fx = Ok(cmd::Dispatch(id), Monday9());
  EXPECT_EQ(fx.result.department(), "drainage");
  EXPECT_EQ(fx.result.work_order_id(), "1-1");
  const v1::Case& c = Get(id);
  EXPECT_EQ(c.state(), v1::DISPATCHED);
  EXPECT_EQ(c.department(), "drainage");
  EXPECT_EQ(c.route().rule_id(), "r-drain-320501");
  EXPECT_EQ(c.dispatched_at_ms(), Monday9());
  EXPECT_EQ(c.dispatch_count(), 1);
  // 1 and 4 working hours from Monday 09:00: 10:00, and 09:00–12:00 + 13:30–14:30.
  EXPECT_EQ(c.accept_deadline_ms(), At("2026-11-02T10:00:00+08:00"));
  EXPECT_EQ(c.handle_deadline_ms(), At("2026-11-02T14:30:00+08:00"));
  ASSERT_EQ(fx.work_orders.size(), 1u);
  const v1::WorkOrder& w = fx.work_orders[0];
  EXPECT_EQ(w.id(), "1-1");
  EXPECT_EQ(w.case_id(), id);
  EXPECT_EQ(w.department(), "drainage");
  EXPECT_EQ(w.reason(), "dispatch");
  EXPECT_EQ(w.issued_at_ms(), Monday9());
  EXPECT_EQ(w.accept_deadline_ms(), c.accept_deadline_ms());
  EXPECT_EQ(w.handle_deadline_ms(), c.handle_deadline_ms());
  EXPECT_EQ(w.category(), kDrainClog);
  EXPECT_EQ(w.category_name(), "下水道堵塞");
  EXPECT_EQ(w.place().grid(), kGridA1);
  EXPECT_EQ(w.description(), "reported in a test");
  EXPECT_EQ(w.urgency(), v1::NORMAL);
  EXPECT_EQ(w.route().rule_id(), "r-drain-320501");
  EXPECT_EQ(w.rework_count(), 0);
}

TEST_F(CaseMachineTest, DispatchToANamedDepartment) {
  uint64_t id = Reported(kDrainClog, kGridA1);
  Ok(cmd::Register(id), Monday9());
  Effects unknown = Run(cmd::Dispatch(id, "nobody"), Monday9());
  EXPECT_EQ(unknown.result.code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(unknown.result.field(), "dispatch.department");
  EXPECT_EQ(Get(id).state(), v1::REGISTERED);

  Effects fx = Ok(cmd::Dispatch(id, "municipal"), Monday9());
  EXPECT_EQ(fx.result.department(), "municipal");
  EXPECT_EQ(Get(id).department(), "municipal");
  EXPECT_EQ(Get(id).route().rule_id(), "");
  EXPECT_EQ(Get(id).route().explanation(), "dispatched by dispatcher-1 to municipal");
  ASSERT_EQ(fx.work_orders.size(), 1u);
  EXPECT_EQ(fx.work_orders[0].department(), "municipal");
}

TEST_F(CaseMachineTest, ConditionPicksTheLimitsAndTheRoute) {
  // Road damage: accept 2 working hours; handle 3 working days, 4 working hours for
  // excavation, 5 working days for cracks. Dispatched Monday 09:00.
  uint64_t plain = Reported(kRoadDamage, kGridA1);
  uint64_t dig = Reported(kRoadDamage, kGridA2);
  uint64_t cracks = Reported(kRoadDamage, kGridA3);
  Ok(cmd::Register(plain), Monday9());
  Ok(cmd::Register(dig, "excavation"), Monday9());  // set at registration
  Ok(cmd::Register(cracks, "cracks"), Monday9());
  for (uint64_t id : {plain, dig, cracks}) Ok(cmd::Dispatch(id), Monday9());
  for (uint64_t id : {plain, dig, cracks})
    EXPECT_EQ(Get(id).accept_deadline_ms(), At("2026-11-02T11:00:00+08:00")) << id;
  EXPECT_EQ(Get(plain).handle_deadline_ms(), At("2026-11-05T17:30:00+08:00"));
  EXPECT_EQ(Get(dig).handle_deadline_ms(), At("2026-11-02T14:30:00+08:00"));
  EXPECT_EQ(Get(cracks).handle_deadline_ms(), At("2026-11-09T17:30:00+08:00"));
  EXPECT_EQ(Get(plain).department(), "municipal");
  EXPECT_EQ(Get(dig).department(), "enforce");
  EXPECT_EQ(Get(cracks).department(), "municipal");
}

TEST_F(CaseMachineTest, AcceptChecksTheWorkOrderId) {
  uint64_t id = Dispatched();
  Effects wrong = Run(cmd::Accept(id, "1-9"), Monday9());
  EXPECT_EQ(wrong.result.code(), v1::FAILED_PRECONDITION);
  EXPECT_THAT(wrong.result.message(), HasSubstr("1-9"));
  EXPECT_THAT(wrong.result.message(), HasSubstr("current work order 1-1"));
  Ok(cmd::Accept(id, "1-1"), Monday9() + 5 * kMinute);
  EXPECT_EQ(Get(id).state(), v1::ACCEPTED);
  EXPECT_EQ(Get(id).accepted_at_ms(), Monday9() + 5 * kMinute);
}

TEST_F(CaseMachineTest, ReturnThenRedispatchKeepsTheBundledHandleDeadline) {
  uint64_t id = Accepted(kDrainClog, kGridA1);  // → drainage, handle Monday 14:30
  const Millis first_handle = Get(id).handle_deadline_ms();
  Ok(cmd::Return(id), Monday9() + 30 * kMinute);
  EXPECT_EQ(Get(id).state(), v1::RETURNED);
  EXPECT_EQ(Get(id).return_count(), 1);
  EXPECT_EQ(Get(id).department(), "drainage");

  const Millis tuesday9 = At("2026-11-03T09:00:00+08:00");
  Effects fx = Ok(cmd::Dispatch(id), tuesday9);
  // The router skips the returning department: the district catch-all is next.
  EXPECT_EQ(fx.result.department(), "command-320501");
  EXPECT_EQ(Get(id).route().rule_id(), "r-default-320501");
  EXPECT_EQ(fx.result.work_order_id(), "1-2");
  EXPECT_EQ(Get(id).dispatch_count(), 2);
  EXPECT_EQ(Get(id).dispatched_at_ms(), Monday9());  // the clock started at the first dispatch
  EXPECT_EQ(Get(id).accepted_at_ms(), 0);
  EXPECT_EQ(Get(id).accept_deadline_ms(), At("2026-11-03T10:00:00+08:00"));
  EXPECT_EQ(Get(id).handle_deadline_ms(), first_handle);
  ASSERT_EQ(fx.work_orders.size(), 1u);
  EXPECT_EQ(fx.work_orders[0].handle_deadline_ms(), first_handle);
  EXPECT_EQ(fx.work_orders[0].id(), "1-2");
}

TEST_F(CaseMachineTest, ReturnedCaseGoesToANamedDepartment) {
  uint64_t id = Dispatched(kDrainClog, kGridA1);
  Ok(cmd::Return(id), Monday9());
  Effects fx = Ok(cmd::Dispatch(id, "municipal"), Monday9() + kHour);
  EXPECT_EQ(fx.result.department(), "municipal");
  EXPECT_EQ(Get(id).handle_deadline_ms(), At("2026-11-02T14:30:00+08:00"));
}

TEST_F(CaseMachineTest, ApprovedExtensionMovesTheHandleDeadlineInWorkingHours) {
  uint64_t id = Accepted(kDrainClog, kGridA1);  // handle Monday 14:30, working hours
  Ok(cmd::RequestExtension(id, 8), Monday9() + kHour);
  EXPECT_EQ(Get(id).pending_extension_hours(), 8);
  Effects again = Run(cmd::RequestExtension(id, 4), Monday9() + kHour);
  EXPECT_EQ(again.result.code(), v1::FAILED_PRECONDITION);
  EXPECT_THAT(again.result.message(), HasSubstr("is accepted with an extension request of 8 h waiting"));

  Ok(cmd::ApproveExtension(id), Monday9() + 2 * kHour);  // 0 = as requested
  // Monday 14:30 + 8 working hours: 14:30–17:30 (3), Tue 08:30–12:00 (3.5), 13:30–15:00 (1.5).
  EXPECT_EQ(Get(id).handle_deadline_ms(), At("2026-11-03T15:00:00+08:00"));
  EXPECT_EQ(Get(id).extension_count(), 1);
  EXPECT_EQ(Get(id).extension_hours(), 8);
  EXPECT_EQ(Get(id).pending_extension_hours(), 0);

  Effects nothing = Run(cmd::ApproveExtension(id), Monday9() + 3 * kHour);
  EXPECT_EQ(nothing.result.code(), v1::FAILED_PRECONDITION);
  EXPECT_THAT(nothing.result.message(), HasSubstr("case 1 is accepted with no extension request waiting"));
}

TEST_F(CaseMachineTest, ApprovedHoursOverrideTheRequestAndUrgentClocksRunNonStop) {
  uint64_t id = Accepted(kWellCover, kGridA1);  // handle Monday 11:00, urgent hours
  Ok(cmd::RequestExtension(id, 8), Monday9() + 10 * kMinute);
  Ok(cmd::ApproveExtension(id, 3), Monday9() + 20 * kMinute);
  EXPECT_EQ(Get(id).handle_deadline_ms(), At("2026-11-02T14:00:00+08:00"));  // through lunch
  EXPECT_EQ(Get(id).extension_hours(), 3);
}

TEST_F(CaseMachineTest, DeniedExtensionLeavesTheDeadline) {
  uint64_t id = Accepted(kDrainClog, kGridA1);
  const Millis before = Get(id).handle_deadline_ms();
  Ok(cmd::RequestExtension(id, 4), Monday9() + kHour);
  Ok(cmd::DenyExtension(id), Monday9() + 2 * kHour);
  EXPECT_EQ(Get(id).handle_deadline_ms(), before);
  EXPECT_EQ(Get(id).pending_extension_hours(), 0);
  EXPECT_EQ(Get(id).extension_count(), 0);
  EXPECT_EQ(Get(id).history(Get(id).history_size() - 1).type(), v1::EV_EXTENSION_DENIED);
  Effects again = Run(cmd::DenyExtension(id), Monday9() + 3 * kHour);
  EXPECT_EQ(again.result.code(), v1::FAILED_PRECONDITION);
}

TEST_F(CaseMachineTest, ResumeContinuesTheHandlingClockWhereItStopped) {
  uint64_t id = Accepted(kDrainClog, kGridA1);  // accept Monday 10:00, handle Monday 14:30
  Ok(cmd::Suspend(id), Monday9() + 30 * kMinute);
  EXPECT_EQ(Get(id).state(), v1::SUSPENDED);
  EXPECT_EQ(Get(id).state_before_suspend(), v1::ACCEPTED);
  EXPECT_EQ(Get(id).suspended_at_ms(), Monday9() + 30 * kMinute);

  Ok(cmd::Resume(id), At("2026-11-04T09:30:00+08:00"));  // 48 h later
  EXPECT_EQ(Get(id).state(), v1::ACCEPTED);
  EXPECT_EQ(Get(id).suspended_total_ms(), 48 * kHour);
  EXPECT_EQ(Get(id).suspended_at_ms(), 0);
  // The accept stage ended at acceptance: its deadline is history and does not move.
  EXPECT_EQ(Get(id).accept_deadline_ms(), At("2026-11-02T10:00:00+08:00"));
  // Suspended at 09:30 with 3.5 working hours left (09:30–12:00, 13:30–14:30); resumed
  // Wednesday 09:30, the same 3.5 working hours end at 14:30.
  EXPECT_EQ(Get(id).handle_deadline_ms(), At("2026-11-04T14:30:00+08:00"));

  ExpectIllegal(Run(cmd::Resume(id), At("2026-11-04T10:00:00+08:00")), id, "accepted",
                "resume needs it suspended");
}

TEST_F(CaseMachineTest, ResolveNeedsAcceptanceAndEvidence) {
  uint64_t id = Dispatched(kDrainClog, kGridA1);
  ExpectIllegal(
      Run(cmd::Resolve(id), Monday9()), id, "dispatched",
      "resolve needs it accepted: the department must accept (签收) the work order first");
  Ok(cmd::Accept(id), Monday9());
  v1::Command no_evidence = cmd::Resolve(id);
  no_evidence.mutable_resolve()->clear_evidence();
  Effects bad = Run(no_evidence, Monday9());
  EXPECT_EQ(bad.result.code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(bad.result.field(), "resolve.evidence");

  Ok(cmd::Resolve(id), At("2026-11-02T11:00:00+08:00"));
  const v1::Case& c = Get(id);
  EXPECT_EQ(c.state(), v1::RESOLVED);
  EXPECT_EQ(c.resolved_at_ms(), At("2026-11-02T11:00:00+08:00"));
  // 2 working hours from 11:00: 11:00–12:00, then 13:30–14:30.
  EXPECT_EQ(c.verify_deadline_ms(), At("2026-11-02T14:30:00+08:00"));
  const v1::CaseEvent& e = c.history(c.history_size() - 1);
  EXPECT_EQ(e.type(), v1::EV_RESOLVED);
  EXPECT_THAT(e.evidence(), ElementsAre("photo-1"));
  EXPECT_EQ(e.reason(), "fixed");
}

TEST_F(CaseMachineTest, FailedVerificationSendsReworkToTheSameDepartment) {
  uint64_t id = Accepted(kWellCover, kGridA1);  // → water, urgent: accept 09:30, handle 11:00
  Ok(cmd::Resolve(id), At("2026-11-02T10:00:00+08:00"));
  EXPECT_EQ(Get(id).verify_deadline_ms(), At("2026-11-02T12:00:00+08:00"));  // 2 working h
  Effects no_reason = Run(cmd::Verify(id, false), At("2026-11-02T10:30:00+08:00"));
  EXPECT_EQ(no_reason.result.code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(no_reason.result.field(), "verify.reason");

  Effects fx = Ok(cmd::Verify(id, false, "cover still loose"), At("2026-11-02T10:30:00+08:00"));
  const v1::Case& c = Get(id);
  EXPECT_EQ(c.state(), v1::DISPATCHED);
  EXPECT_EQ(c.rework_count(), 1);
  EXPECT_EQ(c.department(), "water");
  EXPECT_EQ(c.work_order_id(), "1-2");
  EXPECT_EQ(c.resolved_at_ms(), 0);
  EXPECT_EQ(c.accept_deadline_ms(), At("2026-11-02T11:00:00+08:00"));  // 0.5 urgent h
  EXPECT_EQ(c.handle_deadline_ms(), At("2026-11-02T11:30:00+08:00"));  // rework: 1 urgent h
  EXPECT_EQ(fx.result.work_order_id(), "1-2");
  EXPECT_EQ(fx.result.department(), "water");
  ASSERT_EQ(fx.work_orders.size(), 1u);
  EXPECT_EQ(fx.work_orders[0].reason(), "rework");
  EXPECT_EQ(fx.work_orders[0].rework_count(), 1);
  EXPECT_EQ(fx.work_orders[0].handle_deadline_ms(), c.handle_deadline_ms());
  EXPECT_EQ(c.history(c.history_size() - 1).reason(), "cover still loose");
}

// Regression: LimitsFor() used mutable_rework() while merging a condition's stages, which
// created an empty rework limit, so rework of a category with conditions fell back to 24 h.
TEST_F(CaseMachineTest, ReworkOfACategoryWithConditionsUsesItsHandleLimit) {
  uint64_t id = Accepted(kRoadDamage, kGridA1);  // no condition: category limits, 3 working days
  Ok(cmd::Resolve(id), At("2026-11-02T10:00:00+08:00"));
  Ok(cmd::Verify(id, false, "still broken"), At("2026-11-02T10:30:00+08:00"));
  // 3 working days from Monday: to the close of Thursday.
  EXPECT_EQ(Get(id).handle_deadline_ms(), At("2026-11-05T17:30:00+08:00"));
}

TEST_F(CaseMachineTest, PassedVerificationThenCloseOnTime) {
  uint64_t id = Accepted(kDrainClog, kGridA1);            // handle Monday 14:30
  Ok(cmd::Resolve(id), At("2026-11-02T14:30:00+08:00"));  // exactly at the deadline
  ExpectIllegal(Run(cmd::Close(id), At("2026-11-02T15:00:00+08:00")), id, "resolved",
                "close (结案) needs it verified");
  Ok(cmd::Verify(id, true), At("2026-11-02T15:00:00+08:00"));
  EXPECT_EQ(Get(id).state(), v1::VERIFIED);
  Ok(cmd::Close(id), At("2026-11-02T15:10:00+08:00"));
  EXPECT_EQ(Get(id).state(), v1::CLOSED);
  EXPECT_EQ(Get(id).closed_at_ms(), At("2026-11-02T15:10:00+08:00"));
  EXPECT_TRUE(Get(id).closed_on_time());
}

TEST_F(CaseMachineTest, CaseResolvedAfterTheDeadlineClosesLate) {
  uint64_t id = Accepted(kDrainClog, kGridA1);  // handle Monday 14:30
  Ok(cmd::Resolve(id), At("2026-11-02T14:30:01+08:00"));
  Ok(cmd::Verify(id, true), At("2026-11-02T15:00:00+08:00"));
  Ok(cmd::Close(id), At("2026-11-02T15:10:00+08:00"));
  EXPECT_EQ(Get(id).state(), v1::CLOSED);
  EXPECT_FALSE(Get(id).closed_on_time());
}

TEST_F(CaseMachineTest, ReopenSendsANewWorkOrderToTheSameDepartment) {
  uint64_t id = Accepted(kWellCover, kGridA1);
  Ok(cmd::Resolve(id), Monday9() + kHour);
  Ok(cmd::Verify(id, true), Monday9() + 2 * kHour);
  Ok(cmd::Close(id), Monday9() + 3 * kHour);
  ASSERT_TRUE(Get(id).closed_on_time());
  const Millis tuesday9 = At("2026-11-03T09:00:00+08:00");
  Effects fx = Ok(cmd::Reopen(id), tuesday9);
  const v1::Case& c = Get(id);
  EXPECT_EQ(c.state(), v1::DISPATCHED);
  EXPECT_EQ(c.reopen_count(), 1);
  EXPECT_EQ(c.closed_at_ms(), 0);
  EXPECT_FALSE(c.closed_on_time());
  EXPECT_EQ(c.work_order_id(), "1-2");
  EXPECT_EQ(c.accept_deadline_ms(), tuesday9 + 30 * kMinute);
  EXPECT_EQ(c.handle_deadline_ms(), tuesday9 + 2 * kHour);
  ASSERT_EQ(fx.work_orders.size(), 1u);
  EXPECT_EQ(fx.work_orders[0].id(), "1-2");
  EXPECT_EQ(fx.work_orders[0].department(), "water");
  EXPECT_EQ(fx.work_orders[0].reason(), "reopen");
  EXPECT_EQ(fx.work_orders[0].issued_at_ms(), tuesday9);
}

TEST_F(CaseMachineTest, MergeMovesTheReportsToTheTarget) {
  uint64_t target = Reported(kDrainClog, kGridA1);
  uint64_t dup = Reported(kDrainClog, kGridA3);  // another grid: not merged at intake
  ASSERT_NE(target, dup);
  Effects self = Run(cmd::Merge(dup, dup), Monday9());
  EXPECT_EQ(self.result.code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(self.result.field(), "merge.into_case_id");
  Effects missing = Run(cmd::Merge(dup, 99), Monday9());
  EXPECT_EQ(missing.result.code(), v1::NOT_FOUND);

  Effects fx = Ok(cmd::Merge(dup, target), Monday9() + kMinute);
  EXPECT_EQ(fx.result.case_id(), target);
  EXPECT_EQ(Get(dup).state(), v1::MERGED);
  EXPECT_EQ(Get(dup).merged_into(), target);
  EXPECT_EQ(Get(target).report_count(), 2);
  EXPECT_EQ(Get(target).reporters_size(), 2);
  const v1::Case merged_target = Get(target);  // a copy: the event below points into it
  const v1::CaseEvent& absorbed = merged_target.history(merged_target.history_size() - 1);
  EXPECT_EQ(absorbed.type(), v1::EV_ABSORBED);
  EXPECT_EQ(absorbed.other_case(), dup);
  EXPECT_EQ(absorbed.at_ms(), Monday9() + kMinute);
}

TEST_F(CaseMachineTest, MergeIntoAClosedCaseIsRefused) {
  uint64_t closed = Accepted(kWellCover, kGridA1);
  Ok(cmd::Resolve(closed), Monday9() + kHour);
  Ok(cmd::Verify(closed, true), Monday9() + kHour);
  Ok(cmd::Close(closed), Monday9() + kHour);
  uint64_t dup = Reported(kWellCover, kGridA3);
  ExpectIllegal(Run(cmd::Merge(dup, closed), Monday9() + 2 * kHour), closed, "closed",
                "merge into it needs it open");
  EXPECT_EQ(Get(dup).state(), v1::REPORTED);
}

TEST_F(CaseMachineTest, VoidAndNote) {
  uint64_t id = Dispatched();
  Ok(cmd::Note(id, "crew on site"), Monday9() + kMinute);
  EXPECT_EQ(Get(id).state(), v1::DISPATCHED);
  EXPECT_EQ(Get(id).history(Get(id).history_size() - 1).type(), v1::EV_NOTE);
  EXPECT_EQ(Get(id).history(Get(id).history_size() - 1).reason(), "crew on site");
  Ok(cmd::Void(id), Monday9() + 2 * kMinute);
  EXPECT_EQ(Get(id).state(), v1::VOIDED);
  ExpectIllegal(Run(cmd::Void(id), Monday9() + 3 * kMinute), id, "voided",
                "void (作废) needs it open");
}

TEST_F(CaseMachineTest, UnknownCaseIsNotFound) {
  Effects fx = Run(cmd::Accept(42), Monday9());
  EXPECT_EQ(fx.result.code(), v1::NOT_FOUND);
  EXPECT_EQ(fx.result.message(), "case 42 does not exist");
  EXPECT_EQ(fx.result.case_id(), 42u);
  EXPECT_FALSE(fx.Changed());
}

TEST_F(CaseMachineTest, ExtensionOfAFinishedCaseIsRefused) {
  uint64_t id = Accepted(kDrainClog, kGridA1);
  Ok(cmd::RequestExtension(id, 8), Monday9() + kHour);
  Ok(cmd::Void(id), Monday9() + 2 * kHour);
  const Millis handle = Get(id).handle_deadline_ms();
  ExpectIllegal(Run(cmd::ApproveExtension(id), Monday9() + 3 * kHour), id, "voided", "needs");
  ExpectIllegal(Run(cmd::DenyExtension(id), Monday9() + 3 * kHour), id, "voided", "needs");
  EXPECT_EQ(Get(id).handle_deadline_ms(), handle);
}

TEST_F(CaseMachineTest, NonStateRefusalsAlsoNameTheState) {
  uint64_t id = Dispatched();
  ExpectIllegal(Run(cmd::ApproveExtension(id), Monday9()), id, "dispatched", "request");
  ExpectIllegal(Run(cmd::Accept(id, "1-9"), Monday9()), id, "dispatched", "1-1");
  Ok(cmd::RequestExtension(id, 2), Monday9());
  ExpectIllegal(Run(cmd::RequestExtension(id, 2), Monday9()), id, "dispatched", "approve");
}

}  // namespace
}  // namespace casebus::core

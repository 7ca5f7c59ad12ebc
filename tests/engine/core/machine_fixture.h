#pragma once
// Shared by the engine/core tests: readable instants, command builders and a fixture owning a
// CaseMachine on SmallCity (tests/support/test_city.h). Builders leave request_id empty;
// MachineTest::Run fills in a fresh one ("r1", "r2", ...) unless the test set its own.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "engine/base/time_format.h"
#include "engine/core/case_machine.h"
#include "tests/support/test_city.h"

namespace casebus::core {

// "2026-11-02T09:00:00+08:00" → Unix ms; fails the test on a typo.
inline Millis At(std::string_view iso) {
  auto t = ParseIso(iso);
  EXPECT_TRUE(t.has_value()) << "bad instant in the test: " << iso;
  return t.value_or(0);
}

// Monday 2026-11-02 09:00 in SmallCity: a working day, inside the morning window.
inline Millis Monday9() { return At("2026-11-02T09:00:00+08:00"); }

// SmallCity grids (see test_city.h).
inline constexpr char kGridA1[] = "320501001001001";  // district 320501, street 320501001
inline constexpr char kGridA2[] = "320501001001002";  // holds asset 3205010101000001
inline constexpr char kGridA3[] = "320501001002001";
inline constexpr char kGridA4[] = "320501002001001";  // street 320501002
inline constexpr char kGridB1[] = "320502001001001";  // district 320502
inline constexpr char kGridB2[] = "320502001001002";
inline constexpr char kWellCover[] = "100101";
inline constexpr char kSewageCover[] = "100102";
inline constexpr char kDrainClog[] = "200101";
inline constexpr char kParking[] = "200102";
inline constexpr char kRoadDamage[] = "200103";
inline constexpr char kProperty[] = "300101";

namespace cmd {

inline v1::Command Base(std::string actor = "op-1") {
  v1::Command c;
  c.set_actor(std::move(actor));
  return c;
}
// A report without coordinates (deduplicated by grid only).
inline v1::Command Report(std::string_view category, std::string_view grid,
                          v1::Source source = v1::INSPECTOR) {
  v1::Command c = Base("inspector-7");
  auto* r = c.mutable_report();
  r->set_category(std::string(category));
  r->mutable_place()->set_grid(std::string(grid));
  r->set_source(source);
  r->set_description("reported in a test");
  r->mutable_reporter()->set_name("张三");
  return c;
}
inline v1::Command ReportAt(std::string_view category, std::string_view grid, double lat,
                            double lon) {
  v1::Command c = Report(category, grid);
  c.mutable_report()->mutable_place()->set_lat(lat);
  c.mutable_report()->mutable_place()->set_lon(lon);
  c.mutable_report()->mutable_place()->set_has_coordinates(true);
  return c;
}
inline v1::Command Register(uint64_t id, std::string condition = {}) {
  v1::Command c = Base();
  c.mutable_register_()->set_case_id(id);
  c.mutable_register_()->set_condition(std::move(condition));
  return c;
}
inline v1::Command Reject(uint64_t id, std::string reason = "not a city problem") {
  v1::Command c = Base();
  c.mutable_reject()->set_case_id(id);
  c.mutable_reject()->set_reason(std::move(reason));
  return c;
}
inline v1::Command Dispatch(uint64_t id, std::string department = {}) {
  v1::Command c = Base("dispatcher-1");
  c.mutable_dispatch()->set_case_id(id);
  c.mutable_dispatch()->set_department(std::move(department));
  return c;
}
inline v1::Command Accept(uint64_t id, std::string work_order_id = {}) {
  v1::Command c = Base("dept");
  c.mutable_accept()->set_case_id(id);
  c.mutable_accept()->set_work_order_id(std::move(work_order_id));
  return c;
}
inline v1::Command Return(uint64_t id, std::string reason = "not ours") {
  v1::Command c = Base("dept");
  c.mutable_return_()->set_case_id(id);
  c.mutable_return_()->set_reason(std::move(reason));
  return c;
}
inline v1::Command RequestExtension(uint64_t id, int hours) {
  v1::Command c = Base("dept");
  c.mutable_request_extension()->set_case_id(id);
  c.mutable_request_extension()->set_hours(hours);
  c.mutable_request_extension()->set_reason("parts on order");
  return c;
}
inline v1::Command ApproveExtension(uint64_t id, int hours = 0) {
  v1::Command c = Base();
  c.mutable_approve_extension()->set_case_id(id);
  c.mutable_approve_extension()->set_hours(hours);
  return c;
}
inline v1::Command DenyExtension(uint64_t id) {
  v1::Command c = Base();
  c.mutable_deny_extension()->set_case_id(id);
  c.mutable_deny_extension()->set_reason("no");
  return c;
}
inline v1::Command Suspend(uint64_t id) {
  v1::Command c = Base();
  c.mutable_suspend()->set_case_id(id);
  c.mutable_suspend()->set_reason("waits for the road works");
  return c;
}
inline v1::Command Resume(uint64_t id) {
  v1::Command c = Base();
  c.mutable_resume()->set_case_id(id);
  return c;
}
inline v1::Command Resolve(uint64_t id) {
  v1::Command c = Base("dept");
  c.mutable_resolve()->set_case_id(id);
  c.mutable_resolve()->add_evidence("photo-1");
  c.mutable_resolve()->set_note("fixed");
  return c;
}
inline v1::Command Verify(uint64_t id, bool passed, std::string reason = {}) {
  v1::Command c = Base("inspector-7");
  c.mutable_verify()->set_case_id(id);
  c.mutable_verify()->set_passed(passed);
  c.mutable_verify()->set_reason(std::move(reason));
  return c;
}
inline v1::Command Close(uint64_t id) {
  v1::Command c = Base();
  c.mutable_close()->set_case_id(id);
  return c;
}
inline v1::Command Reopen(uint64_t id) {
  v1::Command c = Base();
  c.mutable_reopen()->set_case_id(id);
  c.mutable_reopen()->set_reason("came back");
  return c;
}
inline v1::Command Merge(uint64_t id, uint64_t into) {
  v1::Command c = Base();
  c.mutable_merge()->set_case_id(id);
  c.mutable_merge()->set_into_case_id(into);
  return c;
}
inline v1::Command Void(uint64_t id) {
  v1::Command c = Base();
  c.mutable_void_()->set_case_id(id);
  c.mutable_void_()->set_reason("entered twice");
  return c;
}
inline v1::Command SupervisionReply(uint64_t id, std::string actor,
                                    std::string text = "crew sent, done by 16:00") {
  v1::Command c = Base(std::move(actor));
  c.mutable_supervision_reply()->set_case_id(id);
  c.mutable_supervision_reply()->set_text(std::move(text));
  return c;
}
inline v1::Command Note(uint64_t id, std::string text = "on the way") {
  v1::Command c = Base("dept");
  c.mutable_note()->set_case_id(id);
  c.mutable_note()->set_text(std::move(text));
  return c;
}

}  // namespace cmd

class MachineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = CaseMachine::Create(casebus::testing::SmallCity());
    ASSERT_TRUE(m.has_value()) << m.error().message();
    machine_ = std::move(*m);
  }

  // Executes with a fresh request id unless the command has one.
  Effects Run(v1::Command c, Millis now) {
    if (c.request_id().empty()) c.set_request_id("r" + std::to_string(++requests_));
    return machine_->Execute(c, now);
  }
  // Executes and expects success.
  Effects Ok(v1::Command c, Millis now) {
    Effects fx = Run(std::move(c), now);
    EXPECT_EQ(fx.result.code(), v1::OK) << fx.result.message();
    return fx;
  }
  // A snapshot of the case with its history (taken now: later commands do not change it).
  v1::Case Get(uint64_t id) {
    std::optional<v1::Case> c = machine_->CaseWithHistory(id);
    EXPECT_TRUE(c.has_value()) << "no case " << id;
    return c ? std::move(*c) : v1::Case();
  }

  // Lifecycle shortcuts: report, register and dispatch (by the router) at `now`; accept a minute
  // later. Defaults: a drain clog in grid A1, which routes to drainage.
  uint64_t Reported(std::string_view category = kDrainClog, std::string_view grid = kGridA1,
                    Millis now = Monday9()) {
    return Ok(cmd::Report(category, grid), now).result.case_id();
  }
  uint64_t Dispatched(std::string_view category = kDrainClog, std::string_view grid = kGridA1,
                      Millis now = Monday9()) {
    uint64_t id = Reported(category, grid, now);
    Ok(cmd::Register(id), now);
    Ok(cmd::Dispatch(id), now);
    return id;
  }
  uint64_t Accepted(std::string_view category = kDrainClog, std::string_view grid = kGridA1,
                    Millis now = Monday9()) {
    uint64_t id = Dispatched(category, grid, now);
    Ok(cmd::Accept(id), now + kMinute);
    return id;
  }

  std::unique_ptr<CaseMachine> machine_;
  int requests_ = 0;
};

// A refusal of an illegal transition: FAILED_PRECONDITION, naming the case, its state and what
// the command needs; nothing changed.
inline void ExpectIllegal(const Effects& fx, uint64_t id, std::string_view state,
                          std::string_view needs) {
  EXPECT_EQ(fx.result.code(), v1::FAILED_PRECONDITION) << fx.result.message();
  EXPECT_THAT(fx.result.message(),
              ::testing::HasSubstr("case " + std::to_string(id) + " is " + std::string(state)));
  EXPECT_THAT(fx.result.message(), ::testing::HasSubstr(std::string(needs)));
  EXPECT_FALSE(fx.Changed());
  EXPECT_TRUE(fx.work_orders.empty());
}

}  // namespace casebus::core

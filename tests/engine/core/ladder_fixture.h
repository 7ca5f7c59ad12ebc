#pragma once
// Shared by the escalation tests: a MachineTest on SmallCity (default ladder, district centres
// command-320501 / command-320502, leadership `leadership`; tests/support/test_city.h) that
// keeps every journal record it sees, for replay, and fires the ladder at chosen instants.

#include <string>
#include <string_view>
#include <vector>

#include "tests/engine/core/machine_fixture.h"

namespace casebus::core {

// What a fired step must look like.
struct Step {
  v1::Stage stage;
  std::string_view id;
  std::string_view notify;
  v1::TrafficLight light;
  int level;
  bool supervision = false;
};

class LadderTest : public MachineTest {
 protected:
  // Executes, expects success and journals the record.
  Effects Do(v1::Command c, Millis now) {
    Effects fx = Ok(std::move(c), now);
    if (fx.Changed()) journal_.push_back(fx.record);
    return fx;
  }
  // Report, register and dispatch at `now`, journaled.
  uint64_t DispatchedAt(std::string_view category, std::string_view grid, Millis now) {
    const uint64_t id = Do(cmd::Report(category, grid), now).result.case_id();
    Do(cmd::Register(id), now);
    Do(cmd::Dispatch(id), now);
    return id;
  }

  // FireDue(now), journaling every record. Returns the ladder steps fired (EV_ESCALATED) only:
  // records of other timers (the handling deadline's own) are journaled, not returned.
  std::vector<Effects> Fire(Millis now) {
    std::vector<Effects> steps;
    for (Effects& fx : machine_->FireDue(now)) {
      EXPECT_EQ(fx.result.code(), v1::OK);
      EXPECT_EQ(fx.record.events_size(), 1);
      journal_.push_back(fx.record);
      if (fx.record.events_size() > 0 && fx.record.events(0).type() == v1::EV_ESCALATED)
        steps.push_back(std::move(fx));
    }
    return steps;
  }

  // Expects the step `want` of case `id` due exactly at `at`: nothing fires 1 ms before it, it
  // fires once at `at`, and firing again at `at` fires nothing.
  Effects FiresOnceAt(uint64_t id, Millis at, const Step& want) {
    SCOPED_TRACE("step " + std::string(want.id) + " due " + FormatIso(at, 480));
    EXPECT_TRUE(Fire(at - 1).empty()) << "fired 1 ms early";
    std::vector<Effects> fired = Fire(at);
    EXPECT_EQ(fired.size(), 1u);
    EXPECT_TRUE(Fire(at).empty()) << "fired twice";
    if (fired.empty()) return {};
    ExpectStep(fired[0], id, at, at, want);
    return std::move(fired[0]);
  }

  // `fx` is step `want` of case `id`, due at `due`, applied at `now`, and its notice.
  void ExpectStep(const Effects& fx, uint64_t id, Millis due, Millis now, const Step& want) {
    ASSERT_EQ(fx.record.events_size(), 1);
    const v1::CaseEvent& e = fx.record.events(0);
    EXPECT_EQ(e.type(), v1::EV_ESCALATED);
    EXPECT_EQ(e.case_id(), id);
    EXPECT_EQ(e.at_ms(), now);
    EXPECT_EQ(e.due_at_ms(), due) << FormatIso(e.due_at_ms(), 480);
    EXPECT_EQ(e.stage(), want.stage);
    EXPECT_EQ(e.step_id(), want.id);
    EXPECT_EQ(e.notify(), want.notify);
    EXPECT_EQ(e.light(), want.light);
    EXPECT_EQ(e.level(), want.level);
    EXPECT_EQ(e.supervision(), want.supervision);
    EXPECT_EQ(fx.record.at_ms(), now);
    EXPECT_EQ(fx.result.case_id(), id);
    ASSERT_EQ(fx.notices.size(), 1u);
    const v1::Notice& n = fx.notices[0];
    const v1::Case& c = Get(id);
    const std::string stage = want.stage == v1::ACCEPT   ? "accept"
                              : want.stage == v1::HANDLE ? "handle"
                                                         : "verify";
    EXPECT_EQ(n.id(), "n" + std::to_string(id) + "-" + stage + "-" + std::string(want.id) + "-" +
                          std::to_string(c.dispatch_count()));
    EXPECT_EQ(n.case_id(), id);
    EXPECT_EQ(n.department(), want.notify);
    EXPECT_EQ(n.responsible(), c.department());
    EXPECT_EQ(n.stage(), want.stage);
    EXPECT_EQ(n.step_id(), want.id);
    EXPECT_EQ(n.due_at_ms(), due);
    EXPECT_EQ(n.light(), want.light);
    EXPECT_EQ(n.supervision(), want.supervision);
    EXPECT_EQ(n.work_order_id(), c.work_order_id());
    EXPECT_EQ(n.category(), c.category());
  }

  std::vector<v1::JournalRecord> journal_;
};

}  // namespace casebus::core

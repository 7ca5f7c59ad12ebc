// Engine::Reconfigure: a reloaded city config replaces the running one between two batches
// when the engine can take it — new limits apply to what happens next, deadlines already set
// stay — and is refused, naming every reason and changing nothing, when it would strand what
// is running.

#include <gtest/gtest.h>

#include "adapters/register_all.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus::server {
namespace {

using namespace casebus::server::testing;

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    adapters::RegisterAllAdapters(registry_);
    EngineOptions options;
    options.data_dir = dir_.path();
    options.run_dispatcher = false;
    auto e = Engine::Open(SampleCity(), options, clock_, registry_);
    ASSERT_TRUE(e.has_value()) << e.error().ToString();
    engine_ = std::move(*e);
    engine_->Start();
  }
  void TearDown() override {
    if (engine_) engine_->Stop();
  }

  // A drain case in grid n, registered and dispatched now; its handle deadline.
  int64_t DispatchedDeadline(int n, uint64_t* id_out = nullptr) {
    const std::string s = std::to_string(n);
    v1::Reply r = engine_->Call(Req({Report("rep-" + s, Grid(n))}));
    EXPECT_EQ(r.results(0).code(), v1::OK) << r.results(0).message();
    const uint64_t id = r.results(0).case_id();
    r = engine_->Call(Req({Register("reg-" + s, id), Dispatch("dis-" + s, id)}));
    for (const auto& res : r.results()) EXPECT_EQ(res.code(), v1::OK) << res.message();
    if (id_out) *id_out = id;
    return engine_->Call(ShowReq(id)).query().found().handle_deadline_ms();
  }

  // The sample city with the drain category's handle limit doubled.
  static std::shared_ptr<v1::CityConfig> LongerDrainLimit() {
    auto c = std::make_shared<v1::CityConfig>(*SampleCity());
    for (auto& cat : *c->mutable_categories())
      if (cat.code() == kDrainClog)
        cat.mutable_limits()->mutable_handle()->set_value(cat.limits().handle().value() * 2);
    return c;
  }

  TempDir dir_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(ReloadTest, NewLimitsApplyFromNowAndSetDeadlinesStay) {
  uint64_t first = 0;
  const int64_t before = DispatchedDeadline(1, &first);
  ASSERT_GT(before, kStart);
  const auto next = LongerDrainLimit();
  ASSERT_TRUE(engine_->Reconfigure(next).ok());
  EXPECT_EQ(engine_->config().get(), next.get());
  const int64_t after = DispatchedDeadline(40);
  EXPECT_GT(after, before) << "the same category dispatched at the same instant gets the longer limit";
  EXPECT_EQ(engine_->Call(ShowReq(first)).query().found().handle_deadline_ms(), before);
}

TEST_F(ReloadTest, WhatWouldStrandTheRunningEngineIsRefusedWithEveryReason) {
  uint64_t open_case = 0;
  const int64_t deadline = DispatchedDeadline(2, &open_case);
  const auto in_force = engine_->config();
  struct Edit {
    std::string name;
    std::function<void(v1::CityConfig&)> edit;
    std::string want;  // in the refusal
  };
  const std::vector<Edit> edits = {
      {"time zone", [](v1::CityConfig& c) { c.mutable_calendar()->set_utc_offset_minutes(0); },
       "calendar.time_zone"},
      {"intake", [](v1::CityConfig& c) { c.mutable_intake()->set_max_frame_bytes(12345); }, "intake"},
      {"dedup", [](v1::CityConfig& c) { c.mutable_dedup()->set_radius_m(7); }, "dedup"},
      {"adapter",
       [](v1::CityConfig& c) {
         auto* a = c.mutable_departments(0)->mutable_adapter();
         a->mutable_spool()->set_directory("elsewhere");
       },
       ".adapter changed"},
      {"department gone", [](v1::CityConfig& c) { c.mutable_departments()->RemoveLast(); }, "is gone"},
      {"grid of an open case gone",
       [](v1::CityConfig& c) {
         auto* grids = c.mutable_grids();
         for (int i = 0; i < grids->size(); ++i)
           if (grids->Get(i).code() == Grid(2)) {
             grids->DeleteSubrange(i, 1);
             break;
           }
       },
       "open case(s) use it"},
  };
  for (const auto& e : edits) {
    auto next = std::make_shared<v1::CityConfig>(*SampleCity());
    e.edit(*next);
    Status st = engine_->Reconfigure(next);
    ASSERT_FALSE(st.ok()) << e.name;
    EXPECT_NE(st.message().find(e.want), std::string::npos) << e.name << ": " << st.message();
    EXPECT_EQ(engine_->config().get(), in_force.get()) << e.name << ": the old config must stay";
  }
  // Two faults at once: both named.
  auto both = std::make_shared<v1::CityConfig>(*SampleCity());
  both->mutable_intake()->set_max_frame_bytes(999);
  both->mutable_dedup()->set_window_hours(3);
  Status st = engine_->Reconfigure(both);
  EXPECT_NE(st.message().find("intake"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("dedup"), std::string::npos) << st.message();
  // Still the old rules: a new case gets the old limit.
  EXPECT_EQ(DispatchedDeadline(3) - deadline, 0) << "same category, same instant, same limit";
}

TEST_F(ReloadTest, AStoppedEngineTakesNoConfig) {
  engine_->Stop();
  EXPECT_FALSE(engine_->Reconfigure(LongerDrainLimit()).ok());
}

}  // namespace
}  // namespace casebus::server

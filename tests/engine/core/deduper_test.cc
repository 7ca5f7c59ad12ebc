// Deduper: a report joins an open case of the same category within the radius (or, without
// coordinates, in the same grid) reported within the window. Default policy: 50 m, 24 h.

#include "engine/core/deduper.h"

#include <cmath>
#include <map>
#include <string_view>
#include <vector>

#include "tests/engine/core/machine_fixture.h"

namespace casebus::core {
namespace {

constexpr double kLat = 31.3000, kLon = 120.6000;  // SmallCity grid A1
constexpr double kMetresPerDegree = 6371008.8 * M_PI / 180.0;

// A point `metres` from (kLat, kLon) in direction `bearing_deg` (0 = north, 90 = east).
std::pair<double, double> Offset(double metres, double bearing_deg) {
  const double b = bearing_deg * M_PI / 180.0;
  return {kLat + metres * std::cos(b) / kMetresPerDegree,
          kLon + metres * std::sin(b) / (kMetresPerDegree * std::cos(kLat * M_PI / 180.0))};
}

class DeduperTest : public ::testing::Test {
 protected:
  DeduperTest() : deduper_(Policy(), kLat) {}
  static v1::DedupPolicy Policy() {
    v1::DedupPolicy p;
    p.set_radius_m(50);
    p.set_window_hours(24);
    return p;
  }
  // Adds an open case; lat/lon NaN means no coordinates.
  uint64_t Add(std::string_view category, std::string_view grid, double lat, double lon,
               Millis reported_at = Monday9()) {
    v1::Case c;
    c.set_id(cases_.size() + 1);
    c.set_category(std::string(category));
    c.set_state(v1::REPORTED);
    c.set_reported_at_ms(reported_at);
    c.mutable_place()->set_grid(std::string(grid));
    if (!std::isnan(lat)) {
      c.mutable_place()->set_lat(lat);
      c.mutable_place()->set_lon(lon);
      c.mutable_place()->set_has_coordinates(true);
    }
    cases_[c.id()] = c;
    deduper_.Add(c, reported_at, [this](uint64_t id) -> const v1::Case* {
      auto it = cases_.find(id);
      return it == cases_.end() ? nullptr : &it->second;
    });
    return c.id();
  }
  uint64_t Find(std::string_view category, std::string_view grid, double lat, double lon,
                Millis now = Monday9() + kHour) {
    v1::Case report;
    report.set_category(std::string(category));
    report.mutable_place()->set_grid(std::string(grid));
    if (!std::isnan(lat)) {
      report.mutable_place()->set_lat(lat);
      report.mutable_place()->set_lon(lon);
      report.mutable_place()->set_has_coordinates(true);
    }
    return deduper_.FindDuplicate(report, now, [this](uint64_t id) -> const v1::Case* {
      auto it = cases_.find(id);
      return it == cases_.end() ? nullptr : &it->second;
    });
  }

  Deduper deduper_;
  std::map<uint64_t, v1::Case> cases_;
};

TEST_F(DeduperTest, RadiusIsInclusiveUpToFiftyMetresInEveryDirection) {
  const uint64_t id = Add(kDrainClog, kGridA1, kLat, kLon);
  for (double bearing = 0; bearing < 360; bearing += 22.5) {
    SCOPED_TRACE("bearing " + std::to_string(bearing));
    auto [lat49, lon49] = Offset(49, bearing);
    auto [lat51, lon51] = Offset(51, bearing);
    ASSERT_NEAR(DistanceMetres(kLat, kLon, lat49, lon49), 49.0, 0.01);
    ASSERT_NEAR(DistanceMetres(kLat, kLon, lat51, lon51), 51.0, 0.01);
    EXPECT_EQ(Find(kDrainClog, kGridA1, lat49, lon49), id);
    EXPECT_EQ(Find(kDrainClog, kGridA1, lat51, lon51), 0u);
  }
}

TEST_F(DeduperTest, DistanceAlongAMeridianIsExact) {
  // One degree of latitude is R·π/180 metres on the spherical Earth.
  EXPECT_NEAR(DistanceMetres(31, 120, 32, 120), kMetresPerDegree, 1e-6);
  EXPECT_DOUBLE_EQ(DistanceMetres(kLat, kLon, kLat, kLon), 0.0);
  // Symmetric.
  EXPECT_DOUBLE_EQ(DistanceMetres(31.3, 120.6, 31.3009, 120.60105),
                   DistanceMetres(31.3009, 120.60105, 31.3, 120.6));
}

TEST_F(DeduperTest, WindowEndsExactlyTwentyFourHoursAfterTheReport) {
  const uint64_t id = Add(kDrainClog, kGridA1, kLat, kLon, Monday9());
  EXPECT_EQ(Find(kDrainClog, kGridA1, kLat, kLon, Monday9() + 24 * kHour), id);
  EXPECT_EQ(Find(kDrainClog, kGridA1, kLat, kLon, Monday9() + 24 * kHour + 1), 0u);
}

TEST_F(DeduperTest, WindowAlsoBoundsGridMatches) {
  const uint64_t id = Add(kDrainClog, kGridA1, NAN, NAN, Monday9());
  EXPECT_EQ(Find(kDrainClog, kGridA1, NAN, NAN, Monday9() + 24 * kHour), id);
  EXPECT_EQ(Find(kDrainClog, kGridA1, NAN, NAN, Monday9() + 24 * kHour + 1), 0u);
}

TEST_F(DeduperTest, WithoutCoordinatesTheGridDecides) {
  const uint64_t located = Add(kDrainClog, kGridA1, kLat, kLon);
  EXPECT_EQ(Find(kDrainClog, kGridA1, NAN, NAN), located);  // every case is indexed by grid
  EXPECT_EQ(Find(kDrainClog, kGridA2, NAN, NAN), 0u);
  EXPECT_EQ(Find(kParking, kGridA1, NAN, NAN), 0u);
}

TEST_F(DeduperTest, OtherCategoryNeverMerges) {
  Add(kDrainClog, kGridA1, kLat, kLon);
  EXPECT_EQ(Find(kParking, kGridA1, kLat, kLon), 0u);
}

TEST_F(DeduperTest, FinishedCasesDoNotAttractReports) {
  const uint64_t closed = Add(kDrainClog, kGridA1, kLat, kLon);
  const uint64_t voided = Add(kParking, kGridA1, kLat, kLon);
  const uint64_t merged = Add(kWellCover, kGridA1, NAN, NAN);
  cases_[closed].set_state(v1::CLOSED);
  cases_[voided].set_state(v1::VOIDED);
  cases_[merged].set_state(v1::MERGED);
  EXPECT_EQ(Find(kDrainClog, kGridA1, kLat, kLon), 0u);
  EXPECT_EQ(Find(kParking, kGridA1, kLat, kLon), 0u);
  EXPECT_EQ(Find(kWellCover, kGridA1, NAN, NAN), 0u);
}

TEST_F(DeduperTest, NearestCandidateWinsAndTheEarliestOnTies) {
  auto [far_lat, far_lon] = Offset(30, 90);
  auto [near_lat, near_lon] = Offset(10, 270);
  const uint64_t far = Add(kDrainClog, kGridA1, far_lat, far_lon);
  const uint64_t near = Add(kDrainClog, kGridA1, near_lat, near_lon);
  ASSERT_LT(far, near);
  EXPECT_EQ(Find(kDrainClog, kGridA1, kLat, kLon), near);
  auto [at_far_lat, at_far_lon] = Offset(25, 90);  // 5 m from far, 35 m from near
  EXPECT_EQ(Find(kDrainClog, kGridA1, at_far_lat, at_far_lon), far);

  const uint64_t first = Add(kParking, kGridB1, NAN, NAN);
  Add(kParking, kGridB1, NAN, NAN);
  EXPECT_EQ(Find(kParking, kGridB1, NAN, NAN), first);
}

TEST_F(DeduperTest, ZeroWindowTurnsDeduplicationOff) {
  v1::DedupPolicy off = Policy();
  off.set_window_hours(0);
  deduper_ = Deduper(off, kLat);
  Add(kDrainClog, kGridA1, kLat, kLon);
  EXPECT_EQ(Find(kDrainClog, kGridA1, kLat, kLon), 0u);
  EXPECT_EQ(Find(kDrainClog, kGridA1, NAN, NAN), 0u);
}

using DuplicateReportTest = MachineTest;

TEST_F(DuplicateReportTest, DuplicateReportJoinsTheOpenCase) {
  const uint64_t id =
      Ok(cmd::ReportAt(kDrainClog, kGridA1, kLat, kLon), Monday9()).result.case_id();
  Ok(cmd::Register(id), Monday9());
  Ok(cmd::Dispatch(id), Monday9());  // dispatched cases are open too

  auto [lat, lon] = Offset(40, 45);
  v1::Command again = cmd::ReportAt(kDrainClog, kGridA3, lat, lon);
  again.set_request_id("second-report");
  again.mutable_report()->mutable_reporter()->set_name("李四");
  again.mutable_report()->set_source(v1::HOTLINE);
  Effects fx = Ok(again, Monday9() + 2 * kHour);
  EXPECT_TRUE(fx.result.merged());
  EXPECT_EQ(fx.result.case_id(), id);
  EXPECT_TRUE(fx.record.merged());
  ASSERT_EQ(fx.record.events_size(), 1);
  EXPECT_EQ(fx.record.events(0).type(), v1::EV_ABSORBED);
  EXPECT_EQ(fx.record.events(0).other_case(), 0u);  // a report, not a case
  EXPECT_TRUE(fx.work_orders.empty());
  EXPECT_EQ(machine_->case_count(), 1u);
  EXPECT_EQ(machine_->next_case_id(), 2u);

  const v1::Case& c = Get(id);
  EXPECT_EQ(c.state(), v1::DISPATCHED);
  EXPECT_EQ(c.report_count(), 2);
  ASSERT_EQ(c.reporters_size(), 2);
  EXPECT_EQ(c.reporters(1).name(), "李四");
  EXPECT_EQ(c.reporters(1).source(), v1::HOTLINE);
  EXPECT_EQ(c.reporters(1).at_ms(), Monday9() + 2 * kHour);

  Effects retry = Run(again, Monday9() + 3 * kHour);
  EXPECT_TRUE(retry.result.duplicate());
  EXPECT_TRUE(retry.result.merged());
  EXPECT_EQ(retry.result.case_id(), id);
  EXPECT_EQ(Get(id).report_count(), 2);
}

TEST_F(DuplicateReportTest, ReportNearAFinishedCaseOpensANewOne) {
  const uint64_t first = Reported(kDrainClog, kGridA1);
  Ok(cmd::Register(first), Monday9());
  Ok(cmd::Void(first), Monday9());
  Effects fx = Ok(cmd::Report(kDrainClog, kGridA1), Monday9() + kHour);
  EXPECT_FALSE(fx.result.merged());
  EXPECT_EQ(fx.result.case_id(), first + 1);
  EXPECT_EQ(Get(first).report_count(), 1);
}

TEST_F(DuplicateReportTest, ReportBeyondTheRadiusOpensANewOne) {
  const uint64_t first =
      Ok(cmd::ReportAt(kDrainClog, kGridA1, kLat, kLon), Monday9()).result.case_id();
  auto [lat, lon] = Offset(51, 0);
  Effects fx = Ok(cmd::ReportAt(kDrainClog, kGridA1, lat, lon), Monday9() + kMinute);
  EXPECT_FALSE(fx.result.merged());
  EXPECT_NE(fx.result.case_id(), first);
}

TEST_F(DuplicateReportTest, ReopenedCaseAttractsDuplicatesAgain) {
  std::vector<v1::JournalRecord> journal;
  auto step = [&](v1::Command c, std::string_view at) {
    Effects fx = Ok(std::move(c), At(at));
    journal.push_back(fx.record);
    return fx.result.case_id();
  };
  const uint64_t a = step(cmd::Report(kDrainClog, kGridA1), "2026-11-02T09:00:00+08:00");
  step(cmd::Register(a), "2026-11-02T09:00:00+08:00");
  step(cmd::Dispatch(a), "2026-11-02T09:00:00+08:00");
  step(cmd::Accept(a), "2026-11-02T09:05:00+08:00");
  step(cmd::Resolve(a), "2026-11-02T09:30:00+08:00");
  step(cmd::Verify(a, true), "2026-11-02T09:40:00+08:00");
  step(cmd::Close(a), "2026-11-02T09:50:00+08:00");
  // A report while a is closed opens b (and the lookup drops a from the index); b is voided.
  const uint64_t b = step(cmd::Report(kDrainClog, kGridA1), "2026-11-02T10:30:00+08:00");
  ASSERT_NE(a, b);
  step(cmd::Register(b), "2026-11-02T10:31:00+08:00");
  step(cmd::Void(b), "2026-11-02T10:32:00+08:00");
  step(cmd::Reopen(a), "2026-11-02T11:00:00+08:00");
  ASSERT_EQ(Get(a).state(), v1::DISPATCHED);

  auto replica = CaseMachine::Create(casebus::testing::SmallCity());
  ASSERT_TRUE(replica.has_value());
  for (const auto& r : journal) (*replica)->Replay(r);

  v1::Command late = cmd::Report(kDrainClog, kGridA1);
  late.set_request_id("late");
  Effects original = machine_->Execute(late, At("2026-11-02T11:30:00+08:00"));
  Effects replayed = (*replica)->Execute(late, At("2026-11-02T11:30:00+08:00"));
  EXPECT_TRUE(original.result.merged());
  EXPECT_EQ(original.result.case_id(), a);
  EXPECT_EQ(replayed.result.case_id(), original.result.case_id());
}

// Adding prunes a bucket each time it doubles (by_grid_ buckets used to grow without bound
// under reports with coordinates): voided cases drop out, and the open case that can still
// match must survive every prune, by cell and by grid.
TEST_F(DeduperTest, PruningOnAddKeepsWhatCanStillMatch) {
  for (int i = 0; i < 64; ++i) {
    const uint64_t id = Add(kDrainClog, kGridA1, 31.3, 120.6);
    cases_[id].set_state(v1::VOIDED);
  }
  const uint64_t open = Add(kDrainClog, kGridA1, 31.3, 120.6);
  EXPECT_EQ(Find(kDrainClog, kGridA1, 31.3, 120.6), open);
  EXPECT_EQ(Find(kDrainClog, kGridA1, std::nan(""), 0), open);
}

}  // namespace
}  // namespace casebus::core

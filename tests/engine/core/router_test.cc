// Router: the responsibility matrix. Asset maintainer first, then the most specific rule by
// (category prefix length, condition, place prefix length, source, urgency).

#include "engine/core/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "engine/core/case_machine.h"
#include "tests/engine/core/machine_fixture.h"
#include "tests/support/test_city.h"

namespace casebus::core {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::Case MakeCase(std::string_view category, std::string_view grid,
                  v1::Source source = v1::INSPECTOR, v1::Urgency urgency = v1::NORMAL,
                  std::string_view condition = {}, std::string_view asset = {}) {
  v1::Case c;
  c.set_id(1);
  c.set_category(std::string(category));
  c.mutable_place()->set_grid(std::string(grid));
  c.set_source(source);
  c.set_urgency(urgency);
  c.set_condition(std::string(condition));
  c.set_asset_id(std::string(asset));
  return c;
}

v1::RouteRule Rule(std::string id, std::string category, std::string place, std::string department,
                   std::string condition = {}, v1::Source source = v1::SOURCE_UNSPECIFIED,
                   v1::Urgency urgency = v1::URGENCY_UNSPECIFIED) {
  v1::RouteRule r;
  r.set_id(std::move(id));
  r.set_category_prefix(std::move(category));
  r.set_place_prefix(std::move(place));
  r.set_department(std::move(department));
  r.set_condition(std::move(condition));
  r.set_source(source);
  r.set_urgency(urgency);
  return r;
}

// SmallCity's routes plus `extra`, minus the routes whose ids are in `drop`.
Router SmallCityRouter(std::initializer_list<v1::RouteRule> extra = {},
                       std::initializer_list<std::string_view> drop = {}) {
  v1::CityConfig city = *casebus::testing::SmallCity();
  auto* routes = city.mutable_routes();
  for (std::string_view id : drop) {
    for (int i = 0; i < routes->size(); ++i) {
      if (routes->Get(i).id() == id) routes->DeleteSubrange(i--, 1);
    }
  }
  for (const auto& r : extra) *city.add_routes() = r;
  auto router = Router::Compile(city);
  EXPECT_TRUE(router.has_value()) << router.error().message();
  return router ? std::move(*router) : *Router::Compile(v1::CityConfig());
}

// Department and the rule that decided, or the error message.
std::string Decide(const Router& router, const v1::Case& c, std::string_view exclude = {}) {
  auto d = router.Route(c, exclude);
  if (!d) return "error: " + d.error().message();
  return d->department() + " by " + (d->asset_id().empty() ? d->rule_id() : d->asset_id());
}

TEST(RouterTest, LongerCategoryPrefixWins) {
  Router r = SmallCityRouter(
      {Rule("r-facility-grid", "1001", kGridA1, "municipal")});  // class + grid: weaker
  EXPECT_EQ(Decide(r, MakeCase(kWellCover, kGridA1)), "water by r-cover");
  EXPECT_EQ(Decide(r, MakeCase(kSewageCover, kGridA1)), "municipal by r-facility-grid");
  EXPECT_EQ(Decide(r, MakeCase(kSewageCover, kGridB1)), "drainage by r-facilities");
  // A category rule beats the district catch-all.
  EXPECT_EQ(Decide(r, MakeCase(kProperty, kGridB1)), "housing by r-property");
}

TEST(RouterTest, ConditionBeatsPlace) {
  Router r = SmallCityRouter({Rule("r-road-a1", kRoadDamage, kGridA1, "command-320501")});
  v1::Case dig = MakeCase(kRoadDamage, kGridA1, v1::INSPECTOR, v1::NORMAL, "excavation");
  EXPECT_EQ(Decide(r, dig), "enforce by r-road-excavation");
  v1::Case cracks = MakeCase(kRoadDamage, kGridA1, v1::INSPECTOR, v1::NORMAL, "cracks");
  EXPECT_EQ(Decide(r, cracks), "command-320501 by r-road-a1");
  EXPECT_EQ(Decide(r, MakeCase(kRoadDamage, kGridA2)), "municipal by r-road");
}

TEST(RouterTest, LongerPlacePrefixWins) {
  // Grid A4 lies in every one of these places.
  const v1::RouteRule grid = Rule("r-drain-grid", kDrainClog, kGridA4, "enforce");
  const v1::RouteRule community = Rule("r-drain-community", kDrainClog, "320501002001", "water");
  EXPECT_EQ(Decide(SmallCityRouter({grid, community}), MakeCase(kDrainClog, kGridA4)),
            "enforce by r-drain-grid");
  EXPECT_EQ(Decide(SmallCityRouter({community}), MakeCase(kDrainClog, kGridA4)),
            "water by r-drain-community");
  EXPECT_EQ(Decide(SmallCityRouter(), MakeCase(kDrainClog, kGridA4)),
            "municipal by r-drain-320501002");
  EXPECT_EQ(Decide(SmallCityRouter(), MakeCase(kDrainClog, kGridA1)), "drainage by r-drain-320501");
  // No drain rule in district 320502: its catch-all.
  EXPECT_EQ(Decide(SmallCityRouter(), MakeCase(kDrainClog, kGridB1)),
            "command-320502 by r-default-320502");
}

TEST(RouterTest, SourceAndUrgencyRules) {
  Router r = SmallCityRouter({
      Rule("r-parking-320502", kParking, "320502", "command-320502"),
      Rule("r-cover-urgent", kWellCover, "", "municipal", "", v1::SOURCE_UNSPECIFIED, v1::URGENT),
      Rule("r-cover-app", kWellCover, "", "housing", "", v1::APP),
      Rule("r-sewage-normal", kSewageCover, "", "water", "", v1::SOURCE_UNSPECIFIED, v1::NORMAL),
  });
  EXPECT_EQ(Decide(r, MakeCase(kParking, kGridA1, v1::SENSOR)), "traffic by r-parking-sensor");
  EXPECT_EQ(Decide(r, MakeCase(kParking, kGridA1, v1::APP)), "enforce by r-parking");
  // Place outweighs source.
  EXPECT_EQ(Decide(r, MakeCase(kParking, kGridB1, v1::SENSOR)),
            "command-320502 by r-parking-320502");
  EXPECT_EQ(Decide(r, MakeCase(kWellCover, kGridA1, v1::INSPECTOR, v1::URGENT)),
            "municipal by r-cover-urgent");
  EXPECT_EQ(Decide(r, MakeCase(kWellCover, kGridA1, v1::INSPECTOR, v1::NORMAL)),
            "water by r-cover");
  // Source outweighs urgency.
  EXPECT_EQ(Decide(r, MakeCase(kWellCover, kGridA1, v1::APP, v1::URGENT)),
            "housing by r-cover-app");
  // An unspecified urgency counts as normal.
  EXPECT_EQ(Decide(r, MakeCase(kSewageCover, kGridA1, v1::INSPECTOR, v1::URGENCY_UNSPECIFIED)),
            "water by r-sewage-normal");
}

TEST(RouterTest, DecisionExplainsTheRule) {
  Router r = SmallCityRouter();
  auto d = r.Route(MakeCase(kParking, kGridA1, v1::SENSOR));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->rule_id(), "r-parking-sensor");
  EXPECT_EQ(d->asset_id(), "");
  EXPECT_EQ(d->explanation(),
            "rule r-parking-sensor: category 200102*, place *, source SENSOR → traffic");
  d = r.Route(MakeCase(kRoadDamage, kGridA1, v1::INSPECTOR, v1::NORMAL, "excavation"));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->explanation(),
            "rule r-road-excavation: category 200103*, condition excavation, place * → enforce");
  d = r.Route(MakeCase(kDrainClog, kGridA4));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->explanation(),
            "rule r-drain-320501002: category 200101*, place 320501002* → municipal");
  d = r.Route(MakeCase(kDrainClog, kGridB1));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->explanation(), "rule r-default-320502: category *, place 320502* → command-320502");
}

TEST(RouterTest, AssetMaintainerWinsOverAnyRule) {
  // Even a rule matching on every key loses to the asset registry.
  Router r = SmallCityRouter(
      {Rule("r-cover-a2", kWellCover, kGridA2, "enforce", "", v1::INSPECTOR, v1::NORMAL)});
  auto d =
      r.Route(MakeCase(kWellCover, kGridA2, v1::INSPECTOR, v1::NORMAL, "", "3205010101000001"));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->department(), "municipal");
  EXPECT_EQ(d->asset_id(), "3205010101000001");
  EXPECT_EQ(d->rule_id(), "");
  EXPECT_EQ(d->explanation(), "asset 3205010101000001 is maintained by municipal");
  // Where the case says it is does not matter: the asset decides.
  EXPECT_EQ(Decide(r, MakeCase(kWellCover, kGridB1, v1::APP, v1::URGENT, "", "3205010101000001")),
            "municipal by 3205010101000001");
}

TEST(RouterTest, AssetOfAnotherCategoryIsIgnored) {
  Router r = SmallCityRouter();
  // 3205020102000001 is a sewage cover (100102), the case a water-supply cover (100101).
  auto d =
      r.Route(MakeCase(kWellCover, kGridA1, v1::INSPECTOR, v1::NORMAL, "", "3205020102000001"));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->department(), "water");
  EXPECT_EQ(d->rule_id(), "r-cover");
  EXPECT_EQ(d->asset_id(), "");
  EXPECT_THAT(d->explanation(),
              StartsWith("asset 3205020102000001 is a 100102, not a 100101; rule r-cover:"));
}

TEST(RouterTest, UnknownAssetFallsBackToTheRules) {
  Router r = SmallCityRouter();
  auto d =
      r.Route(MakeCase(kWellCover, kGridA1, v1::INSPECTOR, v1::NORMAL, "", "3205019999999999"));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->department(), "water");
  EXPECT_EQ(d->rule_id(), "r-cover");
  EXPECT_THAT(d->explanation(),
              StartsWith("asset 3205019999999999 is not in the registry; rule r-cover:"));
}

TEST(RouterTest, ExcludedDepartmentIsSkipped) {
  Router r = SmallCityRouter();
  EXPECT_EQ(Decide(r, MakeCase(kDrainClog, kGridA1), "drainage"),
            "command-320501 by r-default-320501");
  EXPECT_EQ(Decide(r, MakeCase(kDrainClog, kGridA1), "housing"), "drainage by r-drain-320501");
  // An excluded maintainer hands the case to the rules.
  EXPECT_EQ(
      Decide(r, MakeCase(kWellCover, kGridA2, v1::INSPECTOR, v1::NORMAL, "", "3205010101000001"),
             "municipal"),
      "water by r-cover");
}

TEST(RouterTest, NoMatchingRuleIsAFailedPrecondition) {
  Router r = SmallCityRouter({}, {"r-default-320501", "r-default-320502"});
  auto d = r.Route(MakeCase(kDrainClog, kGridB1));
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(d.error().message(),
            "no route rule matches category 200101 at grid 320502001001001; "
            "name a department to dispatch to");
  d = r.Route(MakeCase(kDrainClog, kGridA1), "drainage");
  ASSERT_FALSE(d.has_value());
  EXPECT_THAT(d.error().message(), HasSubstr("other than the returning department drainage"));
}

TEST(RouterTest, DispatchWithoutARouteAsksForADepartment) {
  v1::CityConfig city = *casebus::testing::SmallCity();
  city.clear_routes();
  auto machine = CaseMachine::Create(std::make_shared<const v1::CityConfig>(city));
  ASSERT_TRUE(machine.has_value());
  v1::Command report = cmd::Report(kDrainClog, kGridA1);
  report.set_request_id("a");
  ASSERT_EQ((*machine)->Execute(report, Monday9()).result.code(), v1::OK);
  v1::Command reg = cmd::Register(1);
  reg.set_request_id("b");
  ASSERT_EQ((*machine)->Execute(reg, Monday9()).result.code(), v1::OK);
  v1::Command dispatch = cmd::Dispatch(1);
  dispatch.set_request_id("c");
  Effects fx = (*machine)->Execute(dispatch, Monday9());
  EXPECT_EQ(fx.result.code(), v1::FAILED_PRECONDITION);
  EXPECT_THAT(fx.result.message(), HasSubstr("name a department to dispatch to"));
  EXPECT_EQ((*machine)->Find(1)->state(), v1::REGISTERED);
}

// A city in code, for what the loader would refuse before the Router ever saw it.
v1::CityConfig TwoDepartmentCity(std::initializer_list<v1::RouteRule> routes) {
  v1::CityConfig city;
  for (const char* id : {"a", "b"}) city.add_departments()->set_id(id);
  for (const auto& r : routes) *city.add_routes() = r;
  return city;
}

TEST(RouterCompileTest, RefusesEquallySpecificRulesWithIdenticalKeys) {
  auto r = Router::Compile(
      TwoDepartmentCity({Rule("x", "1001", "320501", "a"), Rule("z", "1001", "320501", "b")}));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "routes x and z are equally specific and match the same cases");
  // Equal specificity with different keys is fine: they never match the same case.
  EXPECT_TRUE(Router::Compile(TwoDepartmentCity({Rule("x", "1001", "320501", "a"),
                                                 Rule("y", "1001", "320502", "b")}))
                  .has_value());
  // So is the same place with and without a source.
  EXPECT_TRUE(Router::Compile(TwoDepartmentCity({Rule("x", "1001", "320501", "a"),
                                                 Rule("y", "1001", "320501", "b", "", v1::APP)}))
                  .has_value());
}

TEST(RouterCompileTest, RefusesIdenticalRulesSeparatedByAnEquallySpecificOne) {
  auto r = Router::Compile(
      TwoDepartmentCity({Rule("x", "1001", "320501", "a"), Rule("y", "1001", "320502", "b"),
                         Rule("z", "1001", "320501", "b")}));
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("routes x and z are equally specific"));
}

TEST(RouterCompileTest, RefusesUnknownDepartments) {
  auto r = Router::Compile(TwoDepartmentCity({Rule("x", "1001", "", "ghost")}));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "route x names unknown department 'ghost'");
  v1::CityConfig city = TwoDepartmentCity({});
  v1::Asset* asset = city.add_assets();
  asset->set_id("3205010101000009");
  asset->set_maintainer("ghost");
  r = Router::Compile(city);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "asset 3205010101000009 names unknown maintainer 'ghost'");
}

TEST(RouterTest, SampleCityRoutesEveryCategoryEverywhere) {
  auto city = casebus::testing::SampleCity();
  auto router = Router::Compile(*city);
  ASSERT_TRUE(router.has_value()) << router.error().message();
  int routed = 0;
  for (const auto& category : city->categories()) {
    if (!category.has_limits() && category.conditions_size() == 0) continue;  // a class
    for (const auto& grid : city->grids()) {
      auto d = router->Route(MakeCase(category.code(), grid.code()));
      ASSERT_TRUE(d.has_value()) << d.error().message();
      ++routed;
    }
  }
  EXPECT_GT(routed, 1000);
  // The first asset of the sample city goes to its maintainer.
  const v1::Asset& asset = city->assets(0);
  auto d = router->Route(
      MakeCase(asset.category(), asset.grid(), v1::INSPECTOR, v1::NORMAL, "", asset.id()));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->department(), asset.maintainer());
  EXPECT_EQ(d->asset_id(), asset.id());
}

}  // namespace
}  // namespace casebus::core

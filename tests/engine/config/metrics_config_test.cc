// engine/config: the metrics policy (config.proto MetricsPolicy, IndexTerm). ApplyMetricsDefaults
// fills DOMAIN.md §4's denominators, minimum sample and Chengdu Jinniu index only where the city
// leaves them out; CheckMetrics refuses each mistake at its line and key path.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "engine/config/loader.h"

namespace casebus::config {
namespace {

namespace v1 = casebus::v1;

constexpr std::string_view kCity = R"(name: Scoreville
districts:
  - {code: "320508", name: Gusu}
streets:
  - {code: "320508001", name: Pingjiang}
communities:
  - {code: "320508001001", name: Lindun}
grids:
  - {code: "320508001001001", lat: 31.31, lon: 120.62}
departments:
  - {id: roads, adapter: {spool: {directory: spool/roads}}}
categories:
  - code: "0201"
    name: Illegal parking
    kind: event
    limits:
      handle: {value: 1, clock: working_hours}
routes:
  - {id: default, department: roads}
)";

// kCity with a metrics block appended.
std::string WithMetrics(std::string_view block) {
  return std::string(kCity) + "metrics:\n" + std::string(block);
}

// "city.yaml:LINE: " for the 1-based line of the first `marker`.
std::string At(std::string_view text, std::string_view marker) {
  size_t at = text.find(marker);
  EXPECT_NE(at, std::string_view::npos) << "marker not found: " << marker;
  if (at == std::string_view::npos) return "";
  return "city.yaml:" + std::to_string(1 + std::count(text.begin(), text.begin() + at, '\n')) +
         ": ";
}

std::string LoadError(const std::string& yaml) {
  auto loaded = LoadCityConfigText(yaml, "city.yaml");
  if (loaded) {
    ADD_FAILURE() << "loaded, but should not have:\n" << yaml;
    return {};
  }
  EXPECT_EQ(loaded.error().code(), StatusCode::kInvalidArgument);
  return loaded.error().message();
}

#define EXPECT_CONTAINS(haystack, needle)                                                     \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "want: " << (needle) << "\ngot:\n" \
                                                        << (haystack)

TEST(MetricsConfig, DefaultsAreDueCasesTenAndTheJinniuIndex) {
  auto loaded = LoadCityConfigText(kCity, "city.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message();
  const v1::MetricsPolicy& m = (*loaded)->metrics();
  EXPECT_EQ(m.closure_denominator(), v1::DUE_CASES);
  EXPECT_EQ(m.rework_denominator(), v1::DUE_CASES);
  EXPECT_EQ(m.min_sample(), 10u);
  ASSERT_EQ(m.index_size(), 5);
  const struct {
    v1::Rate rate;
    double weight;
    bool inverse;
  } want[] = {{v1::HANDLING_RATE, 30, false},
              {v1::ON_TIME_HANDLING_RATE, 20, false},
              {v1::REWORK_RATE, 20, true},
              {v1::OVERDUE_OPEN_RATE, 20, true},
              {v1::EXTENSION_RATE, 10, true}};
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE("index[" + std::to_string(i) + "]");
    EXPECT_EQ(m.index(i).rate(), want[i].rate);
    EXPECT_EQ(m.index(i).weight(), want[i].weight);
    EXPECT_EQ(m.index(i).inverse(), want[i].inverse);
  }
}

TEST(MetricsConfig, KeepsWhatTheCityGives) {
  const std::string yaml = WithMetrics(
      "  closure_denominator: registered_less_pending\n"
      "  rework_denominator: registered_cases\n"
      "  min_sample: 3\n");
  auto loaded = LoadCityConfigText(yaml, "city.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message();
  const v1::MetricsPolicy& m = (*loaded)->metrics();
  EXPECT_EQ(m.closure_denominator(), v1::REGISTERED_LESS_PENDING);
  EXPECT_EQ(m.rework_denominator(), v1::REGISTERED_CASES);
  EXPECT_EQ(m.min_sample(), 3u);
  EXPECT_EQ(m.index_size(), 5);  // no index given: the default one
}

TEST(MetricsConfig, ACitysOwnIndexReplacesTheDefault) {
  const std::string yaml = WithMetrics(
      "  index:\n"
      "    - {rate: on_time_closure_rate, weight: 50}\n"
      "    - {rate: closure_rate, weight: 30}\n"
      "    - {rate: rework_rate, weight: 10, inverse: true}\n");
  auto loaded = LoadCityConfigText(yaml, "city.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message();
  const v1::MetricsPolicy& m = (*loaded)->metrics();
  ASSERT_EQ(m.index_size(), 3);
  EXPECT_EQ(m.index(0).rate(), v1::ON_TIME_CLOSURE_RATE);
  EXPECT_EQ(m.index(0).weight(), 50);
  EXPECT_FALSE(m.index(0).inverse());
  EXPECT_EQ(m.index(1).rate(), v1::CLOSURE_RATE);
  EXPECT_EQ(m.index(1).weight(), 30);
  EXPECT_EQ(m.index(2).rate(), v1::REWORK_RATE);
  EXPECT_EQ(m.index(2).weight(), 10);
  EXPECT_TRUE(m.index(2).inverse());
  EXPECT_EQ(m.closure_denominator(), v1::DUE_CASES);  // the rest still defaulted
  EXPECT_EQ(m.min_sample(), 10u);
}

// One mistake in the metrics block: the message holds "city.yaml:LINE: " + expected, LINE being
// the line of `marker`.
struct Mistake {
  const char* name;
  const char* block;
  const char* marker;
  const char* expected;
};

class MetricsMistakeTest : public ::testing::TestWithParam<Mistake> {};

TEST_P(MetricsMistakeTest, IsReportedAtItsLineAndKey) {
  const Mistake& m = GetParam();
  const std::string yaml = WithMetrics(m.block);
  EXPECT_CONTAINS(LoadError(yaml), At(yaml, m.marker) + m.expected);
}

const Mistake kMistakes[] = {
    {"ClosureOverRegisteredCases", "  closure_denominator: registered_cases\n",
     "closure_denominator",
     "metrics.closure_denominator: must be due_cases or registered_less_pending"},
    {"ReworkOverRegisteredLessPending", "  rework_denominator: registered_less_pending\n",
     "rework_denominator", "metrics.rework_denominator: must be due_cases or registered_cases"},
    {"UnknownDenominator", "  closure_denominator: everything\n", "closure_denominator",
     "metrics.closure_denominator: unknown value \"everything\""},
    {"ZeroWeight",
     "  index:\n    - {rate: handling_rate, weight: 30}\n    - {rate: closure_rate, weight: 0}\n",
     "rate: closure_rate", "metrics.index[1].weight: must be above 0 and at most 1000, got 0"},
    {"NegativeWeight", "  index:\n    - {rate: handling_rate, weight: -5}\n", "rate: handling_rate",
     "metrics.index[0].weight: must be above 0 and at most 1000, got -5"},
    {"HugeWeight", "  index:\n    - {rate: handling_rate, weight: 1e9}\n", "rate: handling_rate",
     "metrics.index[0].weight: must be above 0 and at most 1000, got 1e+09"},
    {"WeightLeftOut", "  index:\n    - {rate: handling_rate}\n", "rate: handling_rate",
     "metrics.index[0].weight: must be above 0 and at most 1000, got 0"},
    {"NotANumberWeight", "  index:\n    - {rate: handling_rate, weight: .nan}\n",
     "rate: handling_rate", "metrics.index[0].weight: expected a number, got \".nan\""},
    {"RateTwice",
     "  index:\n    - {rate: handling_rate, weight: 30}\n    - {rate: closure_rate, weight: 20}\n"
     "    - {rate: handling_rate, weight: 10}\n",
     "weight: 10", "metrics.index[2].rate: HANDLING_RATE appears twice in the index"},
    {"RateLeftOut", "  index:\n    - {weight: 30}\n", "weight: 30",
     "metrics.index[0].rate: is required"},
    {"UnknownKey", "  min_sample: 3\n  colour: blue\n", "colour", "metrics.colour: unknown key"},
    {"UnknownKeyInATerm", "  index:\n    - {rate: handling_rate, weight: 30, invert: true}\n",
     "invert", "metrics.index[0].invert: unknown key (did you mean \"inverse\"?)"},
    {"MinSampleTooLarge", "  min_sample: 2000000\n", "min_sample",
     "metrics.min_sample: must be at most 1000000, got 2000000"},
};
INSTANTIATE_TEST_SUITE_P(Metrics, MetricsMistakeTest, ::testing::ValuesIn(kMistakes),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace casebus::config

// engine/config: the escalation block (config.proto Escalation, EscalationStep). One test per
// validation rule, each made by editing one spot of a valid city and asserting the message names
// that spot's line and key path; and ApplyLadderDefaults, which fills DOMAIN.md §4's ladder only
// when the city lists no step at all.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "engine/config/loader.h"
#include "engine/config/validate.h"

namespace casebus::config {
namespace {

namespace v1 = casebus::v1;

constexpr std::string_view kCity = R"(name: Laddertown
districts:
  - {code: "320508", name: Gusu}
  - {code: "320509", name: Wuzhong}
streets:
  - {code: "320508001", name: Pingjiang}
  - {code: "320509001", name: Changqiao}
communities:
  - {code: "320508001001", name: Lindun}
  - {code: "320509001001", name: Xuri}
grids:
  - {code: "320508001001001", lat: 31.31, lon: 120.62}
  - {code: "320509001001001", lat: 31.27, lon: 120.63}
departments:
  - {id: center-gusu, adapter: {spool: {directory: spool/center-gusu}}}
  - {id: center-wuzhong, adapter: {spool: {directory: spool/center-wuzhong}}}
  - {id: leaders, adapter: {spool: {directory: spool/leaders}}}
  - {id: roads, adapter: {spool: {directory: spool/roads}}}
categories:
  - code: "0201"
    name: Illegal parking
    kind: event
    limits:
      handle: {value: 1, clock: working_hours}
routes:
  - {id: default, department: roads}
escalation:
  ladder:
    handle:
      - {id: reminder, fraction: 0.5, target: responsible_department}
      - {id: red, fraction: 1.0, target: district_center, light: red}
      - {id: supervise, fraction: 2.0, target: leadership, light: red, supervision: true}
  district_centers:
    - {district: "320508", department: center-gusu}
    - {district: "320509", department: center-wuzhong}
  leadership: leaders
)";

// kCity with the first `from` replaced by `to`.
std::string Edit(std::string_view from, std::string_view to) {
  std::string text(kCity);
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "not in the city: " << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// "city.yaml:LINE: " for the 1-based line of the first `marker`.
std::string At(std::string_view text, std::string_view marker) {
  size_t at = text.find(marker);
  EXPECT_NE(at, std::string_view::npos) << "marker not found: " << marker;
  if (at == std::string_view::npos) return "";
  return "city.yaml:" + std::to_string(1 + std::count(text.begin(), text.begin() + at, '\n')) +
         ": ";
}

TEST(EscalationConfig, LoadsTheLadderCentersAndLeadership) {
  auto loaded = LoadCityConfigText(kCity, "city.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message();
  const v1::Escalation& e = (*loaded)->escalation();
  ASSERT_EQ(e.ladder().handle_size(), 3);
  EXPECT_EQ(e.ladder().handle(1).id(), "red");
  EXPECT_EQ(e.ladder().handle(1).fraction(), 1.0);
  EXPECT_EQ(e.ladder().handle(1).target(), v1::DISTRICT_CENTER);
  EXPECT_EQ(e.ladder().handle(1).light(), v1::RED);
  EXPECT_TRUE(e.ladder().handle(2).supervision());
  EXPECT_EQ(e.ladder().accept_size(), 0);  // the city's own ladder: no defaults mixed in
  EXPECT_EQ(e.ladder().verify_size(), 0);
  ASSERT_EQ(e.district_centers_size(), 2);
  EXPECT_EQ(e.district_centers(1).department(), "center-wuzhong");
  EXPECT_EQ(e.leadership(), "leaders");
}

// One mistake: replace `from` with `to`; the message must hold "city.yaml:LINE: " + `expected`,
// LINE being the line of `marker` in the edited text.
struct Mistake {
  const char* name;
  const char* from;
  const char* to;
  const char* marker;
  const char* expected;
};

class EscalationMistakeTest : public ::testing::TestWithParam<Mistake> {};

TEST_P(EscalationMistakeTest, IsReportedAtItsLineAndKey) {
  const Mistake& m = GetParam();
  const std::string yaml = Edit(m.from, m.to);
  auto loaded = LoadCityConfigText(yaml, "city.yaml");
  ASSERT_FALSE(loaded) << "loaded, but should not have:\n" << yaml;
  EXPECT_EQ(loaded.error().code(), StatusCode::kInvalidArgument);
  const std::string want = At(yaml, m.marker) + m.expected;
  EXPECT_NE(loaded.error().message().find(want), std::string::npos)
      << "want: " << want << "\ngot:\n"
      << loaded.error().message();
}

const Mistake kMistakes[] = {
    {"StepIdWithCapitals", "id: reminder", "id: Reminder", "id: Reminder",
     "escalation.ladder.handle[0].id: must be 1..32 characters of [a-z0-9_-], got \"Reminder\""},
    {"StepIdTooLong", "id: reminder", "id: reminder-reminder-reminder-remind", "id: reminder-",
     "escalation.ladder.handle[0].id: must be 1..32 characters of [a-z0-9_-], got "
     "\"reminder-reminder-reminder-remind\""},
    {"StepIdMissing", "{id: reminder, fraction: 0.5", "{fraction: 0.5", "{fraction: 0.5",
     "escalation.ladder.handle[0].id: must be 1..32 characters of [a-z0-9_-], got \"\""},
    {"DuplicateStepId", "id: red,", "id: reminder,", "fraction: 1.0",
     "escalation.ladder.handle[1].id: duplicate step id \"reminder\" in this stage"},
    {"ZeroFraction", "fraction: 0.5", "fraction: 0", "fraction: 0,",
     "escalation.ladder.handle[0].fraction: must be > 0 and <= 100 (a share of the limit), got 0"},
    {"NegativeFraction", "fraction: 0.5", "fraction: -0.5", "fraction: -0.5",
     "escalation.ladder.handle[0].fraction: must be > 0 and <= 100 (a share of the limit), got "
     "-0.5"},
    {"FractionAboveOneHundred", "fraction: 2.0", "fraction: 101", "fraction: 101",
     "escalation.ladder.handle[2].fraction: must be > 0 and <= 100 (a share of the limit), got "
     "101"},
    {"DuplicateFraction", "fraction: 2.0", "fraction: 1.0", "id: supervise",
     "escalation.ladder.handle[2].fraction: two steps of one stage at the same fraction 1"},
    {"MissingTarget", "target: district_center, light: red}", "light: red}", "id: red",
     "escalation.ladder.handle[1].target: required: responsible_department, district_center or "
     "leadership"},
    {"UnknownDistrict", "{district: \"320509\"", "{district: \"320599\"", "320599",
     "escalation.district_centers[1].district: unknown district \"320599\""},
    {"UnknownCenterDepartment", "department: center-wuzhong}", "department: nobody}",
     "department: nobody",
     "escalation.district_centers[1].department: unknown department \"nobody\""},
    {"DuplicateCenter", "{district: \"320509\"", "{district: \"320508\"",
     "department: center-wuzhong",
     "escalation.district_centers[1].district: district \"320508\" has a center already"},
    {"UnknownLeadership", "leadership: leaders", "leadership: mayor", "leadership: mayor",
     "escalation.leadership: unknown department \"mayor\""},
    // The accept and verify stages are checked alike, each on its own path.
    {"AcceptStageStepId", "    handle:\n",
     "    accept:\n      - {id: \"bad id\", fraction: 1, target: district_center}\n    handle:\n",
     "bad id",
     "escalation.ladder.accept[0].id: must be 1..32 characters of [a-z0-9_-], got "
     "\"bad id\""},
    {"VerifyStageMissingTarget", "  district_centers:\n",
     "    verify:\n      - {id: late, fraction: 1}\n  district_centers:\n", "id: late",
     "escalation.ladder.verify[0].target: required"},
};
INSTANTIATE_TEST_SUITE_P(Escalation, EscalationMistakeTest, ::testing::ValuesIn(kMistakes),
                         [](const auto& info) { return std::string(info.param.name); });

// The same fraction, or the same id, in two different stages is fine.
TEST(EscalationConfig, StagesAreCheckedSeparately) {
  auto loaded = LoadCityConfigText(
      Edit("    handle:\n",
           "    accept:\n      - {id: red, fraction: 1.0, target: district_center}\n    handle:\n"),
      "city.yaml");
  EXPECT_TRUE(loaded) << loaded.error().message();
}

TEST(EscalationConfig, CentersAndLeadershipAreOptional) {
  std::string yaml(kCity);
  yaml.erase(yaml.find("  district_centers:"));
  auto loaded = LoadCityConfigText(yaml, "city.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ((*loaded)->escalation().district_centers_size(), 0);
  EXPECT_TRUE((*loaded)->escalation().leadership().empty());
}

// DOMAIN.md §4's ladder, step by step.
void ExpectDefaultLadder(const v1::EscalationLadder& l) {
  struct Want {
    const char* id;
    double fraction;
    v1::EscalationTarget target;
    v1::TrafficLight light;
    bool supervision;
  };
  auto expect = [](const auto& steps, std::initializer_list<Want> want, const char* stage) {
    SCOPED_TRACE(stage);
    ASSERT_EQ(steps.size(), static_cast<int>(want.size()));
    int i = 0;
    for (const Want& w : want) {
      const v1::EscalationStep& s = steps[i++];
      EXPECT_EQ(s.id(), w.id);
      EXPECT_EQ(s.fraction(), w.fraction) << w.id;
      EXPECT_EQ(s.target(), w.target) << w.id;
      EXPECT_EQ(s.light(), w.light) << w.id;
      EXPECT_EQ(s.supervision(), w.supervision) << w.id;
    }
  };
  expect(l.accept(),
         {{"reminder", 0.5, v1::RESPONSIBLE_DEPARTMENT, v1::LIGHT_UNSPECIFIED, false},
          {"accept-overdue", 1.0, v1::DISTRICT_CENTER, v1::YELLOW, false}},
         "accept");
  expect(l.handle(),
         {{"reminder", 0.5, v1::RESPONSIBLE_DEPARTMENT, v1::LIGHT_UNSPECIFIED, false},
          {"yellow", 0.8, v1::RESPONSIBLE_DEPARTMENT, v1::YELLOW, false},
          {"red", 1.0, v1::DISTRICT_CENTER, v1::RED, false},
          {"supervise", 2.0, v1::LEADERSHIP, v1::RED, true}},
         "handle");
  expect(l.verify(), {{"verify-overdue", 1.0, v1::DISTRICT_CENTER, v1::LIGHT_UNSPECIFIED, false}},
         "verify");
}

TEST(ApplyLadderDefaults, FillsTheDefaultLadderWhenNoStepIsConfigured) {
  v1::EscalationLadder ladder;
  ApplyLadderDefaults(ladder);
  ExpectDefaultLadder(ladder);
  v1::EscalationLadder again = ladder;
  ApplyLadderDefaults(again);  // idempotent: the ladder now has steps
  EXPECT_EQ(again.SerializeAsString(), ladder.SerializeAsString());
}

TEST(ApplyLadderDefaults, KeepsExactlyTheCitysStepsWhenAnyIsConfigured) {
  v1::EscalationLadder ladder;
  auto* s = ladder.add_verify();
  s->set_id("late");
  s->set_fraction(1.5);
  s->set_target(v1::LEADERSHIP);
  const std::string before = ladder.SerializeAsString();
  ApplyLadderDefaults(ladder);
  EXPECT_EQ(ladder.SerializeAsString(), before);
  EXPECT_EQ(ladder.accept_size(), 0);
  EXPECT_EQ(ladder.handle_size(), 0);
}

TEST(ApplyLadderDefaults, ACityWithoutALadderLoadsWithTheDefaultOne) {
  std::string yaml(kCity);
  const size_t ladder = yaml.find("  ladder:");
  yaml.erase(ladder, yaml.find("  district_centers:") - ladder);
  auto loaded = LoadCityConfigText(yaml, "city.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message();
  ExpectDefaultLadder((*loaded)->escalation().ladder());
  EXPECT_EQ((*loaded)->escalation().leadership(), "leaders");  // the rest is the city's
  // The defaults obey the rules they are checked by.
  EXPECT_TRUE(ValidateCityConfig(**loaded, "defaulted").ok());
}

}  // namespace
}  // namespace casebus::config

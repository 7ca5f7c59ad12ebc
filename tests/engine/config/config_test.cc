// engine/config: YAML → CityConfig, one test per kind of mistake. Each mistake is made by editing
// one spot of a valid city; the test asserts the message names that spot's line and key path.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "casebus/v1/command.pb.h"
#include "engine/config/loader.h"
#include "engine/config/validate.h"
#include "engine/config/yaml_reader.h"

namespace casebus::config {
namespace {

using casebus::v1::CityConfig;

constexpr std::string_view kCity = R"(name: Testville
calendar:
  time_zone: Asia/Shanghai
  utc_offset_minutes: 480
  windows:
    - {start: "08:30", end: "12:00"}
    - {start: "13:30", end: "17:30"}
  work_weekdays: [1, 2, 3, 4, 5]
  holidays: [2026-10-01, 2026-10-02]
  make_up_days: [2026-09-27]
districts:
  - {code: 320508, name: Gusu}
streets:
  - {code: 320508001, name: Pingjiang}
communities:
  - {code: 320508001001, name: Lindun}
grids:
  - {code: 320508001001001, lat: 31.31, lon: 120.62}
  - {code: 320508001001002, lat: 31.32, lon: 120.63}
departments:
  - id: city-admin
    name: City administration
    adapter:
      spool: {directory: spool/city-admin}
  - id: roads
    name: Roads bureau
    parent: city-admin
    adapter:
      spool: {directory: spool/roads}
categories:
  - {code: "01", name: Public facilities, kind: component}
  - code: "0101"
    name: Manhole cover
    kind: component
    parent: "01"
    limits:
      accept: {value: 1, clock: working_hours}
      handle: {value: 2, clock: working_days}
    conditions:
      - id: missing
        name: Cover missing
        limits:
          handle: {value: 4, clock: urgent_hours}
  - code: "0201"
    name: Illegal parking
    kind: event
    limits:
      handle: {value: 1, clock: working_hours}
routes:
  - {id: default, department: city-admin}
  - {id: covers, category_prefix: "0101", place_prefix: "320508", department: roads}
  - {id: lost, category_prefix: "0101", condition: missing, department: roads, urgency: urgent}
assets:
  - {id: "3205080010010001", category: "0101", grid: "320508001001001", maintainer: roads}
dedup: {radius_m: 30, window_hours: 12}
intake: {max_batch: 512}
)";

// kCity with the first `from` replaced by `to`.
std::string Edit(std::string_view from, std::string_view to,
                 std::string text = std::string(kCity)) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "not in the city: " << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// 1-based line of the first occurrence of `marker`.
int LineOf(std::string_view text, std::string_view marker) {
  size_t at = text.find(marker);
  EXPECT_NE(at, std::string_view::npos) << "marker not found: " << marker;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

std::string At(std::string_view text, std::string_view marker) {
  return "city.yaml:" + std::to_string(LineOf(text, marker)) + ": ";
}

// The message of a load that must fail.
std::string LoadError(std::string_view yaml) {
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

TEST(LoadCityConfigText, LoadsAValidCity) {
  auto loaded = LoadCityConfigText(kCity, "city.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message();
  const CityConfig& city = **loaded;
  EXPECT_EQ(city.name(), "Testville");
  EXPECT_EQ(city.districts(0).code(), "320508");  // an unquoted code stays text
  EXPECT_EQ(city.grids(1).lat(), 31.32);
  EXPECT_EQ(city.calendar().holidays(1), "2026-10-02");
  EXPECT_EQ(city.categories(1).kind(), casebus::v1::COMPONENT);
  EXPECT_EQ(city.categories(1).limits().handle().clock(), casebus::v1::WORKING_DAYS);
  EXPECT_EQ(city.categories(1).conditions(0).limits().handle().value(), 4);
  EXPECT_EQ(city.routes(2).urgency(), casebus::v1::URGENT);
  EXPECT_EQ(city.departments(1).adapter().spool().directory(), "spool/roads");
  EXPECT_EQ(city.dedup().radius_m(), 30);             // given
  EXPECT_EQ(city.intake().max_batch(), 512u);         // given
  EXPECT_EQ(city.intake().queue_capacity(), 65536u);  // defaulted
  EXPECT_EQ(city.intake().request_id_window_hours(), 168);  // defaulted: 7 days
}

TEST(LoadCityConfigText, EnumValuesIgnoreCase) {
  auto loaded = LoadCityConfigText(Edit("kind: event", "kind: EVENT"), "city.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ((*loaded)->categories(2).kind(), casebus::v1::EVENT);
}

TEST(LoadCityConfigText, RoutesThatDifferInUrgencyAreNotAmbiguous) {
  std::string yaml =
      Edit("routes:\n", "routes:\n  - {id: urgent, department: roads, urgency: urgent}\n");
  auto loaded = LoadCityConfigText(yaml, "city.yaml");
  EXPECT_TRUE(loaded) << loaded.error().message();
}

// One mistake: replace `from` with `to`; the message must hold "city.yaml:LINE: " + `expected`,
// LINE being the line of `marker` in the edited text, and, when `first` is set,
// " (first defined at line N)" with N the line of `first`.
struct Mistake {
  const char* name;
  const char* from;
  const char* to;
  const char* marker;
  const char* expected;
  const char* first = "";
};

class MistakeTest : public ::testing::TestWithParam<Mistake> {};

TEST_P(MistakeTest, IsReportedAtItsLineAndKey) {
  const Mistake& m = GetParam();
  std::string yaml = Edit(m.from, m.to);
  std::string want = At(yaml, m.marker) + m.expected;
  if (*m.first != '\0')
    want += " (first defined at line " + std::to_string(LineOf(yaml, m.first)) + ")";
  EXPECT_CONTAINS(LoadError(yaml), want);
}

const Mistake kReaderMistakes[] = {
    {"UnknownKeySuggestsField", "    name: Roads bureau\n",
     "    name: Roads bureau\n    adaptor: {}\n",
     "adaptor:", "departments[1].adaptor: unknown key (did you mean \"adapter\"?)"},
    {"UnknownKeyFarFromAnyField",
     "dedup:", "colour: blue\ndedup:", "colour:", "colour: unknown key"},
    {"MappingForString", "name: Testville", "name: {first: Test}",
     "name:", "name: expected a scalar, got a mapping"},
    {"TextForNumber", "radius_m: 30", "radius_m: abc",
     "dedup:", "dedup.radius_m: expected a number, got \"abc\""},
    {"TextForInteger", "utc_offset_minutes: 480", "utc_offset_minutes: 8h", "utc_offset",
     "calendar.utc_offset_minutes: expected an integer, got \"8h\""},
    {"Int32OutOfRange", "utc_offset_minutes: 480", "utc_offset_minutes: 4800000000", "utc_offset",
     "calendar.utc_offset_minutes: \"4800000000\" is out of range for int32"},
    {"NegativeUnsigned", "max_batch: 512", "max_batch: -1",
     "intake:", "intake.max_batch: \"-1\" is out of range for uint32"},
    {"ScalarForSequence", "work_weekdays: [1, 2, 3, 4, 5]", "work_weekdays: 1", "work_weekdays",
     "calendar.work_weekdays: expected a sequence, got a scalar"},
    {"SequenceForMapping", "dedup: {radius_m: 30, window_hours: 12}", "dedup: [30, 12]",
     "dedup:", "dedup: expected a mapping, got a sequence"},
    {"BadEnumValue", "kind: event", "kind: evnt", "kind: evnt",
     "categories[2].kind: unknown value \"evnt\" (did you mean \"event\"?); expected one of: "
     "component, event, topic"},
    {"DuplicateMappingKey", "    name: Roads bureau\n", "    name: Roads bureau\n    name: Again\n",
     "name: Again", "departments[1].name: duplicate key (first at line 26)"},
    {"SyntaxErrorFromYamlCpp", "name: Testville\n", "name: Testville\n  oops: 1\n", "oops",
     "syntax error: illegal map value"},
    {"UnclosedFlowSequence", "holidays: [2026-10-01, 2026-10-02]",
     "holidays: [2026-10-01, 2026-10-02", "make_up_days",
     "syntax error: end of sequence flow not found"},
};
INSTANTIATE_TEST_SUITE_P(Reader, MistakeTest, ::testing::ValuesIn(kReaderMistakes),
                         [](const auto& info) { return std::string(info.param.name); });

const Mistake kDanglingReferences[] = {
    {"DepartmentParent", "parent: city-admin", "parent: nobody", "parent: nobody",
     "departments[1].parent: department \"nobody\" does not exist"},
    {"RouteDepartment", "{id: default, department: city-admin}",
     "{id: default, department: nobody}", "id: default",
     "routes[0].department: department \"nobody\" does not exist"},
    {"AssetMaintainer", "maintainer: roads}", "maintainer: nobody}",
     "maintainer:", "assets[0].maintainer: department \"nobody\" does not exist"},
    {"AssetCategory", "category: \"0101\", grid", "category: \"0199\", grid",
     "maintainer:", "assets[0].category: category \"0199\" does not exist"},
    {"AssetCategoryNotAComponent", "category: \"0101\", grid", "category: \"0201\", grid",
     "maintainer:", "assets[0].category: category \"0201\" is not a component (kind event)"},
    {"AssetGrid", "grid: \"320508001001001\"", "grid: \"320508001001009\"",
     "maintainer:", "assets[0].grid: grid \"320508001001009\" does not exist"},
    {"CategoryParent", "parent: \"01\"", "parent: \"09\"", "parent: \"09\"",
     "categories[1].parent: category \"09\" does not exist"},
    {"CategoryParentNotAClass", "parent: \"01\"", "parent: \"0201\"", "parent: \"0201\"",
     "categories[1].parent: category \"0201\" has limits, so it is not a class"},
    {"RouteCondition", "condition: missing", "condition: stolen", "id: lost",
     "routes[2].condition: no category under prefix \"0101\" has condition \"stolen\""},
    {"RouteCategoryPrefixMatchesNothing", "category_prefix: \"0101\", place",
     "category_prefix: \"0109\", place", "id: covers",
     "routes[1].category_prefix: \"0109\" is a prefix of no category code"},
    {"RoutePlacePrefixMatchesNothing", "place_prefix: \"320508\"", "place_prefix: \"320509\"",
     "id: covers", "routes[1].place_prefix: \"320509\" is a prefix of no grid code"},
    {"RoutePlacePrefixOddLength", "place_prefix: \"320508\"", "place_prefix: \"3205080\"",
     "id: covers",
     "routes[1].place_prefix: must be a district, street, community or grid code (6, 9, 12 or 15 "
     "digits), got \"3205080\""},
};
INSTANTIATE_TEST_SUITE_P(DanglingReference, MistakeTest, ::testing::ValuesIn(kDanglingReferences),
                         [](const auto& info) { return std::string(info.param.name); });

const Mistake kDuplicates[] = {
    {"District", "  - {code: 320508, name: Gusu}\n",
     "  - {code: 320508, name: Gusu}\n  - {code: 320508, name: Again}\n", "Again",
     "districts[1].code: duplicate district code \"320508\"", "Gusu"},
    {"Street", "  - {code: 320508001, name: Pingjiang}\n",
     "  - {code: 320508001, name: Pingjiang}\n  - {code: 320508001, name: Again}\n", "Again",
     "streets[1].code: duplicate street code \"320508001\"", "Pingjiang"},
    {"Community", "  - {code: 320508001001, name: Lindun}\n",
     "  - {code: 320508001001, name: Lindun}\n  - {code: 320508001001, name: Again}\n", "Again",
     "communities[1].code: duplicate community code \"320508001001\"", "Lindun"},
    {"Grid", "code: 320508001001002,", "code: 320508001001001,", "lat: 31.32",
     "grids[1].code: duplicate grid code \"320508001001001\"", "lat: 31.31"},
    {"Department", "categories:\n",
     "  - {id: roads, adapter: {spool: {directory: x}}}\ncategories:\n", "directory: x}",
     "departments[2].id: duplicate department id \"roads\"", "id: roads"},
    {"Category", "routes:\n", "  - {code: \"0201\", kind: event}\nroutes:\n", "kind: event}",
     "categories[3].code: duplicate category code \"0201\"", "code: \"0201\""},
    {"RouteId", "id: lost", "id: covers", "condition: missing",
     "routes[2].id: duplicate route id \"covers\"", "id: covers"},
    {"AssetId", "dedup:",
     "  - {id: \"3205080010010001\", category: \"01\", grid: \"320508001001002\", maintainer: "
     "roads}\ndedup:",
     "category: \"01\"", "assets[1].id: duplicate asset id \"3205080010010001\"", "id: \"3205"},
    {"ConditionIdWithinACategory", "urgent_hours}\n",
     "urgent_hours}\n      - {id: missing, name: Again}\n", "name: Again",
     "categories[1].conditions[1].id: duplicate condition id \"missing\"", "id: missing"},
};
INSTANTIATE_TEST_SUITE_P(Duplicate, MistakeTest, ::testing::ValuesIn(kDuplicates),
                         [](const auto& info) { return std::string(info.param.name); });

const Mistake kFormats[] = {
    {"DistrictCode", "code: 320508,", "code: 32050,", "Gusu",
     "districts[0].code: must be 6 digits, got \"32050\""},
    {"StreetOutsideAnyDistrict", "code: 320508001,", "code: 320509001,", "Pingjiang",
     "streets[0].code: district \"320509\" does not exist"},
    {"CommunityCode", "code: 320508001001,", "code: 32050800100x,", "Lindun",
     "communities[0].code: must be 12 digits, got \"32050800100x\""},
    {"GridOutsideAnyCommunity", "code: 320508001001002,", "code: 320508001002002,", "lat: 31.32",
     "grids[1].code: community \"320508001002\" does not exist"},
    {"Latitude", "lat: 31.31", "lat: 91", "lat: 91",
     "grids[0].lat: must be within -90..90 degrees, got 91"},
    {"Longitude", "lon: 120.63", "lon: -180.5", "lon: -180.5",
     "grids[1].lon: must be within -180..180 degrees, got -180.5"},
    {"AssetId", "id: \"3205080010010001\"", "id: \"32050800100100\"",
     "maintainer:", "assets[0].id: must be 16 or 17 digits, got \"32050800100100\""},
    {"DepartmentId", "id: city-admin", "id: City-Admin", "City-Admin",
     "departments[0].id: must match [a-z0-9_-]{1,64}, got \"City-Admin\""},
    {"CategoryCode", "code: \"0201\"", "code: \"02x1\"", "02x1",
     "categories[2].code: must be digits only, got \"02x1\""},
    {"NegativeDedupRadius", "radius_m: 30", "radius_m: -1",
     "dedup:", "dedup.radius_m: must be >= 0, got -1"},
    {"ShortRequestIdWindow", "intake: {max_batch: 512}",
     "intake: {max_batch: 512, request_id_window_hours: 12}", "intake:",
     "intake.request_id_window_hours: must be between 24 and 8784 (one year), got 12"},
};
INSTANTIATE_TEST_SUITE_P(Format, MistakeTest, ::testing::ValuesIn(kFormats),
                         [](const auto& info) { return std::string(info.param.name); });

const Mistake kDepartmentsAndCategories[] = {
    {"MissingAdapter", "    adapter:\n      spool: {directory: spool/roads}\n", "", "id: roads",
     "departments[1].adapter: required"},
    {"AdapterWithoutKind", "spool: {directory: spool/roads}", "", "adapter:\n      \n",
     "departments[1].adapter: exactly one kind must be set (spool, webhook, zmq, open311)"},
    {"SpoolWithoutDirectory", "spool: {directory: spool/roads}", "spool: {}", "spool: {}",
     "departments[1].adapter.spool.directory: required"},
    {"MissingHandleLimit", "    limits:\n      handle: {value: 1, clock: working_hours}\n",
     "    limits:\n      verify: {value: 1, clock: working_days}\n", "    limits:\n      verify",
     "categories[2].limits.handle: required: a subcategory needs a handle limit"},
    {"ZeroTimeLimit", "handle: {value: 2,", "handle: {value: 0,", "value: 0",
     "categories[1].limits.handle.value: must be > 0, got 0"},
    {"TimeLimitWithoutClock", "accept: {value: 1, clock: working_hours}", "accept: {value: 1}",
     "accept:", "categories[1].limits.accept.clock: required"},
    {"CategoryWithoutKind", "    kind: event\n", "", "code: \"0201\"",
     "categories[2].kind: required"},
};
INSTANTIATE_TEST_SUITE_P(Catalog, MistakeTest, ::testing::ValuesIn(kDepartmentsAndCategories),
                         [](const auto& info) { return std::string(info.param.name); });

// Each turns the roads bureau into a webhook department (flow style, or block style where the
// line of a nested key matters) and lists webhook_allow right after it.
#define ROADS_SPOOL "      spool: {directory: spool/roads}\ncategories:\n"
#define ROADS_WEBHOOK(webhook, allow) "      webhook: " webhook "\n" allow "categories:\n"
#define ALLOW_ROADS "webhook_allow: [\"https://roads.gov/\"]\n"
const Mistake kWebhooks[] = {
    {"UrlNotUnderWebhookAllow", ROADS_SPOOL,
     ROADS_WEBHOOK("{url: \"https://evil.example/x\", secret_env: ROADS_SECRET}", ALLOW_ROADS),
     "webhook:",
     "departments[1].adapter.webhook.url: \"https://evil.example/x\" is not under any "
     "webhook_allow prefix"},
    {"UrlWithEmptyWebhookAllow", ROADS_SPOOL,
     ROADS_WEBHOOK("{url: \"https://roads.gov/x\", secret_env: ROADS_SECRET}", ""), "webhook:",
     "departments[1].adapter.webhook.url: \"https://roads.gov/x\" is not under any webhook_allow "
     "prefix (webhook_allow is empty)"},
    {"WebhookAllowWithoutPath", ROADS_SPOOL,
     ROADS_WEBHOOK("{url: \"https://a.gov/x\", secret_env: ROADS_SECRET}",
                   "webhook_allow:\n  - \"https://roads.gov/\"\n  - \"https://a.gov\"\n"),
     "- \"https://a.gov\"",
     "webhook_allow[1]: must end its host with a path (at least \"/\"), got \"https://a.gov\""},
    {"UrlWithUserInfo", ROADS_SPOOL,
     ROADS_WEBHOOK("{url: \"https://u@roads.gov/x\", secret_env: ROADS_SECRET}", ALLOW_ROADS),
     "webhook:",
     "departments[1].adapter.webhook.url: must be an http:// or https:// URL with a host and no "
     "user info, spaces or control characters, got \"https://u@roads.gov/x\""},
    {"NeitherSecretFileNorSecretEnv", ROADS_SPOOL,
     ROADS_WEBHOOK("{url: \"https://roads.gov/x\"}", ALLOW_ROADS), "webhook:",
     "departments[1].adapter.webhook: exactly one of secret_file and secret_env must be set (the "
     "secret itself never goes in the config)"},
    {"BothSecretFileAndSecretEnv", ROADS_SPOOL,
     ROADS_WEBHOOK("\n        url: \"https://roads.gov/x\"\n        secret_file: roads.key\n"
                   "        secret_env: ROADS_SECRET",
                   ALLOW_ROADS),
     "webhook:",
     "departments[1].adapter.webhook: exactly one of secret_file and secret_env must be set (the "
     "secret itself never goes in the config)"},
};
#undef ALLOW_ROADS
#undef ROADS_WEBHOOK
#undef ROADS_SPOOL
INSTANTIATE_TEST_SUITE_P(Webhook, MistakeTest, ::testing::ValuesIn(kWebhooks),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(LoadCityConfigText, LoadsAWebhookDepartment) {
  std::string yaml = Edit("      spool: {directory: spool/roads}\ncategories:\n",
                          "      webhook: {url: \"https://roads.gov/x\", secret_env: ROADS_SECRET}\n"
                          "webhook_allow: [\"https://roads.gov/\"]\ncategories:\n");
  auto loaded = LoadCityConfigText(yaml, "city.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ((*loaded)->departments(1).adapter().webhook().url(), "https://roads.gov/x");
  EXPECT_EQ((*loaded)->webhook_allow(0), "https://roads.gov/");
}

// Each adds a block-style delivery policy after intake.
#define AFTER_INTAKE "intake: {max_batch: 512}\n"
const Mistake kDelivery[] = {
    {"BackoffCapBelowBase", AFTER_INTAKE,
     AFTER_INTAKE "delivery:\n  backoff_base_ms: 5000\n  backoff_cap_ms: 1000\n", "backoff_cap",
     "delivery.backoff_cap_ms: the cap (1000 ms) must not be below the base (5000 ms)"},
    {"BackoffBaseAboveTheDefaultCap", AFTER_INTAKE,
     AFTER_INTAKE "delivery:\n  workers: 2\n  backoff_base_ms: 700000\n", "backoff_base",
     "delivery.backoff_base_ms: the cap (600000 ms) must not be below the base (700000 ms)"},
    {"TooManyWorkers", AFTER_INTAKE, AFTER_INTAKE "delivery:\n  timeout_ms: 500\n  workers: 65\n",
     "workers", "delivery.workers: must be at most 64, got 65"},
    {"NegativeMaxAge", AFTER_INTAKE, AFTER_INTAKE "delivery:\n  workers: 2\n  max_age_hours: -1\n",
     "max_age", "delivery.max_age_hours: must be between 0 (default 72) and 8784 (one year), got -1"},
};
#undef AFTER_INTAKE
INSTANTIATE_TEST_SUITE_P(Delivery, MistakeTest, ::testing::ValuesIn(kDelivery),
                         [](const auto& info) { return std::string(info.param.name); });

const Mistake kCalendar[] = {
    {"WindowTimeMalformed", "start: \"13:30\"", "start: \"1:30pm\"", "1:30pm",
     "calendar.windows[1].start: must be a time \"HH:MM\", got \"1:30pm\""},
    {"WindowEndsBeforeItStarts", "end: \"17:30\"", "end: \"13:00\"", "13:00",
     "calendar.windows[1]: start 13:30 must be before end 13:00"},
    {"WindowsOverlap", "start: \"13:30\"", "start: \"11:00\"", "11:00",
     "calendar.windows[1]: must start at or after the end of calendar.windows[0]"},
    {"WeekdayOutOfRange", "[1, 2, 3, 4, 5]", "[1, 2, 3, 4, 8]", "work_weekdays",
     "calendar.work_weekdays[4]: must be an ISO weekday 1..7 (1 = Monday), got 8"},
    {"HolidayNotADate", "2026-10-02]", "2026-02-30]",
     "holidays:", "calendar.holidays[1]: must be a date \"YYYY-MM-DD\", got \"2026-02-30\""},
    {"MakeUpDayNotADate", "[2026-09-27]", "[27.09.2026]", "make_up_days",
     "calendar.make_up_days[0]: must be a date \"YYYY-MM-DD\", got \"27.09.2026\""},
    {"DateBothHolidayAndMakeUpDay", "[2026-09-27]", "[2026-10-02]", "make_up_days",
     "calendar.make_up_days[0]: 2026-10-02 is also a holiday (calendar.holidays[1], line 9)"},
};
INSTANTIATE_TEST_SUITE_P(Calendar, MistakeTest, ::testing::ValuesIn(kCalendar),
                         [](const auto& info) { return std::string(info.param.name); });

// Each inserts calendar.weekday_windows (or make_up_windows_weekday) after make_up_days.
#define AFTER_MAKE_UP_DAYS "  make_up_days: [2026-09-27]\n"
const Mistake kWeekdayWindows[] = {
    {"WeekdayWindowsWeekdayOutOfRange", AFTER_MAKE_UP_DAYS,
     AFTER_MAKE_UP_DAYS "  weekday_windows:\n    - {weekday: 8, windows: [{start: \"08:30\", "
                        "end: \"12:00\"}]}\n",
     "weekday: 8",
     "calendar.weekday_windows[0].weekday: must be an ISO weekday 1..7 (1 = Monday), got 8"},
    {"WeekdayWindowsWeekdayListedTwice", AFTER_MAKE_UP_DAYS,
     AFTER_MAKE_UP_DAYS "  weekday_windows:\n"
                        "    - {weekday: 5, windows: [{start: \"08:30\", end: \"12:00\"}]}\n"
                        "    - weekday: 5\n"
                        "      windows: [{start: \"09:00\", end: \"12:00\"}]\n",
     "- weekday: 5",
     "calendar.weekday_windows[1].weekday: weekday 5 already has windows "
     "(calendar.weekday_windows[0], line 12)"},
    {"WeekdayWindowsWithoutWindows", AFTER_MAKE_UP_DAYS,
     AFTER_MAKE_UP_DAYS "  weekday_windows:\n    - {weekday: 5, windows: []}\n", "weekday: 5",
     "calendar.weekday_windows[0].windows: required: at least one window (a day off is left out "
     "of work_weekdays)"},
    {"WeekdayWindowTimeMalformed", AFTER_MAKE_UP_DAYS,
     AFTER_MAKE_UP_DAYS "  weekday_windows:\n    - {weekday: 5, windows: [{start: \"08:30\", "
                        "end: \"4pm\"}]}\n",
     "4pm", "calendar.weekday_windows[0].windows[0].end: must be a time \"HH:MM\", got \"4pm\""},
    {"WeekdayWindowEndsBeforeItStarts", AFTER_MAKE_UP_DAYS,
     AFTER_MAKE_UP_DAYS "  weekday_windows:\n    - {weekday: 5, windows: [{start: \"16:00\", "
                        "end: \"13:30\"}]}\n",
     "16:00", "calendar.weekday_windows[0].windows[0]: start 16:00 must be before end 13:30"},
    {"WeekdayWindowsOverlap", AFTER_MAKE_UP_DAYS,
     AFTER_MAKE_UP_DAYS "  weekday_windows:\n"
                        "    - weekday: 5\n"
                        "      windows:\n"
                        "        - {start: \"08:30\", end: \"12:00\"}\n"
                        "        - {start: \"11:00\", end: \"16:00\"}\n",
     "11:00",
     "calendar.weekday_windows[0].windows[1]: must start at or after the end of "
     "calendar.weekday_windows[0].windows[0] (windows are sorted and do not overlap)"},
    {"MakeUpWindowsWeekdayOutOfRange", AFTER_MAKE_UP_DAYS,
     AFTER_MAKE_UP_DAYS "  make_up_windows_weekday: 8\n", "make_up_windows_weekday",
     "calendar.make_up_windows_weekday: must be an ISO weekday 1..7 (1 = Monday; 0 or absent = "
     "1), got 8"},
};
#undef AFTER_MAKE_UP_DAYS
INSTANTIATE_TEST_SUITE_P(WeekdayWindows, MistakeTest, ::testing::ValuesIn(kWeekdayWindows),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(LoadCityConfigText, LoadsWeekdayWindowsAndTheMakeUpWeekday) {
  std::string yaml = Edit("  make_up_days: [2026-09-27]\n",
                          "  make_up_days: [2026-09-27]\n"
                          "  weekday_windows:\n"
                          "    - weekday: 5\n"
                          "      windows:\n"
                          "        - {start: \"08:30\", end: \"12:00\"}\n"
                          "        - {start: \"13:30\", end: \"16:00\"}\n"
                          "    - {weekday: 6, windows: [{start: \"09:00\", end: \"12:00\"}]}\n"
                          "  make_up_windows_weekday: 6\n");
  auto loaded = LoadCityConfigText(yaml, "city.yaml");
  ASSERT_TRUE(loaded) << loaded.error().message();
  const auto& calendar = (*loaded)->calendar();
  ASSERT_EQ(calendar.weekday_windows_size(), 2);
  EXPECT_EQ(calendar.weekday_windows(0).weekday(), 5);
  EXPECT_EQ(calendar.weekday_windows(0).windows(1).end(), "16:00");
  EXPECT_EQ(calendar.weekday_windows(1).windows(0).start(), "09:00");
  EXPECT_EQ(calendar.make_up_windows_weekday(), 6);
}

const Mistake kRoutes[] = {
    {"AmbiguousCatchAll", "assets:", "  - {id: fallback, department: roads}\nassets:", "fallback",
     "routes[3]: ambiguous with routes[0] (same specificity, both match any category anywhere)"},
    {"AmbiguousSameKeys", "assets:",
     "  - {id: more-covers, place_prefix: \"320508\", category_prefix: \"0101\", department: "
     "city-admin}\nassets:",
     "more-covers",
     "routes[3]: ambiguous with routes[1] (same specificity, both match category 0101 in 320508)"},
    {"AmbiguousWithConditionAndUrgency", "assets:",
     "  - {id: c2, category_prefix: \"0101\", condition: missing, urgency: urgent, department: "
     "city-admin}\nassets:",
     "id: c2",
     "routes[3]: ambiguous with routes[2] (same specificity, both match category 0101 with "
     "condition missing anywhere, urgency urgent)"},
};
INSTANTIATE_TEST_SUITE_P(Route, MistakeTest, ::testing::ValuesIn(kRoutes),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(LoadCityConfigText, ReportsEveryProblemInLineOrder) {
  std::string yaml = Edit("parent: city-admin", "parent: nobody");
  yaml = Edit("lat: 31.31", "lat: 99", yaml);
  std::string error = LoadError(yaml);
  size_t grid = error.find(At(yaml, "lat: 99") + "grids[0].lat");
  size_t parent = error.find(At(yaml, "parent: nobody") + "departments[1].parent");
  EXPECT_NE(grid, std::string::npos) << error;
  EXPECT_NE(parent, std::string::npos) << error;
  EXPECT_LT(grid, parent);
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 1) << error;
}

TEST(LoadCityConfigText, ReaderProblemsStopTheSemanticChecks) {
  // A half-read city would only echo the reader's mistakes as missing values.
  std::string yaml = Edit("parent: city-admin", "parent: nobody");
  yaml = Edit("name: Testville", "nme: Testville", yaml);
  EXPECT_EQ(LoadError(yaml), "city.yaml:1: nme: unknown key (did you mean \"name\"?)");
}

TEST(LoadCityConfigText, ConditionsCanSupplyTheHandleLimit) {
  std::string yaml = Edit("      handle: {value: 2, clock: working_days}\n", "");
  auto loaded = LoadCityConfigText(yaml, "city.yaml");
  EXPECT_TRUE(loaded) << loaded.error().message();
  yaml = Edit("handle: {value: 4, clock: urgent_hours}", "verify: {value: 4, clock: urgent_hours}",
              yaml);
  EXPECT_CONTAINS(LoadError(yaml), At(yaml, "limits:\n      accept") +
                                       "categories[1].limits.handle: required: a subcategory");
}

TEST(LoadCityConfigText, RequiresPlacesDepartmentsAndCategories) {
  std::string error = LoadError("name: Nowhere\n");
  EXPECT_CONTAINS(error, "city.yaml:1: districts: at least one district is required");
  EXPECT_CONTAINS(error, "city.yaml:1: grids: at least one grid is required");
  EXPECT_CONTAINS(error, "city.yaml:1: departments: at least one department is required");
  EXPECT_CONTAINS(error, "city.yaml:1: categories: at least one category is required");
}

TEST(LoadCityConfigText, RejectsEmptyAndNonMappingDocuments) {
  EXPECT_CONTAINS(LoadError(""), "city.yaml:1: the file is empty");
  EXPECT_CONTAINS(LoadError("- a\n- b\n"), "city.yaml:1: expected a mapping at the top level");
  EXPECT_CONTAINS(LoadError("name: a\n---\nname: b\n"), "only one YAML document is allowed");
}

// Found by tests/fuzz/city_config_fuzz.cc: yaml-cpp 0.7's LoadAll never returns on a stream
// whose document parses to no token (a lone ","), allocating until memory runs out.
TEST(LoadCityConfigText, StrayCommaIsAnErrorNotAnEndlessLoop) {
  EXPECT_CONTAINS(LoadError(","), "city.yaml:1: the file is empty");
  EXPECT_CONTAINS(LoadError(",\nname: a\n"), "city.yaml:1:");
  EXPECT_CONTAINS(LoadError("name: a\n--- ,\n"), "city.yaml:2: only one YAML document is allowed");
}

// Found by tests/fuzz/city_config_fuzz.cc: an unknown zone loaded (check-config said ok) and
// only Engine::Open refused it, so the server would not start on a config said to be valid.
TEST(LoadCityConfigText, UnknownTimeZoneIsAConfigError) {
  std::string yaml = Edit("time_zone: Asia/Shanghai", "time_zone: Asia/Shanghia");
  EXPECT_CONTAINS(LoadError(yaml),
                  At(yaml, "time_zone:") + "calendar.time_zone: time zone \"Asia/Shanghia\"");
}

// Found by tests/fuzz/city_config_fuzz.cc: text in another encoding (GBK) loaded, and a name
// that is not UTF-8 makes every protobuf record carrying it unparsable.
TEST(LoadCityConfigText, TextThatIsNotUtf8IsAConfigError) {
  std::string yaml = Edit("name: Testville", "name: \"Test\xb6\xab\"");
  EXPECT_CONTAINS(LoadError(yaml), "city.yaml:1: name: not valid UTF-8");
  for (std::string_view bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe4\xb8"}) {
    EXPECT_CONTAINS(LoadError(Edit("name: Testville", "name: \"T" + std::string(bad) + "\"")),
                    "not valid UTF-8");
  }
  auto loaded =
      LoadCityConfigText(Edit("name: Testville", "name: 东区 \xf0\x9f\x98\x80"), "city.yaml");
  EXPECT_TRUE(loaded) << loaded.error().message();
}

TEST(LoadCityConfigText, DeepNestingIsAnErrorNotACrash) {
  std::string yaml = "name: " + std::string(10000, '[') + std::string(10000, ']') + "\n";
  EXPECT_CONTAINS(LoadError(yaml), "nested too deep");
  std::string deep_map = "grids:";
  for (int i = 0; i < 200; ++i) deep_map += " {a:";
  deep_map += " 1" + std::string(200, '}') + "\n";
  EXPECT_CONTAINS(LoadError(deep_map), "city.yaml:1: grids: expected a sequence, got a mapping");
}

TEST(LoadCityConfigText, FiveMegabytesOfJunkIsAnError) {
  std::mt19937 random(42);
  std::string binary(5 << 20, '\0');
  for (char& c : binary) c = static_cast<char>(random());
  EXPECT_FALSE(LoadError(binary).empty());
  std::string brackets;
  const char kJunk[] = "[{:,-?&*!|>'\"%@`#\n ab";
  while (brackets.size() < (5u << 20)) brackets += kJunk[random() % (sizeof kJunk - 1)];
  EXPECT_FALSE(LoadError(brackets).empty());
  std::string text = "name: " + std::string(5 << 20, 'x') + "\n";
  EXPECT_CONTAINS(LoadError(text), "at least one district is required");
}

TEST(LoadCityConfigText, AliasesCannotMultiplyTheWork) {
  std::string yaml = "conds: &c [";
  for (int i = 0; i < 2000; ++i) yaml += "{id: x},";
  yaml += "]\ncategories:\n";
  yaml += "  - &k {code: \"1\", kind: event, conditions: *c}\n";
  for (int i = 0; i < 2000; ++i) yaml += "  - *k\n";
  EXPECT_CONTAINS(LoadError(yaml),
                  "too many values: aliases expand far beyond the size of the file");
}

// The reader is generic; Command has the oneof with many members that CityConfig lacks.
TEST(ReadYaml, AllowsOneMemberOfAOneof) {
  std::string yaml = "request_id: r1\nreject: {case_id: 1}\nclose: {case_id: 1}\n";
  casebus::v1::Command command;
  SourceLines lines;
  Problems problems("cmd.yaml");
  ReadYaml(yaml, command, lines, problems);
  EXPECT_EQ(problems.ToStatus().message(),
            "cmd.yaml:3: close: only one of body may be set, and reject already is");
  EXPECT_EQ(command.reject().case_id(), 1u);
  EXPECT_EQ(lines.Line("reject.case_id"), 2);
  EXPECT_EQ(lines.Line("reject.reason"), 2);  // absent: the line of its parent
}

TEST(ReadYaml, ConvertsBoolsAndChecksUnsignedRange) {
  casebus::v1::Command command;
  SourceLines lines;
  Problems problems("cmd.yaml");
  ReadYaml("verify: {case_id: -3, passed: yes}\n", command, lines, problems);
  std::string error = problems.ToStatus().message();
  EXPECT_CONTAINS(error, "cmd.yaml:1: verify.case_id: \"-3\" is out of range for uint64");
  EXPECT_CONTAINS(error, "cmd.yaml:1: verify.passed: expected true or false, got \"yes\"");
}

class LoadCityConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/config_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::remove((dir_ + "/city.yaml").c_str());
    rmdir(dir_.c_str());
  }
  std::string Write(std::string_view text) {
    std::string path = dir_ + "/city.yaml";
    std::FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return path;
  }
  std::string dir_;
};

TEST_F(LoadCityConfigFileTest, LoadsAFile) {
  auto loaded = LoadCityConfigFile(Write(kCity));
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ((*loaded)->departments_size(), 2);
}

TEST_F(LoadCityConfigFileTest, NamesTheFileInEveryProblem) {
  std::string path = Write(Edit("lat: 31.31", "lat: 91"));
  auto loaded = LoadCityConfigFile(path);
  ASSERT_FALSE(loaded);
  EXPECT_CONTAINS(loaded.error().message(), path + ":18: grids[0].lat: must be within");
}

TEST_F(LoadCityConfigFileTest, MissingFileIsNotFound) {
  auto loaded = LoadCityConfigFile(dir_ + "/absent.yaml");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code(), StatusCode::kNotFound);
  EXPECT_CONTAINS(loaded.error().message(), dir_ + "/absent.yaml");
}

TEST(ApplyDefaults, FillsWhatIsLeftOut) {
  CityConfig city;
  ApplyDefaults(city);
  const auto& calendar = city.calendar();
  EXPECT_EQ(calendar.time_zone(), "Asia/Shanghai");
  EXPECT_EQ(calendar.utc_offset_minutes(), 480);
  ASSERT_EQ(calendar.windows_size(), 2);
  EXPECT_EQ(calendar.windows(0).start(), "08:30");
  EXPECT_EQ(calendar.windows(0).end(), "12:00");
  EXPECT_EQ(calendar.windows(1).start(), "13:30");
  EXPECT_EQ(calendar.windows(1).end(), "17:30");
  EXPECT_EQ(std::vector<int>(calendar.work_weekdays().begin(), calendar.work_weekdays().end()),
            (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(city.dedup().radius_m(), 50);
  EXPECT_EQ(city.dedup().window_hours(), 24);
  EXPECT_EQ(city.intake().queue_capacity(), 65536u);
  EXPECT_EQ(city.intake().max_frame_bytes(), 1048576u);
  EXPECT_EQ(city.intake().max_commands_per_frame(), 1000u);
  EXPECT_EQ(city.intake().max_batch(), 4096u);
  CityConfig again = city;
  ApplyDefaults(again);
  EXPECT_EQ(again.SerializeAsString(), city.SerializeAsString());
}

TEST(ApplyDefaults, KeepsWhatIsGiven) {
  CityConfig city;
  city.mutable_calendar()->set_time_zone("Etc/UTC");
  city.mutable_calendar()->add_work_weekdays(6);
  city.mutable_dedup()->set_radius_m(10);
  city.mutable_intake()->set_max_batch(7);
  ApplyDefaults(city);
  EXPECT_EQ(city.calendar().time_zone(), "Etc/UTC");
  EXPECT_EQ(city.calendar().utc_offset_minutes(), 0);
  EXPECT_EQ(city.calendar().work_weekdays_size(), 1);
  EXPECT_EQ(city.dedup().radius_m(), 10);
  EXPECT_EQ(city.intake().max_batch(), 7u);
}

TEST(ValidateCityConfig, WorksWithoutLineNumbersForConfigsBuiltInCode) {
  auto loaded = LoadCityConfigText(kCity, "city.yaml");
  ASSERT_TRUE(loaded);
  CityConfig city = **loaded;
  EXPECT_TRUE(ValidateCityConfig(city, "built").ok());
  city.mutable_routes(0)->set_department("nobody");
  Status status = ValidateCityConfig(city, "built");
  EXPECT_EQ(status.message(), "built: routes[0].department: department \"nobody\" does not exist");
}

}  // namespace
}  // namespace casebus::config

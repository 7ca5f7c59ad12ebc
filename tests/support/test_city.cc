#include "tests/support/test_city.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/config/loader.h"

namespace casebus::testing {
namespace {

// Keep in step with the description in test_city.h.
constexpr std::string_view kSmallCity = R"(name: Testville
calendar:
  time_zone: Asia/Shanghai
  utc_offset_minutes: 480
  windows:
    - {start: "08:30", end: "12:00"}
    - {start: "13:30", end: "17:30"}
  work_weekdays: [1, 2, 3, 4, 5]
  holidays: ["2026-09-25", "2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"]
  make_up_days: ["2026-09-20", "2026-10-10"]
districts:
  - {code: "320501", name: 东区}
  - {code: "320502", name: 西区}
streets:
  - {code: "320501001", name: 东门街道}
  - {code: "320501002", name: 河东街道}
  - {code: "320502001", name: 西门街道}
communities:
  - {code: "320501001001", name: 长寿社区}
  - {code: "320501001002", name: 平安社区}
  - {code: "320501002001", name: 河滨社区}
  - {code: "320502001001", name: 西苑社区}
grids:
  - {code: "320501001001001", lat: 31.3000, lon: 120.6000}
  - {code: "320501001001002", lat: 31.3000, lon: 120.60105}
  - {code: "320501001002001", lat: 31.3009, lon: 120.6000}
  - {code: "320501002001001", lat: 31.3009, lon: 120.60105}
  - {code: "320502001001001", lat: 31.3018, lon: 120.6000}
  - {code: "320502001001002", lat: 31.3018, lon: 120.60105}
departments:
  - {id: command-320501, name: 东区指挥中心, adapter: {spool: {directory: spool/command-320501}}}
  - {id: command-320502, name: 西区指挥中心, adapter: {spool: {directory: spool/command-320502}}}
  - {id: water, name: 自来水公司, adapter: {spool: {directory: spool/water}}}
  - {id: drainage, name: 排水公司, adapter: {spool: {directory: spool/drainage}}}
  - {id: municipal, name: 市政设施管理处, adapter: {spool: {directory: spool/municipal}}}
  - {id: enforce, name: 综合行政执法局, adapter: {spool: {directory: spool/enforce}}}
  - {id: traffic, name: 交警大队, adapter: {spool: {directory: spool/traffic}}}
  - {id: housing, name: 住建局物业科, adapter: {spool: {directory: spool/housing}}}
  - {id: leadership, name: 城管委办公室, adapter: {spool: {directory: spool/leadership}}}
categories:
  - {code: "1001", name: 公用设施, kind: component}
  - code: "100101"
    name: 上水井盖
    kind: component
    parent: "1001"
    limits:
      accept: {value: 0.5, clock: urgent_hours}
      handle: {value: 2, clock: urgent_hours}
      verify: {value: 2, clock: working_hours}
      rework: {value: 1, clock: urgent_hours}
  - code: "100102"
    name: 污水井盖
    kind: component
    parent: "1001"
    limits:
      accept: {value: 1, clock: urgent_hours}
      handle: {value: 4, clock: urgent_hours}
      verify: {value: 2, clock: urgent_hours}
  - {code: "2001", name: 市容环境, kind: event}
  - code: "200101"
    name: 下水道堵塞
    kind: event
    parent: "2001"
    limits:
      accept: {value: 1, clock: working_hours}
      handle: {value: 4, clock: working_hours}
      verify: {value: 2, clock: working_hours}
  - code: "200102"
    name: 违章停车
    kind: event
    parent: "2001"
    limits:
      accept: {value: 0.5, clock: working_hours}
      handle: {value: 1, clock: working_hours}
      verify: {value: 1, clock: working_hours}
  - code: "200103"
    name: 道路破损
    kind: event
    parent: "2001"
    limits:
      accept: {value: 2, clock: working_hours}
      handle: {value: 3, clock: working_days}
      verify: {value: 4, clock: working_hours}
    conditions:
      - id: excavation
        name: 非法开挖
        limits:
          handle: {value: 4, clock: working_hours}
      - id: cracks
        name: 路面裂缝
        limits:
          handle: {value: 5, clock: working_days}
  - {code: "3001", name: 12345热线, kind: topic}
  - code: "300101"
    name: 物业管理
    kind: topic
    parent: "3001"
    limits:
      accept: {value: 1, clock: working_days}
      handle: {value: 5, clock: working_days}
      verify: {value: 1, clock: working_days}
routes:
  - {id: r-default-320501, place_prefix: "320501", department: command-320501}
  - {id: r-default-320502, place_prefix: "320502", department: command-320502}
  - {id: r-facilities, category_prefix: "1001", department: drainage}
  - {id: r-cover, category_prefix: "100101", department: water}
  - {id: r-drain-320501, category_prefix: "200101", place_prefix: "320501", department: drainage}
  - {id: r-drain-320501002, category_prefix: "200101", place_prefix: "320501002", department: municipal}
  - {id: r-parking, category_prefix: "200102", department: enforce}
  - {id: r-parking-sensor, category_prefix: "200102", source: sensor, department: traffic}
  - {id: r-road, category_prefix: "200103", department: municipal}
  - {id: r-road-excavation, category_prefix: "200103", condition: excavation, department: enforce}
  - {id: r-property, category_prefix: "300101", department: housing}
assets:
  - {id: "3205010101000001", category: "100101", grid: "320501001001002", owner: 自来水公司, maintainer: municipal}
  - {id: "3205020102000001", category: "100102", grid: "320502001001002", owner: 排水公司, maintainer: drainage}
escalation:
  district_centers:
    - {district: "320501", department: command-320501}
    - {district: "320502", department: command-320502}
  leadership: leadership
)";

std::shared_ptr<const v1::CityConfig> LoadOrDie(std::string_view yaml, std::string_view name) {
  auto loaded = config::LoadCityConfigText(yaml, name);
  if (!loaded) {
    std::fprintf(stderr, "test city %.*s does not load:\n%s\n", static_cast<int>(name.size()),
                 name.data(), loaded.error().message().c_str());
    std::abort();
  }
  return *loaded;
}

}  // namespace

std::shared_ptr<const v1::CityConfig> SmallCity() {
  static const auto city = LoadOrDie(kSmallCity, "small-city");
  return city;
}

std::shared_ptr<const v1::CityConfig> SampleCity() {
  static const auto city = [] {
    const std::string path = std::string(CASEBUS_SOURCE_DIR) + "/deploy/config/sample-city.yaml";
    auto loaded = config::LoadCityConfigFile(path);
    if (!loaded) {
      std::fprintf(stderr, "%s does not load:\n%s\n", path.c_str(),
                   loaded.error().message().c_str());
      std::abort();
    }
    return *loaded;
  }();
  return city;
}

}  // namespace casebus::testing

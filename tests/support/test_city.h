#pragma once
// Test cities: validated, immutable CityConfig snapshots for unit tests. The first call loads the
// YAML through the config loader (so validation has passed and defaults are applied), later calls
// return the same snapshot; if a city ever stops loading, the test binary aborts with the
// loader's message. Thread-safe (function-local statics).
//
// SmallCity() — a tiny hand-written city, "Testville". Tests depend on every value below:
// change them only together with the tests that use them, and add rather than edit.
//
//   calendar   Asia/Shanghai, utc_offset_minutes 480; windows 08:30–12:00, 13:30–17:30;
//              weekdays Mon–Fri; holidays 2026-09-25 (Fri), 2026-10-01, -02, -05, -06, -07;
//              make-up working days 2026-09-20 (Sun), 2026-10-10 (Sat).
//   places     districts 320501 东区, 320502 西区
//              streets 320501001, 320501002, 320502001
//              communities 320501001001, 320501001002, 320501002001, 320502001001
//              grids (centroids ~100 m apart: +0.0009° lat ≈ 100 m, +0.00105° lon ≈ 100 m):
//                320501001001001  31.3000, 120.6000    320501001001002  31.3000, 120.60105
//                320501001002001  31.3009, 120.6000    320501002001001  31.3009, 120.60105
//                320502001001001  31.3018, 120.6000    320502001001002  31.3018, 120.60105
//   departments (all spool adapters, directory spool/<id>)
//              command-320501, command-320502  district command centres (catch-all)
//              water, drainage, municipal, enforce, traffic, housing
//              leadership                      city leadership (督办), no route leads to it
//   categories 1001 公用设施 component class
//                100101 上水井盖 well cover: accept 0.5 urgent_hours, handle 2 urgent_hours,
//                       verify 2 working_hours, rework 1 urgent_hours
//                100102 污水井盖 sewage cover: accept 1, handle 4, verify 2 (all urgent_hours)
//              2001 市容环境 event class
//                200101 下水道堵塞 drain clog: accept 1, handle 4, verify 2 (all working_hours)
//                200102 违章停车 illegal parking: accept 0.5, handle 1, verify 1 (working_hours)
//                200103 道路破损 road damage: accept 2 working_hours, handle 3 working_days,
//                       verify 4 working_hours; conditions
//                         excavation 非法开挖: handle 4 working_hours
//                         cracks     路面裂缝: handle 5 working_days
//              3001 12345 热线 topic class
//                300101 物业管理 property management: accept 1, handle 5, verify 1 (working_days)
//   routes     r-default-320501  place 320501                  → command-320501
//              r-default-320502  place 320502                  → command-320502
//              r-facilities      category 1001                 → drainage
//              r-cover           category 100101               → water
//              r-drain-320501    category 200101, place 320501 → drainage
//              r-drain-320501002 category 200101, place 320501002 → municipal
//              r-parking         category 200102               → enforce
//              r-parking-sensor  category 200102, source sensor → traffic
//              r-road            category 200103               → municipal
//              r-road-excavation category 200103, condition excavation → enforce
//              r-property        category 300101               → housing
//   assets     3205010101000001  100101 at 320501001001002, maintainer municipal
//              3205020102000001  100102 at 320502001001002, maintainer drainage
//   dedup      defaults: radius 50 m, window 24 h
//   escalation district centres 320501 → command-320501, 320502 → command-320502;
//              leadership → leadership; no ladder, so ApplyLadderDefaults' default applies:
//                accept  reminder 0.5 → department; accept-overdue 1.0 → district centre, yellow
//                handle  reminder 0.5 → department; yellow 0.8 → department, yellow;
//                        red 1.0 → district centre, red (overdue);
//                        supervise 2.0 → leadership, red, supervision (督办)
//                verify  verify-overdue 1.0 → district centre
//
// SampleCity() — deploy/config/sample-city.yaml (the demo city), read from the source tree.

#include <memory>

#include "casebus/v1/config.pb.h"

namespace casebus::testing {

std::shared_ptr<const v1::CityConfig> SmallCity();
std::shared_ptr<const v1::CityConfig> SampleCity();

}  // namespace casebus::testing

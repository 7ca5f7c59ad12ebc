#!/usr/bin/env bash
# Writes the frame target's seeds: casebus.v1.Request messages in text format (below), encoded
# by protoc against protos/ into corpus/frame/seed-<name>.bin. Values are the test city's
# (tests/support/test_city.h), so reports pass CheckCommand and reach the Router.
# Rerun after a change to command.proto; then minimise with `-merge=1` (README.md).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PROTOS="$HERE/../../protos"
OUT="$HERE/corpus/frame"
mkdir -p "$OUT"

seed() {  # seed NAME < text-format Request
  protoc --encode=casebus.v1.Request -I "$PROTOS" casebus/v1/command.proto >"$OUT/seed-$1.bin"
}

seed report <<'T'
version: 1
commands {
  request_id: "r-report-1" actor: "inspector-07"
  report {
    category: "200101" condition: ""
    place { grid: "320501001001001" lat: 31.3 lon: 120.6 has_coordinates: true address: "东门街道1号" }
    source: INSPECTOR urgency: URGENT description: "下水道堵塞"
    reporter { name: "张三" contact: "13800000000" }
  }
}
T

seed report_asset <<'T'
version: 1
commands {
  request_id: "r-asset" actor: "hotline"
  report {
    category: "100101" place { grid: "320501001001002" } source: HOTLINE
    asset_id: "3205010101000001"
  }
}
T

seed lifecycle <<'T'
version: 1
commands { request_id: "a1" actor: "op" register { case_id: 1 condition: "excavation" } }
commands { request_id: "a2" actor: "op" dispatch { case_id: 1 department: "water" } }
commands { request_id: "a3" actor: "water" accept { case_id: 1 work_order_id: "1-1" } }
commands { request_id: "a4" actor: "water" resolve { case_id: 1 evidence: "photo://a.jpg" evidence: "photo://b.jpg" note: "done" } }
commands { request_id: "a5" actor: "op" verify { case_id: 1 passed: false reason: "still wet" } }
commands { request_id: "a6" actor: "op" close { case_id: 1 } }
T

seed side_paths <<'T'
version: 1
commands { request_id: "b1" actor: "water" return { case_id: 2 reason: "not ours" } }
commands { request_id: "b2" actor: "water" request_extension { case_id: 2 hours: 16 reason: "parts" } }
commands { request_id: "b3" actor: "op" approve_extension { case_id: 2 hours: 8 } }
commands { request_id: "b4" actor: "op" deny_extension { case_id: 2 reason: "no" } }
commands { request_id: "b5" actor: "op" suspend { case_id: 2 reason: "winter" } }
commands { request_id: "b6" actor: "op" resume { case_id: 2 } }
commands { request_id: "b7" actor: "op" reopen { case_id: 2 reason: "again" } }
commands { request_id: "b8" actor: "op" merge { case_id: 3 into_case_id: 2 } }
commands { request_id: "b9" actor: "op" void { case_id: 4 reason: "test" } }
commands { request_id: "b10" actor: "water" note { case_id: 2 text: "crew on site" } }
commands { request_id: "b11" actor: "water" supervision_reply { case_id: 2 text: "fixed" } }
commands { request_id: "b12" actor: "op" reject { case_id: 5 reason: "duplicate" } }
T

seed caller <<'T'
version: 1
commands {
  request_id: "c1" actor: "roads" caller { name: "roads" role: DEPARTMENT departments: "water" }
  accept { case_id: 7 }
}
T

seed query_show <<'T'
version: 1
query { show { case_id: 1 } }
T

seed query_list <<'T'
version: 1
query {
  list { state: DISPATCHED department: "water" district: "320501" overdue: true limit: 10
         after_case_id: 3 light: RED min_level: 1 by_deadline: true category: "200101"
         reported_from_ms: 1 reported_to_ms: 2000000000000 open_only: true work_orders: true }
  caller { name: "lead" role: LEADER }
}
T

seed query_metrics <<'T'
version: 1
query { metrics { group_by: BY_DISTRICT_CLASS from: "2026-11-01" to: "2026-11-30" } }
T

seed query_dead_letters <<'T'
version: 1
query { dead_letters { action: RETRY ids: "7-1" ids: "8-1" all: false limit: 5 actor: "admin" } }
T

seed query_status <<'T'
version: 1
query { status { } }
T

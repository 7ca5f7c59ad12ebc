#!/usr/bin/env bash
# Writes the city_config target's seeds into corpus/city_config/: the two cities embedded in
# the tests (SmallCity of tests/support/test_city.cc, the config test's Testville) as they
# are, and the small city with every optional section added (adapters of all four kinds,
# gateway, callback, dedup, intake, delivery, metrics, escalation ladder). Each must load:
# check with `build/bin/casebus check-config FILE`. deploy/config/sample-city.yaml (133 KB) is
# above the fuzzer's -max_len; the replay test reads it from deploy/ directly instead.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT="$HERE/corpus/city_config"
mkdir -p "$OUT"

# embedded FILE NAME: the raw string `constexpr std::string_view NAME = R"(` ... `)";`.
embedded() {
  awk -v name="$2" '
    index($0, "constexpr std::string_view " name " = R\"(") { on = 1; sub(/.*R"\(/, ""); print; next }
    on && /^\)";/ { exit }
    on { print }' "$1"
}

embedded "$ROOT/tests/support/test_city.cc" kSmallCity >"$OUT/seed-small-city.yaml"
embedded "$ROOT/tests/engine/config/config_test.cc" kCity >"$OUT/seed-config-test-city.yaml"

{
  sed -e 's#  - {id: traffic, name: 交警大队, adapter: {spool: {directory: spool/traffic}}}#  - {id: traffic, name: 交警大队, adapter: {webhook: {url: "https://traffic.example.gov/hooks/", secret_env: TRAFFIC_SECRET}}}#' \
      -e 's#  - {id: housing, name: 住建局物业科, adapter: {spool: {directory: spool/housing}}}#  - {id: housing, name: 住建局物业科, adapter: {zmq: {client_keys: ["rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"]}}}#' \
      -e 's#  - {id: enforce, name: 综合行政执法局, adapter: {spool: {directory: spool/enforce}}}#  - id: enforce\n    name: 综合行政执法局\n    adapter:\n      open311:\n        endpoint: "https://311.example.gov/open311/v2/"\n        api_key_env: OPEN311_KEY\n        jurisdiction_id: example.gov\n        service_codes: [{category: "200102", service_code: "parking"}]\n        poll_interval_ms: 30000#' \
      "$OUT/seed-small-city.yaml"
  cat <<'YAML'
webhook_allow: ["https://traffic.example.gov/", "https://311.example.gov/"]
zmq_gateway: {endpoint: "tcp://127.0.0.1:5601", secret_key_env: GATEWAY_SECRET}
webhook_callback: {listen: "127.0.0.1:7460"}
dedup: {radius_m: 30, window_hours: 12}
intake: {queue_capacity: 4096, max_frame_bytes: 65536, max_commands_per_frame: 100, max_batch: 512, request_id_window_hours: 48}
delivery: {backoff_base_ms: 500, backoff_cap_ms: 60000, max_attempts: 20, max_age_hours: 24, breaker_failures: 3, breaker_cooldown_ms: 1000, breaker_cooldown_cap_ms: 60000, max_retry_after_ms: 600000, workers: 2, timeout_ms: 5000}
metrics:
  closure_denominator: registered_less_pending
  rework_denominator: registered_cases
  min_sample: 5
  index:
    - {rate: handling_rate, weight: 40}
    - {rate: rework_rate, weight: 30, inverse: true}
    - {rate: extension_rate, weight: 30, inverse: true}
YAML
} >"$OUT/seed-rich-city.yaml"
# The ladder goes inside the escalation mapping the small city already has.
python3 - "$OUT/seed-rich-city.yaml" <<'PY'
import sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
ladder = """escalation:
  ladder:
    accept:
      - {id: reminder, fraction: 0.5, target: responsible_department}
      - {id: accept-overdue, fraction: 1.0, target: district_center, light: yellow}
    handle:
      - {id: yellow, fraction: 0.8, target: responsible_department, light: yellow}
      - {id: supervise, fraction: 2.0, target: leadership, light: red, supervision: true}
    verify:
      - {id: verify-overdue, fraction: 1.0, target: district_center}
"""
assert text.count("escalation:\n") == 1
open(path, "w", encoding="utf-8").write(text.replace("escalation:\n", ladder, 1))
PY
ls -l "$OUT"

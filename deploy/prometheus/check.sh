#!/usr/bin/env bash
# check.sh: validates the Prometheus files in this folder with promtool.
#   promtool check config prometheus.yml   the scrape config, and the rule files it loads
#   promtool check rules alerts.yml        rule syntax, PromQL, templates, duplicates
#   promtool test rules alerts_test.yml    every alert fires and stays silent as tested
# All three run even if one fails. Exit status: 0 all passed, 1 any failed, 77 promtool is
# missing (Debian package `prometheus`; 77 is ctest's usual SKIP_RETURN_CODE).
# Usage: deploy/prometheus/check.sh  (from anywhere; PROMTOOL=/path/to/promtool to override)
set -uo pipefail
cd "$(dirname "$0")"

PROMTOOL=${PROMTOOL:-promtool}
if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
  echo "check.sh: $PROMTOOL not found (apt-get install prometheus)" >&2
  exit 77
fi

failed=0
step() {
  echo "== $PROMTOOL $*"
  if ! "$PROMTOOL" "$@"; then
    echo "check.sh: FAILED: $PROMTOOL $*" >&2
    failed=$((failed + 1))
  fi
}

step check config prometheus.yml
step check rules alerts.yml
step test rules alerts_test.yml

if [ "$failed" -ne 0 ]; then
  echo "check.sh: $failed of 3 checks failed" >&2
  exit 1
fi
echo "check.sh: 3 of 3 checks passed"

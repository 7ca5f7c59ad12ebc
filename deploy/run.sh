#!/usr/bin/env bash
# The README's two commands:
#   deploy/run.sh demo   — a synthetic week of the sample city, then closure tables
#   deploy/run.sh test   — the whole test suite
# Each installs missing Debian packages (non-interactive, idempotent), configures and builds
# what is stale (Ninja, -j2), then runs. Also: build, serve [args], bench, sanitize.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${CASEBUS_BUILD_DIR:-$ROOT/build}

PACKAGES=(
  cmake ninja-build g++ pkg-config
  libboost1.81-dev libboost-program-options1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libzmq3-dev cppzmq-dev libprotobuf-dev protobuf-compiler librocksdb-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev libyaml-cpp-dev libexpected-dev libabsl-dev libjemalloc-dev libxxhash-dev
  libhowardhinnant-date-dev libssl-dev openssl zlib1g-dev python3 python3-zmq
  prometheus chromium fonts-noto-cjk curl python3-yaml
  clang-14 libclang-rt-14-dev
)
# Only for `bench`: the peers it measures casebus beside (bench/peers) and the profiler.
BENCH_PACKAGES=(postgresql libpq-dev nats-server libnats-dev linux-perf)

log() { printf '[run.sh] %s\n' "$*" >&2; }

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${#missing[@]} Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  if [ ! -f "$BUILD/build.ninja" ]; then
    log "configuring $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  log "building (ninja -j2; only what is stale)"
  # Only grep's "nothing left to print" is ignored: a failed build stops here (pipefail).
  ninja -C "$BUILD" -j2 | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }
  test "${PIPESTATUS[0]}" -eq 0
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    install_missing; build
    exec "$BUILD/bin/casebus" demo "$@"
    ;;
  test)
    install_missing; build
    log "running the test suite"
    cd "$BUILD"
    exec ctest --output-on-failure -j2 --timeout 900 "$@"
    ;;
  build)
    install_missing; build
    ;;
  serve)
    install_missing; build
    exec "$BUILD/bin/casebus" serve "$@"
    ;;
  bench)
    PACKAGES+=("${BENCH_PACKAGES[@]}")
    install_missing; build
    log "building the benchmarks (ninja bench_targets)"
    ninja -C "$BUILD" -j2 bench_targets | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }
    test "${PIPESTATUS[0]}" -eq 0
    exec "$ROOT/bench/run.sh" "$@"
    ;;
  sanitize)
    # The suite under ASan+UBSan, then the threaded parts under TSan (separate builds; slow).
    install_missing
    for s in address,undefined thread; do
      dir="$ROOT/build-${s//,/-}"
      [ -f "$dir/build.ninja" ] || cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
        -DCASEBUS_SANITIZE="$s" >/dev/null
      log "building with -fsanitize=$s in $dir"
      ninja -C "$dir" -j2 >/dev/null
      log "running the suite under $s"
      (cd "$dir" && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 CASEBUS_KILL9_CYCLES=5 \
        TSAN_OPTIONS="halt_on_error=1 suppressions=$ROOT/tests/tsan.supp" \
        ctest --output-on-failure -j2 --timeout 1800)
    done
    ;;
  *)
    echo "usage: deploy/run.sh demo|test|build|serve|bench|sanitize [args]" >&2
    exit 2
    ;;
esac

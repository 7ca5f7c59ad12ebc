#pragma once
// BuildOpenCases: fills a fresh data directory with N open cases — reported, registered and
// dispatched, their work orders in the outbox — and optionally closed ones beside them (a
// city's history), through an in-process server::Engine (sync
// off, no dispatcher), `frame` commands per Request, for benchmarks that need a big live city
// (restart_bench). Runs on the calling thread (the Engine has its own); progress on stderr.
//
// Places: categories go round the config's leaf categories and grids as in apply_bench; each
// category's reports sit on their own 60 m lattice around the city's middle (the sample city's
// dedup radius is 50 m), so no report merges; with millions of cases the lattice reaches past
// the city's grids (only dedup reads the coordinates). Time: a ManualClock one day after the
// wall clock, +1 ms per Request of reports, so that no ladder step comes due for a day of wall
// time after the build.

#include <cstdint>
#include <memory>
#include <string>

#include "casebus/v1/config.pb.h"

namespace casebus::bench {

// Plain data: it may cross a pipe from a child process.
struct OpenCasesResult {
  bool ok = false;
  uint64_t open = 0, closed = 0, commands = 0, data_bytes = 0;
  double seconds = 0;
  double bytes_per_case = 0;  // this process's RSS growth while building, per case
  char error[240] = {};       // when !ok
};

struct OpenCasesOptions {
  int frame = 1000;  // commands per Request
  int window = 16;   // cases' Requests in flight, in units of `frame` cases
  // History besides the open cases: this many closed cases per open one, each through the
  // whole loop (report, register, dispatch, accept, resolve, verify, close: 7 journal records),
  // a frame of closed cases between frames of open ones. 0: open cases only.
  int closed_per_open = 0;
  // Stop (and fail) when the machine's MemAvailable falls below this many bytes: a safety net
  // under the caller's estimate, before the kernel's OOM killer picks a process. 0: never.
  int64_t min_available_bytes = 0;
};

// n: open cases. REQUIRES: data_dir does not exist or is empty; n > 0.
OpenCasesResult BuildOpenCases(std::shared_ptr<const v1::CityConfig> config, uint64_t n,
                               const std::string& data_dir, OpenCasesOptions options = {});

}  // namespace casebus::bench

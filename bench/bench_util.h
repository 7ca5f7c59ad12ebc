#pragma once
// Small helpers every benchmark program shares: the city config or a clear exit, and the
// process's memory as Linux reports it (for sizes that may not fit).

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <string>

#include "casebus/v1/config.pb.h"
#include "engine/config/loader.h"

namespace casebus::bench {

// The validated city config at `path`; on any error prints the loader's message (file:line)
// after the program's name and exits 1.
// Fills `o` from the command line with parse(argc, argv, o). When it returns false or throws
// (std::stoull and kin on a malformed number), prints "usage: <usage>" and exits with status 2.
template <typename Options, typename Parse>
void ParseArgsOrExit(int argc, char** argv, Options& o, Parse parse, const char* usage) {
  bool ok = false;
  try {
    ok = parse(argc, argv, o);
  } catch (const std::exception&) {
  }
  if (ok) return;
  std::fprintf(stderr, "usage: %s\n", usage);
  std::exit(2);
}

inline std::shared_ptr<const v1::CityConfig> LoadCityOrExit(const std::string& path, const char* program) {
  auto cfg = config::LoadCityConfigFile(path);
  if (!cfg) {
    std::fprintf(stderr, "%s: %s\n", program, cfg.error().message().c_str());
    std::exit(1);
  }
  return *cfg;
}

// Resident set of this process, bytes.
inline int64_t RssBytes() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// MemAvailable of /proc/meminfo, bytes (0 when unreadable).
inline int64_t MemAvailableBytes() {
  std::ifstream f("/proc/meminfo");
  std::string key, unit;
  int64_t kb = 0;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

}  // namespace casebus::bench

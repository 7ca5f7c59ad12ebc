#pragma once
// Small helpers every benchmark program shares: the city config or a clear exit, and the
// process's memory as Linux reports it (for sizes that may not fit).

#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
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

// The whole number `text` given for `flag`, from `min` to `max`; anything else (empty, not a
// number, trailing characters, out of range) prints "<program>: <flag>: '<text>' is not a
// whole number from <min> to <max>" and exits 2, so a typo never runs a benchmark on a default.
template <typename Int>
Int NumberOrExit(const char* program, const std::string& flag, const char* text, Int min, Int max) {
  Int v{};
  const char* end = text + std::char_traits<char>::length(text);
  const auto [at, ec] = std::from_chars(text, end, v);
  if (ec != std::errc() || at != end || at == text || v < min || v > max) {
    std::fprintf(stderr, "%s: %s: '%s' is not a whole number from %lld to %lld\n", program, flag.c_str(), text,
                 static_cast<long long>(min), static_cast<long long>(max));
    std::exit(2);
  }
  return v;
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

// CPU time (user + system) a process has used, its reaped children's included (the server's
// forked checkpoint writers), seconds; -1 when /proc has no such process.
inline double ProcessCpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  double ticks = 0;
  // After the command name: state is field 3; utime, stime, cutime, cstime are 14–17.
  for (int n = 3; n <= 17 && fields >> field; ++n)
    if (n >= 14) ticks += std::strtod(field.c_str(), nullptr);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU time (user + system) of this process, all its threads, seconds.
inline double SelfCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
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

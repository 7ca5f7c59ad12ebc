#pragma once
// Small helpers every benchmark program shares: the city config or a clear exit, and the
// process's memory as Linux reports it (for sizes that may not fit).

#include <time.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "casebus/v1/config.pb.h"
#include "engine/config/loader.h"

namespace casebus::bench {

// The validated city config at `path`; on any error prints the loader's message (file:line)
// after the program's name and exits 1.
// A flag's value that cannot be used; what() names the flag and says why.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The whole of `text` as a number for `flag`, from `min` to `max`; throws ArgError otherwise
// ("1e6", "12x", "" and "-1" for an unsigned are refused, never read as 1, 12, 0 or a huge
// number).
template <typename T>
T ParseNumber(const std::string& flag, std::string_view text, T min, T max) {
  T v{};
  const char* end = text.data() + text.size();
  const auto [at, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || at != end || text.empty() || !(v >= min) || !(v <= max)) {
    std::ostringstream why;
    why << flag << ": '" << text << "' is not a " << (std::is_integral_v<T> ? "whole " : "") << "number from "
        << +min << " to " << +max;
    throw ArgError(why.str());
  }
  return v;
}

// A comma-separated list of ParseNumber values (at least one).
template <typename T>
std::vector<T> ParseNumbers(const std::string& flag, const std::string& text, T min, T max) {
  std::vector<T> out;
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, ',');) out.push_back(ParseNumber<T>(flag, part, min, max));
  if (out.empty()) throw ArgError(flag + ": needs at least one number");
  return out;
}

// Fills `o` from the command line with parse(argc, argv, o). When it returns false or throws
// (std::stoull and kin on a malformed number), prints "usage: <usage>" and exits with status 2.
template <typename Options, typename Parse>
void ParseArgsOrExit(int argc, char** argv, Options& o, Parse parse, const char* usage) {
  bool ok = false;
  try {
    ok = parse(argc, argv, o);
  } catch (const ArgError& e) {
    std::fprintf(stderr, "%s\n", e.what());  // names the flag and why
  } catch (const std::exception&) {
  }
  if (ok) return;
  std::fprintf(stderr, "usage: %s\n", usage);
  std::exit(2);
}

// ParseNumber for a program that parses its own flags: on a refusal prints "<program>:
// <flag>: '<text>' is not a whole number from <min> to <max>" and exits 2, so a typo never
// runs a benchmark on a default.
template <typename Int>
Int NumberOrExit(const char* program, const std::string& flag, const char* text, Int min, Int max) {
  try {
    return ParseNumber<Int>(flag, text, min, max);
  } catch (const ArgError& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    std::exit(2);
  }
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

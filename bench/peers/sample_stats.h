#pragma once
// Order statistics and the flag parsing the peer benchmarks share. Header-only, values only.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace casebus::bench {

// Nearest-rank percentile, q in [0, 1]; 0 for no samples. Sorts `v`.
inline double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// The middle value (the upper one of an even count), as bench/e2e_throughput reports it.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// "1000000,10000000" → {1000000, 10000000}; empty on a malformed list.
inline std::vector<uint64_t> ParseSizes(const std::string& list) {
  std::vector<uint64_t> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    char* end = nullptr;
    const std::string item = list.substr(pos, comma - pos);
    const unsigned long long n = std::strtoull(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || n == 0) return {};
    out.push_back(n);
    pos = comma + 1;
  }
  return out;
}

}  // namespace casebus::bench

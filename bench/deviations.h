#pragma once
// Deviations: where casebus answered other than a workload plan expected (bench/workload) —
// refusals by step and code with the first message of each, duplicates that did not merge and
// reports that merged unplanned. Client threads record (rarely: a lock per record is fine);
// the run prints them to stderr at its end.

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

#include "bench/workload/workload.h"
#include "casebus/v1/command.pb.h"

namespace casebus::bench {

class Deviations {
 public:
  void Refused(StepKind step, v1::Code code, const std::string& message) {
    std::lock_guard lock(mu_);
    Entry& e = refused_[std::string(StepName(step)) + " " + v1::Code_Name(code)];
    if (e.count++ == 0) e.first_message = message;
  }
  // A report's reply merged differently from the plan (planned_duplicate: the plan said merge).
  void MergeMismatch(bool planned_duplicate) {
    std::lock_guard lock(mu_);
    ++(planned_duplicate ? unmerged_duplicates_ : unplanned_merges_);
  }
  uint64_t refused() const {
    std::lock_guard lock(mu_);
    uint64_t n = 0;
    for (const auto& [key, e] : refused_) n += e.count;
    return n;
  }
  void Print(const char* run) const {
    std::lock_guard lock(mu_);
    for (const auto& [key, e] : refused_)
      std::fprintf(stderr, "  %s: %llu × %s refused, first: %s\n", run,
                   static_cast<unsigned long long>(e.count), key.c_str(), e.first_message.c_str());
    if (unmerged_duplicates_ + unplanned_merges_ > 0)
      std::fprintf(stderr,
                   "  %s: %llu duplicates not merged (their case had ended), %llu reports "
                   "merged unplanned\n",
                   run, static_cast<unsigned long long>(unmerged_duplicates_),
                   static_cast<unsigned long long>(unplanned_merges_));
  }

 private:
  struct Entry {
    uint64_t count = 0;
    std::string first_message;
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> refused_;
  uint64_t unmerged_duplicates_ = 0, unplanned_merges_ = 0;
};

}  // namespace casebus::bench

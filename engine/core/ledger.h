#pragma once
// Ledger: closure counters per department and per district, maintained as events apply —
// the deadline timer's EV_OVERDUE moves a case into 应结案 and overdue-open at the instant it
// passes its deadline, so a closure query at "now" reads counters instead of scanning cases.
//
// Each case contributes to one department row (its current department) and one district row;
// on every change the case's old contribution is taken out and the new one put in, so a
// re-dispatch moves the case between departments. Merged cases count nowhere.
// Owned by the CaseMachine; shard thread only. Periods (day/week/month) and the other
// counters of DESIGN.md come with the metrics issue.

#include <cstdint>
#include <map>
#include <string>

#include "casebus/v1/case.pb.h"
#include "casebus/v1/command.pb.h"

namespace casebus::core {

class Ledger {
 public:
  // What one case adds to the counters.
  struct Contribution {
    std::string department, district;
    uint32_t flags = 0;  // bits, see ledger.cc
    bool counted = false;
    bool operator==(const Contribution&) const = default;
  };
  // nullptr (no case yet) contributes nothing.
  static Contribution Of(const v1::Case* c);
  // Takes `before` out and puts `after` in.
  void Move(const Contribution& before, const Contribution& after);
  const std::map<std::string, v1::ClosureRow>& by_department() const { return by_department_; }
  const std::map<std::string, v1::ClosureRow>& by_district() const { return by_district_; }

 private:
  void Add(const Contribution& k, int sign);

  std::map<std::string, v1::ClosureRow> by_department_, by_district_;
};

// Counts one case into a row as of `as_of` from its fields (the scan the ledger must equal).
void CountCase(v1::ClosureRow& row, const v1::Case& c, int64_t as_of);
bool Undisposed(v1::CaseState s);
bool Disposed(v1::CaseState s);

}  // namespace casebus::core

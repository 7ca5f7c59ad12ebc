#include "engine/core/escalation.h"

#include <algorithm>

namespace casebus::core {
namespace {

std::vector<v1::EscalationStep> Sorted(const google::protobuf::RepeatedPtrField<v1::EscalationStep>& steps) {
  std::vector<v1::EscalationStep> v(steps.begin(), steps.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.fraction() < b.fraction(); });
  return v;
}

}  // namespace

EscalationLadder::EscalationLadder(const v1::CityConfig& config)
    : accept_(Sorted(config.escalation().ladder().accept())),
      handle_(Sorted(config.escalation().ladder().handle())),
      verify_(Sorted(config.escalation().ladder().verify())),
      leadership_(config.escalation().leadership()) {
  for (const auto& dc : config.escalation().district_centers())
    district_centers_[dc.district()] = dc.department();
}

const std::vector<v1::EscalationStep>& EscalationLadder::Steps(v1::Stage stage) const {
  switch (stage) {
    case v1::ACCEPT: return accept_;
    case v1::HANDLE: return handle_;
    case v1::VERIFY: return verify_;
    default: return none_;
  }
}

std::string EscalationLadder::Target(const v1::EscalationStep& step, const v1::Case& c) const {
  switch (step.target()) {
    case v1::RESPONSIBLE_DEPARTMENT:
      // A returned case waits for the dispatcher, not for the department that returned it.
      if (c.state() != v1::RETURNED) return c.department();
      [[fallthrough]];
    case v1::DISTRICT_CENTER: {
      auto it = district_centers_.find(c.place().grid().substr(0, 6));
      return it != district_centers_.end() ? it->second : leadership_;
    }
    case v1::LEADERSHIP:
      return leadership_;
    default:
      return "";
  }
}

}  // namespace casebus::core

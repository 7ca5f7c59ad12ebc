// Validation of the escalation ladder (config.proto: Escalation, EscalationStep).

#include <algorithm>
#include <unordered_set>

#include "engine/config/city_checker.h"

namespace casebus::config {
namespace {

bool SafeStepId(const std::string& id) {
  return !id.empty() && id.size() <= 32 &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
         });
}

}  // namespace

void CityChecker::CheckEscalation() {
  const auto& esc = config_.escalation();
  auto check_steps = [&](const google::protobuf::RepeatedPtrField<casebus::v1::EscalationStep>& steps,
                         const std::string& list) {
    std::unordered_set<std::string> ids;
    std::unordered_set<double> fractions;
    for (int i = 0; i < steps.size(); ++i) {
      const auto& s = steps[i];
      const std::string path = At(list, i);
      if (!SafeStepId(s.id()))
        Report(path + ".id", "must be 1..32 characters of [a-z0-9_-], got " + Quote(s.id()));
      else if (!ids.insert(s.id()).second)
        Report(path + ".id", "duplicate step id " + Quote(s.id()) + " in this stage");
      if (!(s.fraction() > 0) || s.fraction() > 100)
        Report(path + ".fraction", "must be > 0 and <= 100 (a share of the limit), got " +
                                       Number(s.fraction()));
      else if (!fractions.insert(s.fraction()).second)
        Report(path + ".fraction", "two steps of one stage at the same fraction " +
                                       Number(s.fraction()));
      if (s.target() == casebus::v1::TARGET_UNSPECIFIED)
        Report(path + ".target", "required: responsible_department, district_center or leadership");
    }
  };
  check_steps(esc.ladder().accept(), "escalation.ladder.accept");
  check_steps(esc.ladder().handle(), "escalation.ladder.handle");
  check_steps(esc.ladder().verify(), "escalation.ladder.verify");
  std::unordered_set<std::string> centers;
  for (int i = 0; i < esc.district_centers_size(); ++i) {
    const auto& dc = esc.district_centers(i);
    const std::string path = At("escalation.district_centers", i);
    if (!districts_.count(dc.district()))
      Report(path + ".district", "unknown district " + Quote(dc.district()));
    else if (!centers.insert(dc.district()).second)
      Report(path + ".district", "district " + Quote(dc.district()) + " has a center already");
    if (!departments_.count(dc.department()))
      Report(path + ".department", "unknown department " + Quote(dc.department()));
  }
  if (!esc.leadership().empty() && !departments_.count(esc.leadership()))
    Report("escalation.leadership", "unknown department " + Quote(esc.leadership()));
}

}  // namespace casebus::config

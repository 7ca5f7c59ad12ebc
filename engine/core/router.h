#pragma once
// Router: the responsibility matrix. Given a case, names the department that owns it and
// the rule or asset that decided (DESIGN.md "Route rule").
//
// Order: for a component case whose asset_id is in the registry (and of the case's
// category), the asset's maintainer; otherwise the most specific matching rule, where
// specificity is, most important first: category-prefix length, condition set, place-prefix
// length (grid → community → street → district), source set, urgency set.
//
// Built once per config; immutable afterwards, so any thread may call Route().

#include <array>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "casebus/v1/case.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/base/status.h"

namespace casebus::core {

class Router {
 public:
  // Fails with InvalidArgument when two rules are equally specific and can match the same
  // case, or a rule names an unknown department.
  static Result<Router> Compile(const v1::CityConfig& config);

  // REQUIRES: c.category() and c.place().grid() are set.
  // exclude: a department that must not be chosen (the one that returned the case).
  Result<v1::RouteDecision> Route(const v1::Case& c, std::string_view exclude = {}) const;

 private:
  struct Rule {
    std::string id, category_prefix, condition, place_prefix, department;
    v1::Source source;
    v1::Urgency urgency;
    bool Matches(const v1::Case& c) const;
    // Lexicographic specificity; larger wins.
    std::array<int, 5> Specificity() const;
  };
  struct AssetRoute {
    std::string category, maintainer;
  };
  std::vector<Rule> rules_;  // sorted by descending specificity
  std::unordered_map<std::string, AssetRoute> assets_;
};

}  // namespace casebus::core

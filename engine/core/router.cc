#include "engine/core/router.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_set>

namespace casebus::core {

bool Router::Rule::Matches(const v1::Case& c) const {
  return c.category().starts_with(category_prefix) && c.place().grid().starts_with(place_prefix) &&
         (condition.empty() || condition == c.condition()) &&
         (source == v1::SOURCE_UNSPECIFIED || source == c.source()) &&
         (urgency == v1::URGENCY_UNSPECIFIED ||
          urgency == (c.urgency() == v1::URGENCY_UNSPECIFIED ? v1::NORMAL : c.urgency()));
}

std::array<int, 5> Router::Rule::Specificity() const {
  return {static_cast<int>(category_prefix.size()), condition.empty() ? 0 : 1,
          static_cast<int>(place_prefix.size()), source == v1::SOURCE_UNSPECIFIED ? 0 : 1,
          urgency == v1::URGENCY_UNSPECIFIED ? 0 : 1};
}

Result<Router> Router::Compile(const v1::CityConfig& config) {
  Router r;
  std::unordered_set<std::string> departments;
  for (const auto& d : config.departments()) departments.insert(d.id());
  for (const auto& pr : config.routes()) {
    if (!departments.count(pr.department()))
      return Err(Status::InvalidArgument("route " + pr.id() + " names unknown department '" +
                                         pr.department() + "'"));
    r.rules_.push_back({pr.id(), pr.category_prefix(), pr.condition(), pr.place_prefix(),
                        pr.department(), pr.source(), pr.urgency()});
  }
  std::stable_sort(r.rules_.begin(), r.rules_.end(), [](const Rule& a, const Rule& b) {
    return a.Specificity() > b.Specificity();
  });
  // With lexicographic specificity, equally specific rules have prefixes of equal length, so
  // they can match the same case only when every key is equal.
  std::map<std::tuple<std::string, std::string, std::string, int, int>, const Rule*> seen;
  for (const Rule& rule : r.rules_) {
    auto key = std::make_tuple(rule.category_prefix, rule.condition, rule.place_prefix,
                               static_cast<int>(rule.source), static_cast<int>(rule.urgency));
    auto [it, fresh] = seen.emplace(key, &rule);
    if (!fresh)
      return Err(Status::InvalidArgument("routes " + it->second->id + " and " + rule.id +
                                         " are equally specific and match the same cases"));
  }
  for (const auto& a : config.assets()) {
    if (!departments.count(a.maintainer()))
      return Err(Status::InvalidArgument("asset " + a.id() + " names unknown maintainer '" +
                                         a.maintainer() + "'"));
    r.assets_[a.id()] = {a.category(), a.maintainer()};
  }
  return r;
}

Result<v1::RouteDecision> Router::Route(const v1::Case& c, std::string_view exclude) const {
  v1::RouteDecision d;
  std::string asset_note;
  if (!c.asset_id().empty()) {
    auto it = assets_.find(c.asset_id());
    if (it == assets_.end()) {
      asset_note = "asset " + c.asset_id() + " is not in the registry; ";
    } else if (it->second.category != c.category()) {
      asset_note = "asset " + c.asset_id() + " is a " + it->second.category + ", not a " +
                   c.category() + "; ";
    } else if (it->second.maintainer != exclude) {
      d.set_department(it->second.maintainer);
      d.set_asset_id(c.asset_id());
      d.set_explanation("asset " + c.asset_id() + " is maintained by " + it->second.maintainer);
      return d;
    }
  }
  for (const Rule& rule : rules_) {
    if (rule.department == exclude || !rule.Matches(c)) continue;
    d.set_department(rule.department);
    d.set_rule_id(rule.id);
    std::string why = asset_note + "rule " + rule.id + ": category " +
                      (rule.category_prefix.empty() ? "*" : rule.category_prefix + "*");
    if (!rule.condition.empty()) why += ", condition " + rule.condition;
    why += ", place " + (rule.place_prefix.empty() ? "*" : rule.place_prefix + "*");
    if (rule.source != v1::SOURCE_UNSPECIFIED) why += ", source " + v1::Source_Name(rule.source);
    if (rule.urgency != v1::URGENCY_UNSPECIFIED)
      why += ", urgency " + v1::Urgency_Name(rule.urgency);
    d.set_explanation(why + " → " + rule.department);
    return d;
  }
  std::string msg = "no route rule matches category " + c.category() + " at grid " +
                    c.place().grid();
  if (!exclude.empty()) msg += " other than the returning department " + std::string(exclude);
  return Err(Status::FailedPrecondition(msg + "; name a department to dispatch to"));
}

}  // namespace casebus::core

// The half of CityChecker about what cases are and where they go: categories, routes, assets.

#include <algorithm>
#include <cctype>

#include "engine/config/city_checker.h"

namespace casebus::config {

using casebus::v1::Category;
using casebus::v1::RouteRule;
using casebus::v1::StageLimits;
using casebus::v1::TimeLimit;

namespace {

std::string LowerName(const std::string& name) {
  std::string out = name;
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// What two equally specific rules both match, for the ambiguity message.
std::string Describe(const RouteRule& route) {
  std::string text =
      route.category_prefix().empty() ? "any category" : "category " + route.category_prefix();
  if (!route.condition().empty()) text += " with condition " + route.condition();
  text += route.place_prefix().empty() ? " anywhere" : " in " + route.place_prefix();
  if (route.source() != casebus::v1::SOURCE_UNSPECIFIED) {
    text += ", source " + LowerName(casebus::v1::Source_Name(route.source()));
  }
  if (route.urgency() != casebus::v1::URGENCY_UNSPECIFIED) {
    text += ", urgency " + LowerName(casebus::v1::Urgency_Name(route.urgency()));
  }
  return text;
}

}  // namespace

void CityChecker::CheckCategories() {
  for (int i = 0; i < config_.categories_size(); ++i) {
    const Category& category = config_.categories(i);
    std::string path = At("categories", i) + ".code";
    if (!AllDigits(category.code())) {
      Report(path, "must be digits only, got " + Quote(category.code()));
    } else if (AddUnique(categories_, category.code(), "category code", path)) {
      category_by_code_[category.code()] = &category;
      sorted_categories_.push_back(category.code());
    }
    if (!category.parent().empty()) parent_categories_.insert(category.parent());
  }
  std::sort(sorted_categories_.begin(), sorted_categories_.end());
  for (int i = 0; i < config_.categories_size(); ++i) {
    const Category& category = config_.categories(i);
    std::string path = At("categories", i);
    if (category.kind() == casebus::v1::KIND_UNSPECIFIED) {
      Report(path + ".kind", "required (component, event or topic)");
    }
    const std::string& parent = category.parent();
    if (!parent.empty()) {
      auto it = category_by_code_.find(parent);
      if (parent == category.code()) {
        Report(path + ".parent", "a category cannot be its own parent");
      } else if (it == category_by_code_.end()) {
        Report(path + ".parent", "category " + Quote(parent) + " does not exist");
      } else if (it->second->has_limits()) {
        Report(path + ".parent", "category " + Quote(parent) +
                                     " has limits, so it is not a class and cannot be a parent");
      }
    }
    CheckCategoryLimits(category, path);
  }
}

void CityChecker::CheckCategoryLimits(const Category& category, const std::string& path) {
  if (category.has_limits()) CheckStageLimits(category.limits(), path + ".limits");
  Index condition_ids;
  bool every_condition_has_handle = category.conditions_size() > 0;
  for (int j = 0; j < category.conditions_size(); ++j) {
    const auto& condition = category.conditions(j);
    std::string condition_path = path + "." + At("conditions", j);
    if (condition.id().empty()) {
      Report(condition_path + ".id", "required");
    } else {
      AddUnique(condition_ids, condition.id(), "condition id", condition_path + ".id");
    }
    if (condition.has_limits()) CheckStageLimits(condition.limits(), condition_path + ".limits");
    if (!condition.has_limits() || !condition.limits().has_handle()) {
      every_condition_has_handle = false;
    }
  }
  bool subcategory = category.kind() != casebus::v1::KIND_UNSPECIFIED &&
                     !parent_categories_.contains(category.code());
  bool own_handle = category.has_limits() && category.limits().has_handle();
  if (subcategory && !own_handle && !every_condition_has_handle) {
    Report(path + ".limits.handle",
           "required: a subcategory needs a handle limit, its own or one on every condition");
  }
}

void CityChecker::CheckStageLimits(const StageLimits& limits, const std::string& path) {
  auto check = [&](bool present, const TimeLimit& limit, const char* stage) {
    if (!present) return;
    std::string limit_path = path + "." + stage;
    if (!(limit.value() > 0)) {
      Report(limit_path + ".value", "must be > 0, got " + Number(limit.value()));
    }
    if (limit.clock() == casebus::v1::CLOCK_UNSPECIFIED) {
      Report(limit_path + ".clock",
             "required (urgent_hours, working_hours, working_days or calendar_days)");
    }
  };
  check(limits.has_accept(), limits.accept(), "accept");
  check(limits.has_handle(), limits.handle(), "handle");
  check(limits.has_verify(), limits.verify(), "verify");
  check(limits.has_rework(), limits.rework(), "rework");
}

void CityChecker::CheckRoutes() {
  Index ids;
  for (int i = 0; i < config_.routes_size(); ++i) {
    const RouteRule& route = config_.routes(i);
    std::string path = At("routes", i);
    if (route.id().empty()) {
      Report(path + ".id", "required");
    } else {
      AddUnique(ids, route.id(), "route id", path + ".id");
    }
    if (route.department().empty()) {
      Report(path + ".department", "required");
    } else if (!departments_.contains(route.department())) {
      Report(path + ".department", "department " + Quote(route.department()) + " does not exist");
    }
    CheckRouteKeys(route, path);
  }
  CheckRouteAmbiguity();
}

void CityChecker::CheckRouteKeys(const RouteRule& route, const std::string& path) {
  const std::string& prefix = route.category_prefix();
  if (!prefix.empty() && !AnyHasPrefix(sorted_categories_, prefix)) {
    Report(path + ".category_prefix", Quote(prefix) + " is a prefix of no category code");
  } else if (!route.condition().empty()) {
    bool found = false;
    auto it = std::lower_bound(sorted_categories_.begin(), sorted_categories_.end(), prefix);
    for (; !found && it != sorted_categories_.end() && it->starts_with(prefix); ++it) {
      const auto& conditions = category_by_code_.at(*it)->conditions();
      found = std::any_of(conditions.begin(), conditions.end(),
                          [&](const auto& c) { return c.id() == route.condition(); });
    }
    if (!found) {
      Report(path + ".condition", "no category" +
                                      (prefix.empty() ? "" : " under prefix " + Quote(prefix)) +
                                      " has condition " + Quote(route.condition()));
    }
  }
  const std::string& place = route.place_prefix();
  size_t n = place.size();
  if (n != 0 && (!AllDigits(place) || (n != 6 && n != 9 && n != 12 && n != 15))) {
    Report(path + ".place_prefix",
           "must be a district, street, community or grid code (6, 9, 12 or 15 digits), got " +
               Quote(place));
  } else if (n != 0 && !AnyHasPrefix(sorted_grids_, place)) {
    Report(path + ".place_prefix", Quote(place) + " is a prefix of no grid code");
  }
}

// Equal specificity needs equal key lengths and equal set/unset flags; then two rules can match
// the same case only if their keys are equal, so identical keys are exactly the ambiguous pairs.
void CityChecker::CheckRouteAmbiguity() {
  std::unordered_map<std::string, int> first_with_keys;
  for (int i = 0; i < config_.routes_size(); ++i) {
    const RouteRule& route = config_.routes(i);
    std::string keys = route.category_prefix() + '\n' + route.condition() + '\n' +
                       route.place_prefix() + '\n' + std::to_string(route.source()) + '\n' +
                       std::to_string(route.urgency());
    auto [it, inserted] = first_with_keys.emplace(std::move(keys), i);
    if (inserted) continue;
    Report(At("routes", i), "ambiguous with " + At("routes", it->second) +
                                " (same specificity, both match " + Describe(route) + ")");
  }
}

void CityChecker::CheckAssets() {
  Index ids;
  for (int i = 0; i < config_.assets_size(); ++i) {
    const auto& asset = config_.assets(i);
    std::string path = At("assets", i);
    if (!DigitsOfLength(asset.id(), 16) && !DigitsOfLength(asset.id(), 17)) {
      Report(path + ".id", "must be 16 or 17 digits, got " + Quote(asset.id()));
    } else {
      AddUnique(ids, asset.id(), "asset id", path + ".id");
    }
    auto category = category_by_code_.find(asset.category());
    if (asset.category().empty()) {
      Report(path + ".category", "required");
    } else if (category == category_by_code_.end()) {
      Report(path + ".category", "category " + Quote(asset.category()) + " does not exist");
    } else if (category->second->kind() != casebus::v1::COMPONENT) {
      Report(path + ".category",
             "category " + Quote(asset.category()) + " is not a component (kind " +
                 LowerName(casebus::v1::CategoryKind_Name(category->second->kind())) + ")");
    }
    if (asset.grid().empty()) {
      Report(path + ".grid", "required");
    } else if (!grids_.contains(asset.grid())) {
      Report(path + ".grid", "grid " + Quote(asset.grid()) + " does not exist");
    }
    if (asset.maintainer().empty()) {
      Report(path + ".maintainer", "required (a department id)");
    } else if (!departments_.contains(asset.maintainer())) {
      Report(path + ".maintainer", "department " + Quote(asset.maintainer()) + " does not exist");
    }
  }
}

}  // namespace casebus::config

#pragma once
// CityChecker: the state of one semantic validation (validate.h). Internal to engine/config.
// It first indexes what can be referred to (place codes, departments, categories), checking their
// own format and uniqueness, then checks every reference against those indexes.
// Invariant: each index maps a key to the path of its first definition, so a duplicate can name
// the line of the original. Thread safety: one checker per validation, one thread.

#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "casebus/v1/config.pb.h"
#include "engine/config/problems.h"

namespace casebus::config {

class CityChecker {
 public:
  CityChecker(const casebus::v1::CityConfig& config, const SourceLines& lines, Problems& problems)
      : config_(config), lines_(lines), problems_(problems) {}

  void Run();

 private:
  // key → path of the entry that defined it first.
  using Index = std::unordered_map<std::string, std::string>;

  // validate.cc
  void CheckRequiredLists();
  void CheckPlaces();
  void CheckGrids();
  void CheckDepartments();
  void CheckAdapter(const casebus::v1::Department& department, const std::string& path);
  void CheckCalendar();
  using Windows = google::protobuf::RepeatedPtrField<casebus::v1::WorkWindow>;
  // `list` is the path of `windows`, e.g. "calendar.weekday_windows[0].windows".
  void CheckWindows(const Windows& windows, const std::string& list);
  void CheckWeekdayWindows(const casebus::v1::Calendar& calendar);
  void CheckDates(const casebus::v1::Calendar& calendar);
  void CheckDedup();
  void CheckDelivery();
  void CheckMetrics();
  void CheckWebhookAllow();
  void CheckWebhook(const casebus::v1::WebhookAdapter& webhook, const std::string& path);
  static bool WebUrl(const std::string& url);
  void CheckZmq(const casebus::v1::Department& department, const std::string& path);
  static bool Z85Key(const std::string& key);
  void CheckOpen311(const casebus::v1::Open311Adapter& open311, const std::string& path);

  // validate_catalog.cc
  void CheckCategories();
  void CheckCategoryLimits(const casebus::v1::Category& category, const std::string& path);
  void CheckStageLimits(const casebus::v1::StageLimits& limits, const std::string& path);
  void CheckRoutes();
  void CheckRouteKeys(const casebus::v1::RouteRule& route, const std::string& path);
  void CheckRouteAmbiguity();
  void CheckAssets();

  // validate_escalation.cc
  void CheckEscalation();

  // Records `key` in `index`; reports a duplicate at `path` when it is there already.
  bool AddUnique(Index& index, const std::string& key, std::string_view what,
                 const std::string& path);
  void Report(const std::string& path, std::string_view reason) {
    problems_.Add(lines_, path, reason);
  }
  int LineOf(const std::string& path) const { return lines_.Line(path); }

  const casebus::v1::CityConfig& config_;
  const SourceLines& lines_;
  Problems& problems_;

  Index districts_, streets_, communities_, grids_, departments_, categories_;
  std::vector<std::string> sorted_grids_;       // for place_prefix lookups
  std::vector<std::string> sorted_categories_;  // for category_prefix lookups
  std::unordered_map<std::string, const casebus::v1::Category*> category_by_code_;
  std::map<std::string, std::string> zmq_keys_;  // client key → its department
  bool zmq_gateway_checked_ = false;
  std::unordered_set<std::string> parent_categories_;  // codes some category names as parent
};

// Helpers shared by the two validate*.cc files.
// "routes", 2 → "routes[2]"
std::string At(std::string_view list, int i);
bool AllDigits(std::string_view s);
bool DigitsOfLength(std::string_view s, size_t length);
std::string Quote(std::string_view s);
std::string Number(double value);  // shortest "%g" form
// Whether some string in `sorted` starts with `prefix`.
bool AnyHasPrefix(const std::vector<std::string>& sorted, std::string_view prefix);

}  // namespace casebus::config

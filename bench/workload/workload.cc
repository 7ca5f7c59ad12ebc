#include "bench/workload/workload.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/core/deduper.h"
#include "engine/core/router.h"

namespace casebus::bench {
namespace {

// Jiangmen, July 2024, cases per month by class (DOMAIN.md §5). The classes are matched by name
// (an event class first: 市容环境 is both a component and an event class in CJ/T 214), or else
// by their CJ/T 214 event class code.
struct ClassVolume {
  const char* name;
  const char* code;
  double per_month;
};
constexpr ClassVolume kJiangmen[] = {
    {"街面秩序", "2005", 7921}, {"宣传广告", "2002", 3620}, {"市容环境", "2001", 1420},
    {"突发事件", "2004", 103},  {"施工管理", "2003", 23},
};
// The month had ~13.5k cases; what the five classes leave (~400) is spread over every other
// class the city has, so components and hotline topics appear too.
constexpr double kOtherClassesPerMonth = 400;

constexpr double kMetresPerDegree = 6371008.8 * M_PI / 180.0;
constexpr double kGolden = 0.6180339887498949;
constexpr int kMaxDraws = 64;  // redraws of a place whose routes do not fit the path

// Actors: who does each step in a 数字城管 centre. None is a department id, so the engine
// treats them as its trusted operators.
constexpr char kCentreOperator[] = "centre-operator";  // 受理, 立案, 派遣, 结案, 作废
constexpr char kDepartmentCrew[] = "department-crew";  // 签收, 退回, 处置
constexpr char kInspector[] = "inspector-patrol";      // reports, 核查
constexpr char kHotline[] = "hotline-12345";
constexpr char kAppGateway[] = "citizen-app";
constexpr char kSensorGateway[] = "sensor-gateway";

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t Below(std::mt19937_64& rng, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
}

// The smallest distance between two grid centroids, in metres (infinity with fewer than two).
double NearestCentroids(const std::vector<const v1::Grid*>& grids) {
  std::vector<const v1::Grid*> by_lat(grids);
  std::sort(by_lat.begin(), by_lat.end(),
            [](const v1::Grid* a, const v1::Grid* b) { return a->lat() < b->lat(); });
  double best = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < by_lat.size(); ++i)
    for (size_t j = i + 1;
         j < by_lat.size() && (by_lat[j]->lat() - by_lat[i]->lat()) * kMetresPerDegree < best; ++j)
      best = std::min(best, core::DistanceMetres(by_lat[i]->lat(), by_lat[i]->lon(),
                                                 by_lat[j]->lat(), by_lat[j]->lon()));
  return best;
}

// Writes v in decimal at p (at most 20 digits); returns the end.
char* AppendDecimal(char* p, uint64_t v) {
  char digits[20];
  int n = 0;
  do digits[n++] = static_cast<char>('0' + v % 10);
  while ((v /= 10) != 0);
  while (n > 0) *p++ = digits[--n];
  return p;
}

const char* ReporterActor(v1::Source s) {
  switch (s) {
    case v1::HOTLINE:
      return kHotline;
    case v1::APP:
      return kAppGateway;
    case v1::SENSOR:
      return kSensorGateway;
    default:
      return kInspector;
  }
}

// Weights per reportable category (index into config.categories(); 0 = not drawn): the class
// volumes split evenly over each class's reportable subcategories.
std::vector<double> CategoryWeights(const v1::CityConfig& config) {
  const auto& cats = config.categories();
  std::unordered_map<std::string, int> by_code;
  for (int i = 0; i < cats.size(); ++i) by_code.emplace(cats[i].code(), i);
  std::vector<int> class_of(cats.size(), -1);
  std::unordered_map<int, int> leaves;  // class → reportable subcategories
  for (int i = 0; i < cats.size(); ++i) {
    if (!cats[i].has_limits() && cats[i].conditions_size() == 0) continue;
    int top = i;
    for (int depth = 0; depth < 16 && !cats[top].parent().empty(); ++depth) {
      auto it = by_code.find(cats[top].parent());
      if (it == by_code.end()) break;
      top = it->second;
    }
    class_of[i] = top;
    ++leaves[top];
  }
  std::unordered_map<int, double> per_month;  // class → cases per month
  for (const ClassVolume& v : kJiangmen) {
    std::vector<int> named, events;
    for (const auto& [k, n] : leaves) {
      if (cats[k].name() != v.name) continue;
      named.push_back(k);
      if (cats[k].kind() == v1::EVENT) events.push_back(k);
    }
    if (!events.empty()) named = events;
    if (named.empty())
      if (auto it = by_code.find(v.code); it != by_code.end() && leaves.count(it->second))
        named.push_back(it->second);
    for (int k : named) per_month[k] += v.per_month / static_cast<double>(named.size());
  }
  std::vector<double> weight(cats.size(), 0.0);
  if (per_month.empty()) {  // none of the classes: every subcategory alike
    for (int i = 0; i < cats.size(); ++i) weight[i] = class_of[i] >= 0 ? 1.0 : 0.0;
    return weight;
  }
  const size_t others = leaves.size() - per_month.size();
  for (const auto& [k, n] : leaves)
    if (!per_month.count(k)) per_month[k] = kOtherClassesPerMonth / static_cast<double>(others);
  for (int i = 0; i < cats.size(); ++i)
    if (class_of[i] >= 0) weight[i] = per_month[class_of[i]] / leaves[class_of[i]];
  return weight;
}

}  // namespace

const char* StepName(StepKind k) {
  switch (k) {
    case StepKind::kReport:
      return "report";
    case StepKind::kRegister:
      return "register";
    case StepKind::kDispatch:
      return "dispatch";
    case StepKind::kReturn:
      return "return";
    case StepKind::kAccept:
      return "accept";
    case StepKind::kResolve:
      return "resolve";
    case StepKind::kVerifyPass:
      return "verify_pass";
    case StepKind::kVerifyFail:
      return "verify_fail";
    case StepKind::kClose:
      return "close";
    case StepKind::kVoid:
      return "void";
  }
  return "?";
}

Generator::Generator(const v1::CityConfig& config, uint64_t seed, int client, Mix mix, int clients)
    : config_(&config),
      client_(client),
      mix_(mix),
      rng_(SplitMix64(seed ^ SplitMix64(static_cast<uint64_t>(client) + 1))) {
  auto router = core::Router::Compile(config);
  if (router) router_ = std::make_shared<const core::Router>(std::move(*router));
  // (a config that does not compile is refused by casebus itself; every route check fails)

  const std::vector<double> weight = CategoryWeights(config);
  double total = 0;
  for (int i = 0; i < config.categories_size(); ++i) {
    if (weight[i] <= 0) continue;
    categories_.push_back(i);
    cumulative_weight_.push_back(total += weight[i]);
    category_name_.emplace(config.categories(i).code(), &config.categories(i).name());
  }
  for (const auto& g : config.grids()) grids_.push_back(&g);
  const uint64_t n_grids = grids_.size();

  // The lap (a seeded order of the grids) is dealt into one share per client. For category k,
  // client c walks share (c + k) mod shares, so clients never report one category in the same
  // grid, while each client still covers every share over its categories. Clients beyond the
  // shares (more clients than grids, or a client number ≥ clients) share one, starting
  // golden-ratio apart on it.
  std::mt19937_64 shared(SplitMix64(seed ^ 0x6C61707321ull));
  lap_.resize(n_grids);
  std::iota(lap_.begin(), lap_.end(), 0u);
  for (uint64_t i = n_grids; i > 1; --i) std::swap(lap_[i - 1], lap_[bench::Below(shared, i)]);
  shares_ = static_cast<uint32_t>(
      std::max<uint64_t>(1, std::min<uint64_t>(n_grids, std::max(clients, 1))));
  const double spread = static_cast<double>(client / shares_) * kGolden;
  const double client_offset = spread - std::floor(spread);
  for (size_t k = 0; k < categories_.size(); ++k) {
    share_.push_back(static_cast<uint32_t>((static_cast<size_t>(client) + k) % shares_));
    const uint32_t size = ShareSize(share_.back());
    const uint64_t base = bench::Below(shared, std::max<uint64_t>(n_grids, 1));
    cursor_.push_back(size == 0 ? 0
                                : static_cast<uint32_t>(
                                      (base + static_cast<uint64_t>(client_offset * size)) % size));
  }

  // Reports of two grids must stay farther apart than the dedup radius: each lies within
  // 0.4 × (nearest centroids − radius) of its centroid, rounded down to 0.1 m.
  const double radius = std::max(0.0, config.dedup().radius_m());
  double jitter_m = std::min(25.0, 0.4 * (NearestCentroids(grids_) - radius));
  jitter_m = std::max(0.0, std::floor(jitter_m * 10) / 10);
  jitter_deg_ = jitter_m / (std::sqrt(2.0) * kMetresPerDegree);

  routes_.assign(categories_.size() * n_grids * 4, kUnchecked);
}

uint32_t Generator::ShareSize(uint32_t share) const {
  return (static_cast<uint32_t>(lap_.size()) - share + shares_ - 1) / shares_;
}

uint64_t Generator::Below(uint64_t n) { return bench::Below(rng_, n); }

double Generator::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

Generator::Path Generator::DrawPath() {
  double u = Uniform();
  if ((u -= mix_.duplicate) < 0) return Path::kDuplicate;
  if ((u -= mix_.void_after_register) < 0) return Path::kVoid;
  if ((u -= mix_.misroute) < 0) return Path::kMisroute;
  if ((u -= mix_.failed_verify) < 0) return Path::kFailedVerify;
  return Path::kFull;
}

v1::Source Generator::DrawSource() {
  double u = Uniform();
  if ((u -= mix_.inspector) < 0) return v1::INSPECTOR;
  if ((u -= mix_.hotline) < 0) return v1::HOTLINE;
  if ((u -= mix_.app) < 0) return v1::APP;
  return v1::SENSOR;
}

uint32_t Generator::DrawCategory() {
  const double u = Uniform() * cumulative_weight_.back();
  auto it = std::upper_bound(cumulative_weight_.begin(), cumulative_weight_.end(), u);
  return static_cast<uint32_t>(
      std::min<size_t>(it - cumulative_weight_.begin(), cumulative_weight_.size() - 1));
}

Generator::Original Generator::DrawPlace(uint32_t k) {
  Original o;
  o.category = k;
  o.grid = lap_[share_[k] + shares_ * cursor_[k]];
  if (++cursor_[k] == ShareSize(share_[k])) cursor_[k] = 0;
  const v1::Grid& g = *grids_[o.grid];
  o.lat = g.lat() + (2 * Uniform() - 1) * jitter_deg_;
  o.lon = g.lon() + (2 * Uniform() - 1) * jitter_deg_;
  return o;
}

Generator::RouteCheck Generator::Routes(uint32_t k, uint32_t grid, v1::Source source) {
  const size_t source_index = std::clamp<int>(source, v1::INSPECTOR, v1::SENSOR) - v1::INSPECTOR;
  uint8_t& known = routes_[(static_cast<size_t>(k) * grids_.size() + grid) * 4 + source_index];
  if (known != kUnchecked) return static_cast<RouteCheck>(known);
  known = kUnroutable;
  if (!router_) return kUnroutable;
  v1::Case c;
  c.set_category(config_->categories(categories_[k]).code());
  c.mutable_place()->set_grid(grids_[grid]->code());
  c.set_source(source);
  c.set_urgency(v1::NORMAL);
  auto first = router_->Route(c);
  if (!first) return kUnroutable;
  // After a return the engine routes again, never to the department that returned the case.
  known = router_->Route(c, first->department()) ? kRedispatchable : kRoutable;
  return static_cast<RouteCheck>(known);
}

std::vector<StepKind> Generator::StepsOf(Path p) {
  using S = StepKind;
  switch (p) {
    case Path::kDuplicate:
      return {S::kReport};
    case Path::kVoid:
      return {S::kReport, S::kRegister, S::kVoid};
    case Path::kMisroute:
      return {S::kReport, S::kRegister, S::kDispatch,   S::kReturn, S::kDispatch,
              S::kAccept, S::kResolve,  S::kVerifyPass, S::kClose};
    case Path::kFailedVerify:
      return {S::kReport,     S::kRegister, S::kDispatch, S::kAccept,     S::kResolve,
              S::kVerifyFail, S::kAccept,   S::kResolve,  S::kVerifyPass, S::kClose};
    case Path::kFull:
      break;
  }
  return {S::kReport,  S::kRegister,   S::kDispatch, S::kAccept,
          S::kResolve, S::kVerifyPass, S::kClose};
}

CasePlan Generator::NextCase() {
  CasePlan plan;
  plan.n = next_n_++;
  Path path = DrawPath();
  plan.source = DrawSource();
  if (path == Path::kDuplicate && recent_count_ == 0) path = Path::kFull;  // nothing to repeat yet
  Original place;
  if (path == Path::kDuplicate) {
    place = recent_[(recent_pos_ + recent_.size() - 1 - Below(recent_count_)) % recent_.size()];
    plan.duplicate = true;
  } else if (!categories_.empty() && !grids_.empty()) {
    // A misroute needs a second department for the place; every dispatch needs a first.
    bool fits = false;
    for (int draw = 0; draw < kMaxDraws && !fits; ++draw) {
      place = DrawPlace(DrawCategory());
      const RouteCheck r =
          path == Path::kVoid ? kRoutable : Routes(place.category, place.grid, plan.source);
      fits = path == Path::kMisroute ? r == kRedispatchable : r != kUnroutable;
    }
    if (!fits && path == Path::kMisroute) path = Path::kFull;
    if (path != Path::kVoid) {
      recent_[recent_pos_] = place;
      recent_pos_ = (recent_pos_ + 1) % recent_.size();
      recent_count_ = std::min(recent_count_ + 1, recent_.size());
    }
  }
  if (!categories_.empty()) plan.category = config_->categories(categories_[place.category]).code();
  if (!grids_.empty()) plan.grid = grids_[place.grid]->code();
  plan.lat = place.lat;
  plan.lon = place.lon;
  plan.steps = StepsOf(path);
  return plan;
}

v1::Command Generator::Command(const CasePlan& plan, size_t step, uint64_t case_id) const {
  v1::Command c;
  char id[3 + 3 * 20];  // "w" and three decimals of at most 20 digits, two "-"
  char* p = id;
  *p++ = 'w';
  p = AppendDecimal(p, static_cast<uint64_t>(client_));
  *p++ = '-';
  p = AppendDecimal(p, plan.n);
  *p++ = '-';
  p = AppendDecimal(p, step);
  c.set_request_id(id, static_cast<size_t>(p - id));
  switch (plan.steps[step]) {
    case StepKind::kReport: {
      c.set_actor(ReporterActor(plan.source));
      v1::Report* r = c.mutable_report();
      r->set_category(plan.category);
      r->set_source(plan.source);
      v1::Place* place = r->mutable_place();
      place->set_grid(plan.grid);
      place->set_lat(plan.lat);
      place->set_lon(plan.lon);
      place->set_has_coordinates(true);
      if (auto it = category_name_.find(plan.category); it != category_name_.end())
        r->set_description(*it->second);
      break;
    }
    case StepKind::kRegister:
      c.set_actor(kCentreOperator);
      c.mutable_register_()->set_case_id(case_id);
      break;
    case StepKind::kDispatch:
      c.set_actor(kCentreOperator);
      c.mutable_dispatch()->set_case_id(case_id);
      break;
    case StepKind::kReturn:
      c.set_actor(kDepartmentCrew);
      c.mutable_return_()->set_case_id(case_id);
      c.mutable_return_()->set_reason("not within our responsibility (退回)");
      break;
    case StepKind::kAccept:
      c.set_actor(kDepartmentCrew);
      c.mutable_accept()->set_case_id(case_id);
      break;
    case StepKind::kResolve:
      c.set_actor(kDepartmentCrew);
      c.mutable_resolve()->set_case_id(case_id);
      c.mutable_resolve()->add_evidence("photo:after-handling");
      break;
    case StepKind::kVerifyPass:
    case StepKind::kVerifyFail: {
      c.set_actor(kInspector);
      v1::Verify* v = c.mutable_verify();
      v->set_case_id(case_id);
      v->set_passed(plan.steps[step] == StepKind::kVerifyPass);
      if (!v->passed()) v->set_reason("problem still there on re-inspection (核查未通过)");
      break;
    }
    case StepKind::kClose:
      c.set_actor(kCentreOperator);
      c.mutable_close()->set_case_id(case_id);
      break;
    case StepKind::kVoid:
      c.set_actor(kCentreOperator);
      c.mutable_void_()->set_case_id(case_id);
      c.mutable_void_()->set_reason("entered twice (作废)");
      break;
  }
  return c;
}

double Generator::MeanStepsPerCase() const {
  const double full =
      1 - mix_.duplicate - mix_.void_after_register - mix_.misroute - mix_.failed_verify;
  return mix_.duplicate * 1 + mix_.void_after_register * 3 + mix_.misroute * 9 +
         mix_.failed_verify * 10 + full * 7;
}

}  // namespace casebus::bench

#pragma once
// The benchmark workload: a seeded generator of a realistic city load (DOMAIN.md §5). Every
// benchmark and every peer (bench/peers) draws its cases from here, so casebus, the
// PostgreSQL ticket store and the JetStream bus do the same work.
//
// A case is planned whole when it is drawn (NextCase): its category and place, its source and
// the lifecycle it will go through — the full loop, or a misroute (dispatch, the department
// returns it, dispatch again), a failed verification (rework), a void, or a duplicate report
// of a recent open case (which casebus merges at report). The client then walks the plan one
// step at a time: step 0 (the report) has no case id yet; every later step uses the case id
// the report's reply gave.
//
// Each case takes exactly one of those paths, so over many cases each path's share is its
// Mix value. Places: the city's grids, in a seeded order, are dealt into one share per client;
// for each category a client walks one share grid by grid (another share per category, so a
// client still covers the whole city), and no two clients walk the same share. A report lies
// within a few metres of its grid's centroid — never within the dedup radius of another
// grid's reports. So two cases merge only when the plan says so (a duplicate), as long as a
// client keeps fewer open cases of one category than a share has grids (the sample city, 4
// clients: 160 grids, ~3,000 open cases per client; the hottest category has 5 % of cases).
// A duplicate repeats the exact point of one of the client's last 8 non-void originals, which
// is still open when the client keeps dozens of cases in flight.
//
// Deterministic: the same (config, seed, client) gives the same plans in the same order, on
// any machine (no std:: distributions, whose results vary by library). Not thread-safe: one
// Generator per client thread. REQUIRES: the config outlives the Generator.

#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"

namespace casebus::core {
class Router;
}

namespace casebus::bench {

enum class StepKind {
  kReport,    // a new problem at a place (inspector, hotline, app, sensor)
  kRegister,  // 立案
  kDispatch,  // to the department the city's routes pick
  kReturn,    // the department says it is not theirs (退回); a dispatch follows
  kAccept,
  kResolve,
  kVerifyPass,
  kVerifyFail,  // 核查 fails: back to the department (rework): accept and resolve again
  kClose,
  kVoid,  // 作废 after register
};
const char* StepName(StepKind k);

// The shares of each behaviour, 0..1. Defaults follow DOMAIN.md §5: inspectors report most
// cases; 街面秩序 (street order) and 宣传广告 (advertising) events dominate.
struct Mix {
  double duplicate = 0.03;      // reports of the same problem as a recent open case
  double misroute = 0.05;       // dispatched, returned, dispatched again
  double failed_verify = 0.08;  // resolved, verification fails, resolved again
  double void_after_register = 0.02;
  // Source shares (the rest are sensors).
  double inspector = 0.80, hotline = 0.12, app = 0.05;
};

struct CasePlan {
  uint64_t n = 0;           // the client's case number, from 0
  std::string category;     // a category code of the config
  std::string grid;         // a grid code of the config
  double lat = 0, lon = 0;  // inside the grid (duplicates: the same point as the original)
  v1::Source source = v1::INSPECTOR;
  bool duplicate = false;       // same category and point as a recent case of this client
  std::vector<StepKind> steps;  // steps[0] is kReport
};

class Generator {
 public:
  // The categories weighted by the city's config (street order and advertising first when
  // the config has them), the grids uniform. clients: how many clients draw from this seed at
  // once (client is 0..clients-1); for each category the grids are dealt among them, so the
  // fewer clients, the more open cases each may keep before an unplanned merge.
  Generator(const v1::CityConfig& config, uint64_t seed, int client, Mix mix = {}, int clients = 8);

  CasePlan NextCase();
  // The command for plan.steps[step]: a unique request_id ("w<client>-<n>-<step>"), the
  // actor, the body. case_id is 0 for step 0 (the report).
  v1::Command Command(const CasePlan& plan, size_t step, uint64_t case_id) const;

  // Lifecycle commands per case, on average over the mix (for rates: cases/s × this).
  double MeanStepsPerCase() const;

 private:
  enum class Path { kFull, kDuplicate, kMisroute, kFailedVerify, kVoid };
  // What the city's routes do with (category, grid, source); computed once, on first use.
  enum RouteCheck : uint8_t { kUnchecked, kUnroutable, kRoutable, kRedispatchable };
  struct Original {  // a recent case a duplicate may repeat
    uint32_t category = 0, grid = 0;
    double lat = 0, lon = 0;
  };

  uint64_t Below(uint64_t n);  // uniform in [0, n)
  double Uniform();            // uniform in [0, 1)
  Path DrawPath();
  v1::Source DrawSource();
  uint32_t DrawCategory();  // an index into categories_
  // The next grid of category k's share of the lap and a point near its centroid.
  Original DrawPlace(uint32_t k);
  uint32_t ShareSize(uint32_t share) const;  // grids in a share
  RouteCheck Routes(uint32_t k, uint32_t grid, v1::Source source);
  static std::vector<StepKind> StepsOf(Path p);

  const v1::CityConfig* config_;
  std::shared_ptr<const core::Router> router_;
  int client_;
  Mix mix_;
  std::mt19937_64 rng_;
  uint64_t next_n_ = 0;
  // The reportable leaf categories (limits or 立案条件), as indices into config.categories(),
  // with their cumulative weights.
  std::vector<int> categories_;
  std::vector<double> cumulative_weight_;
  std::unordered_map<std::string, const std::string*> category_name_;  // code → name
  std::vector<const v1::Grid*> grids_;
  std::vector<uint32_t> lap_;       // the grids in a seeded order, dealt into shares_ shares:
  uint32_t shares_ = 1;             // share s holds lap_[s], lap_[s + shares_], ...
  std::vector<uint32_t> share_;     // per category: the share this client walks
  std::vector<uint32_t> cursor_;    // per category: how far along its share this client is
  double jitter_deg_ = 0;           // half-side of the square a report lies in around a centroid
  std::vector<uint8_t> routes_;     // RouteCheck per (category, grid, source)
  std::array<Original, 8> recent_;  // ring of recent originals, for duplicates
  size_t recent_count_ = 0, recent_pos_ = 0;
};

}  // namespace casebus::bench

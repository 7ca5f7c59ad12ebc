// `casebus demo`: the sample city for a synthetic week on a virtual clock. Inspectors patrol
// in working hours, the hotline rings day and night, some reports duplicate open cases,
// departments work at different speeds, a few cases are misrouted and returned, some fail
// verification and are reworked. Every command goes through the real engine: journal,
// fsync, outbox and the spool adapter in a temporary directory.

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <queue>
#include <random>
#include <thread>
#include <set>

#include "adapters/register_all.h"
#include "engine/base/time_format.h"
#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/cli/print.h"
#include "engine/core/working_calendar.h"
#include "engine/query/report.h"
#include "engine/server/engine.h"

namespace casebus::cli {
namespace {

enum class Step { kReport, kRegister, kReject, kDispatch, kAccept, kReturn, kRequestExt,
                  kApproveExt, kSuspend, kResolve, kVerify, kClose };

struct Action {
  Millis at;
  uint64_t seq;
  Step step;
  uint64_t case_id;
  int report;  // index into reports_ for kReport
  bool operator>(const Action& o) const { return std::tie(at, seq) > std::tie(o.at, o.seq); }
};

struct ReportSpec {
  std::string category;
  std::string grid;
  double lat, lon;
  bool coords;
  v1::Source source;
};

struct CaseInfo {
  std::string category, department, grid;
  Millis handle_budget = 0;  // dispatch → handle deadline, in wall time
  bool returned_once = false;
};

class DemoCity {
 public:
  DemoCity(const v1::CityConfig& cfg, uint64_t seed, int cases_per_day)
      : cfg_(cfg), calendar_(cfg.calendar()), rng_(seed), per_day_(cases_per_day) {
    for (const auto& c : cfg.categories()) {
      categories_[c.code()] = &c;
      if (!c.has_limits() && c.conditions_size() == 0) continue;
      auto parent = std::find_if(cfg.categories().begin(), cfg.categories().end(),
                                 [&](const auto& p) { return p.code() == c.parent(); });
      double w = c.kind() == v1::EVENT ? 3.0 : c.kind() == v1::TOPIC ? 1.5 : 0.8;
      // DOMAIN.md §5: street order and advertising events dominate the inflow.
      if (parent != cfg.categories().end() &&
          (parent->name().find("街面秩序") != std::string::npos ||
           parent->name().find("宣传广告") != std::string::npos))
        w *= 4;
      leaf_codes_.push_back(c.code());
      leaf_weights_.push_back(w);
    }
  }

  // Schedules the week's reports.
  void Plan(Millis start, int days) {
    std::uniform_real_distribution<double> u(0, 1);
    for (int d = 0; d < days; ++d) {
      const int64_t local_day = (start + cfg_.calendar().utc_offset_minutes() * kMinute) / kDay + d;
      const bool working = calendar_.IsWorkingDay(local_day);
      const int n = working ? per_day_ : per_day_ / 3;  // fewer patrols on days off
      for (int i = 0; i < n; ++i) {
        // Inspectors 08:00–18:00 on working days; hotline and apps around the clock.
        const bool inspector = working && u(rng_) < 0.72;
        const double hour = inspector ? 8 + 10 * u(rng_) : 24 * u(rng_);
        const Millis at = start + d * kDay + static_cast<Millis>(hour * kHour);
        Schedule(at, Step::kReport, 0, NewReport(inspector, at));
      }
    }
  }

  bool Empty() const { return queue_.empty(); }
  Millis NextAt() const { return queue_.top().at; }

  // Pops everything due by `t` into one request.
  v1::Request Take(Millis t, std::vector<Action>& taken) {
    v1::Request req;
    req.set_version(1);
    while (!queue_.empty() && queue_.top().at <= t) {
      Action a = queue_.top();
      queue_.pop();
      *req.add_commands() = Build(a);
      taken.push_back(a);
    }
    return req;
  }

  // Reacts to results: schedules each case's next step.
  void Observe(const std::vector<Action>& taken, const v1::Reply& reply, Millis now) {
    for (size_t i = 0; i < taken.size() && i < static_cast<size_t>(reply.results_size()); ++i) {
      const auto& r = reply.results(i);
      const Action& a = taken[i];
      ++counts_[r.code() == v1::OK ? "ok" : "refused"];
      if (r.code() != v1::OK) continue;
      Next(a, r, now);
    }
  }

  std::map<std::string, int64_t> counts_;
  uint64_t returned_case = 0, reworked_case = 0;

 private:
  int NewReport(bool inspector, Millis at) {
    std::uniform_real_distribution<double> u(0, 1);
    ReportSpec s;
    // Some reports repeat a recent problem a few metres away: the deduper merges them.
    if (!reports_.empty() && u(rng_) < 0.07) {
      const ReportSpec& prev = reports_[reports_.size() - 1 - static_cast<size_t>(u(rng_) * std::min<size_t>(reports_.size(), 40))];
      s = prev;
      s.lat += (u(rng_) - 0.5) * 0.0002;
      s.lon += (u(rng_) - 0.5) * 0.0002;
      s.source = inspector ? v1::INSPECTOR : v1::HOTLINE;
      reports_.push_back(s);
      (void)at;
      return static_cast<int>(reports_.size() - 1);
    }
    std::discrete_distribution<size_t> pick(leaf_weights_.begin(), leaf_weights_.end());
    s.category = leaf_codes_[pick(rng_)];
    const auto& g = cfg_.grids(static_cast<int>(u(rng_) * cfg_.grids_size()) % cfg_.grids_size());
    s.grid = g.code();
    s.lat = g.lat() + (u(rng_) - 0.5) * 0.0006;
    s.lon = g.lon() + (u(rng_) - 0.5) * 0.0006;
    const double r = u(rng_);
    s.source = inspector ? v1::INSPECTOR : r < 0.7 ? v1::HOTLINE : r < 0.95 ? v1::APP : v1::SENSOR;
    s.coords = s.source != v1::HOTLINE || u(rng_) < 0.3;
    reports_.push_back(s);
    return static_cast<int>(reports_.size() - 1);
  }

  void Schedule(Millis at, Step step, uint64_t id, int report = -1) {
    queue_.push({at, seq_++, step, id, report});
  }

  // Department speed: a fixed share of the handling budget, by department.
  double Speed(const std::string& dept) const {
    static const double kProfiles[] = {0.25, 0.45, 0.7, 0.9, 1.25};
    return kProfiles[std::hash<std::string>{}(dept) % 5];
  }

  Millis Minutes(double lo, double hi) {
    std::uniform_real_distribution<double> u(lo, hi);
    return static_cast<Millis>(u(rng_) * kMinute);
  }

  v1::Command Build(const Action& a) {
    v1::Command c;
    c.set_request_id("demo-" + std::to_string(a.seq));
    c.set_actor("operator");
    const std::string dept = a.case_id ? cases_[a.case_id].department : "";
    switch (a.step) {
      case Step::kReport: {
        const ReportSpec& s = reports_[a.report];
        auto* r = c.mutable_report();
        r->set_category(s.category);
        r->mutable_place()->set_grid(s.grid);
        if (s.coords) {
          r->mutable_place()->set_lat(s.lat);
          r->mutable_place()->set_lon(s.lon);
          r->mutable_place()->set_has_coordinates(true);
        }
        r->set_source(s.source);
        r->mutable_reporter()->set_name(s.source == v1::INSPECTOR ? "inspector" : "citizen");
        c.set_actor(s.source == v1::INSPECTOR ? "inspector" : "hotline");
        break;
      }
      case Step::kRegister: c.mutable_register_()->set_case_id(a.case_id); break;
      case Step::kReject:
        c.mutable_reject()->set_case_id(a.case_id);
        c.mutable_reject()->set_reason("outside the 立案 conditions");
        break;
      case Step::kDispatch: {
        c.mutable_dispatch()->set_case_id(a.case_id);
        CaseInfo& info = cases_[a.case_id];
        // After a return the dispatcher sends it to the district command centre.
        if (info.returned_once) c.mutable_dispatch()->set_department("command-" + info.grid.substr(0, 6));
        c.set_actor("dispatcher");
        break;
      }
      case Step::kAccept: c.mutable_accept()->set_case_id(a.case_id), c.set_actor(dept); break;
      case Step::kReturn:
        c.mutable_return_()->set_case_id(a.case_id);
        c.mutable_return_()->set_reason("not our responsibility");
        c.set_actor(dept);
        break;
      case Step::kRequestExt:
        c.mutable_request_extension()->set_case_id(a.case_id);
        c.mutable_request_extension()->set_hours(16);
        c.mutable_request_extension()->set_reason("waiting for materials");
        c.set_actor(dept);
        break;
      case Step::kApproveExt: c.mutable_approve_extension()->set_case_id(a.case_id); break;
      case Step::kSuspend:
        c.mutable_suspend()->set_case_id(a.case_id);
        c.mutable_suspend()->set_reason("needs a capital project");
        break;
      case Step::kResolve:
        c.mutable_resolve()->set_case_id(a.case_id);
        c.mutable_resolve()->add_evidence("photo://" + std::to_string(a.case_id) + "/after.jpg");
        c.set_actor(dept);
        break;
      case Step::kVerify: {
        std::uniform_real_distribution<double> u(0, 1);
        c.mutable_verify()->set_case_id(a.case_id);
        const bool pass = u(rng_) >= 0.06;
        if (pass) failed_verify_.erase(a.case_id); else failed_verify_.insert(a.case_id);
        c.mutable_verify()->set_passed(pass);
        if (!pass) c.mutable_verify()->set_reason("problem still visible on site");
        c.set_actor("inspector");
        break;
      }
      case Step::kClose: c.mutable_close()->set_case_id(a.case_id), c.set_actor("shift-lead"); break;
    }
    return c;
  }

  Millis HandleBudget(const std::string& category, Millis from) const {
    auto it = categories_.find(category);
    if (it == categories_.end()) return 8 * kHour;
    const v1::Category& cat = *it->second;
    const v1::TimeLimit& lim = cat.has_limits() ? cat.limits().handle() : cat.conditions(0).limits().handle();
    if (lim.value() <= 0) return 8 * kHour;
    return calendar_.Add(from, lim) - from;
  }

  void Next(const Action& a, const v1::CommandResult& r, Millis now) {
    std::uniform_real_distribution<double> u(0, 1);
    const uint64_t id = r.case_id();
    switch (a.step) {
      case Step::kReport:
        if (r.merged()) {
          ++counts_["merged"];
          return;
        }
        cases_[id] = {reports_[a.report].category, "", reports_[a.report].grid};
        Schedule(now + Minutes(3, 25), u(rng_) < 0.03 ? Step::kReject : Step::kRegister, id);
        return;
      case Step::kRegister: Schedule(now + Minutes(2, 20), Step::kDispatch, id); return;
      case Step::kDispatch: {
        CaseInfo& info = cases_[id];
        info.department = r.department();
        info.handle_budget = HandleBudget(info.category, now);
        const bool misroute = !info.returned_once && u(rng_) < 0.03;
        Schedule(now + Minutes(5, 90), misroute ? Step::kReturn : Step::kAccept, id);
        return;
      }
      case Step::kReturn:
        cases_[id].returned_once = true;
        if (!returned_case) returned_case = id;
        Schedule(now + Minutes(10, 40), Step::kDispatch, id);
        return;
      case Step::kAccept: {
        const CaseInfo& info = cases_[id];
        const double share = Speed(info.department) * (0.5 + u(rng_));
        const Millis handle = static_cast<Millis>(share * static_cast<double>(info.handle_budget));
        const double roll = u(rng_);
        if (roll < 0.02) {
          Schedule(now + handle / 2, Step::kRequestExt, id);
        } else if (roll < 0.025) {
          Schedule(now + handle / 2, Step::kSuspend, id);
        } else {
          Schedule(now + std::max<Millis>(handle, 10 * kMinute), Step::kResolve, id);
        }
        return;
      }
      case Step::kRequestExt: Schedule(now + Minutes(20, 120), Step::kApproveExt, id); return;
      case Step::kApproveExt: Schedule(now + 16 * kHour * 3 / 4, Step::kResolve, id); return;
      case Step::kResolve: Schedule(now + Minutes(30, 180), Step::kVerify, id); return;
      case Step::kVerify:
        if (last_verify_failed_(id)) {
          if (!reworked_case) reworked_case = id;
          Schedule(now + Minutes(10, 60), Step::kAccept, id);
        } else {
          Schedule(now + Minutes(10, 60), Step::kClose, id);
        }
        return;
      default: return;
    }
  }

  bool last_verify_failed_(uint64_t id) const { return failed_verify_.count(id) > 0; }

  std::set<uint64_t> failed_verify_;
  const v1::CityConfig& cfg_;
  core::WorkingCalendar calendar_;
  std::mt19937_64 rng_;
  int per_day_;
  std::map<std::string, const v1::Category*> categories_;
  std::vector<std::string> leaf_codes_;
  std::vector<double> leaf_weights_;
  std::vector<ReportSpec> reports_;
  std::map<uint64_t, CaseInfo> cases_;
  std::priority_queue<Action, std::vector<Action>, std::greater<Action>> queue_;
  uint64_t seq_ = 1;
};


std::string DayLabel(Millis t, int off) {
  static const char* kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  const int64_t day = (t + off * kMinute) / kDay;
  return FormatIso(t, off).substr(0, 10) + " " + kDays[((day + 3) % 7 + 7) % 7];
}

}  // namespace

int RunDemo(const Args& args) {
  auto flags = Flags::Parse(args, {"days", "cases-per-day", "keep", "seed"}, {});
  if (!flags) {
    std::fprintf(stderr, "casebus demo: %s\n", flags.error().message().c_str());
    return 2;
  }
  const int days = std::atoi(flags->GetOr("days", "7").c_str());
  const int per_day = std::atoi(flags->GetOr("cases-per-day", "1200").c_str());
  if (days < 1 || days > 366 || per_day < 1 || per_day > 200000) {
    std::fputs("casebus demo: --days must be 1..366 and --cases-per-day 1..200000\n", stderr);
    return 2;
  }
  auto cfg = LoadConfigOrSample("");
  if (!cfg) {
    std::fprintf(stderr, "casebus demo: embedded config: %s\n", cfg.error().message().c_str());
    return 1;
  }
  namespace fs = std::filesystem;
  std::string dir = flags->GetOr("keep", "");
  const bool keep = !dir.empty();
  if (!keep) {
    std::string tmpl = (fs::temp_directory_path() / "casebus-demo-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
      std::perror("casebus demo: mkdtemp");
      return 1;
    }
    dir = tmpl;
  }
  const int off = (*cfg)->calendar().utc_offset_minutes();
  // The week starting Monday 2026-11-16 00:00 local time.
  const Millis start = DaysFromCivil(2026, 11, 16) * kDay - off * kMinute;
  ManualClock clock(start);
  dispatch::AdapterRegistry registry;
  adapters::RegisterAllAdapters(registry);
  auto engine = server::Engine::Open(*cfg, {.data_dir = dir}, clock, registry);
  if (!engine) {
    std::fprintf(stderr, "casebus demo: %s\n", engine.error().ToString().c_str());
    return 1;
  }
  (*engine)->Start();
  std::printf("casebus demo — %s: %d departments, %d unit grids, %d categories\n", (*cfg)->name().c_str(),
              (*cfg)->departments_size(), (*cfg)->grids_size(), (*cfg)->categories_size());
  std::printf("data in %s; virtual clock from %s; every batch is fsynced\n\n", dir.c_str(),
              FormatIso(start, off).c_str());
  std::printf("%-15s %9s %8s %8s %9s %8s %8s %10s %6s\n", "day", "commands", "reports", "merged",
              "refused", "closed", "open", "escalated", "督办");

  DemoCity city(**cfg, std::strtoull(flags->GetOr("seed", "20261116").c_str(), nullptr, 10), per_day);
  city.Plan(start, days);
  const Millis end = start + days * kDay;
  const Millis step = 5 * kMinute;
  Millis day_end = start + kDay;
  std::map<std::string, int64_t> at_day_start;
  int64_t reports_day = 0, commands_day = 0;
  auto report_day = [&](Millis t) {
    v1::Request q;
    q.set_version(1);
    q.mutable_query()->mutable_status();
    auto st = (*engine)->Call(q);
    auto cl = [&] {
      v1::Request r;
      r.set_version(1);
      r.mutable_query()->mutable_closure();
      return (*engine)->Call(r);
    }();
    int64_t closed = 0;
    for (const auto& row : cl.query().by_district()) closed += row.closed();
    static uint64_t escalated_before = 0;
    const uint64_t escalated = st.query().status().escalations();
    std::printf("%-15s %9lld %8lld %8lld %9lld %8lld %8llu %10llu %6llu\n", DayLabel(t - kDay, off).c_str(),
                static_cast<long long>(commands_day), static_cast<long long>(reports_day),
                static_cast<long long>(city.counts_["merged"] - at_day_start["merged"]),
                static_cast<long long>(city.counts_["refused"] - at_day_start["refused"]),
                static_cast<long long>(closed),
                static_cast<unsigned long long>(st.query().status().open_cases()),
                static_cast<unsigned long long>(escalated - escalated_before),
                static_cast<unsigned long long>(st.query().status().supervisions_open()));
    escalated_before = escalated;
    std::fflush(stdout);
    at_day_start = city.counts_;
    reports_day = commands_day = 0;
  };
  for (Millis t = start; t <= end; t += step) {
    while (t >= day_end) {
      report_day(day_end);
      day_end += kDay;
    }
    if (city.Empty() || city.NextAt() > t) continue;
    clock.Set(t);
    std::vector<Action> taken;
    v1::Request req = city.Take(t, taken);
    for (const auto& a : taken) reports_day += a.step == Step::kReport;
    commands_day += req.commands_size();
    v1::Reply reply = (*engine)->Call(std::move(req));
    city.Observe(taken, reply, t);
  }
  clock.Set(end);
  // Let the dispatcher hand every work order to its department's spool.
  for (int i = 0; i < 600 && (*engine)->dispatcher().pending() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));

  std::printf("\nClosure as of %s, from the maintained ledger: the week's cases as they stand\n"
              "(应结案 'due' = handled + open past the deadline; ranked by the composite index)\n\n",
              FormatIso(end, off).c_str());
  for (v1::MetricsGroup g : {v1::BY_DEPARTMENT, v1::BY_DISTRICT, v1::BY_SOURCE}) {
    v1::Request q;
    q.set_version(1);
    q.mutable_query()->mutable_metrics()->set_group_by(g);
    auto answer = (*engine)->Call(q);
    std::fputs(query::FormatMetricsTable(answer.query().metrics()).c_str(), stdout);
    std::fputs("\n", stdout);
  }
  for (uint64_t id : {city.returned_case, city.reworked_case}) {
    if (!id) continue;
    v1::Request s;
    s.set_version(1);
    s.mutable_query()->mutable_show()->set_case_id(id);
    auto shown = (*engine)->Call(s);
    std::printf("\n%s", FormatCase(shown.query().found(), off).c_str());
  }
  const auto stats = (*engine)->stats();
  std::printf("\n%llu commands committed in %llu group commits; %llu work orders delivered to "
              "department spools (%llu still queued)\n",
              static_cast<unsigned long long>(stats.commands_committed),
              static_cast<unsigned long long>(stats.batches),
              static_cast<unsigned long long>((*engine)->dispatcher().delivered()),
              static_cast<unsigned long long>((*engine)->dispatcher().pending()));
  (*engine)->Stop();
  engine->reset();
  if (!keep) fs::remove_all(dir);
  else
    std::printf("data kept in %s; serve it and read the figures:\n"
                "  casebus token new --name me --role leader   (put its line under tokens: in access.yaml)\n"
                "  casebus serve --data %s --access access.yaml\n"
                "    then http://127.0.0.1:7470/dashboard#token=<the token>,\n"
                "  casebus report --month 2026-11 --format html --out report.html,\n"
                "  casebus ledger rebuild --verify --data %s (with the server stopped)\n",
                dir.c_str(), dir.c_str(), dir.c_str());
  return 0;
}

}  // namespace casebus::cli

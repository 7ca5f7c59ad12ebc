// Issue 3's acceptance scenario: 30 days of the sample city (2026-09-20 .. 2026-10-19, the
// National Day week with its make-up Sunday Sep 20 and Saturday Oct 10), more than 20,000
// cases, driven through the real engine on a virtual clock exactly as `casebus simulate`
// drives it. Every EV_ESCALATED the engine recorded is compared with an independent count:
// stage limits from the config, step instants from a reference working-time walk written here
// (it shares no code with core::WorkingCalendar), and the times this test chose for each case.
// No suspension, extension, return or rework: the unit tests cover those, and the reference
// stays a plain "start + fraction × limit, in the stage's measure".

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "adapters/register_all.h"
#include "casebus/v1/command.pb.h"
#include "engine/base/time_format.h"
#include "engine/config/loader.h"
#include "engine/server/engine.h"

namespace casebus {
namespace {

// ---- Reference working time: the sample calendar, walked day by day, window by window. ----

int64_t DayOf(const std::string& date) {  // "YYYY-MM-DD" → days since 1970-01-01
  using namespace std::chrono;
  const year_month_day ymd{year(std::stoi(date.substr(0, 4))),
                           month(static_cast<unsigned>(std::stoi(date.substr(5, 2)))),
                           day(static_cast<unsigned>(std::stoi(date.substr(8, 2))))};
  return sys_days(ymd).time_since_epoch().count();
}

int MinuteOfDay(const std::string& hhmm) {
  return std::stoi(hhmm.substr(0, 2)) * 60 + std::stoi(hhmm.substr(3, 2));
}

class ReferenceCalendar {
 public:
  explicit ReferenceCalendar(const v1::Calendar& c) : offset_(c.utc_offset_minutes() * kMinute) {
    for (const auto& w : c.windows())
      windows_.emplace_back(MinuteOfDay(w.start()), MinuteOfDay(w.end()));
    for (int d : c.work_weekdays()) weekdays_.insert(d);
    for (const auto& h : c.holidays()) holidays_.insert(DayOf(h));
    for (const auto& m : c.make_up_days()) make_up_.insert(DayOf(m));
  }

  Millis Midnight(int64_t day) const { return day * kDay - offset_; }
  int64_t LocalDay(Millis t) const {
    const Millis local = t + offset_;
    return local / kDay - (local % kDay < 0 ? 1 : 0);
  }
  bool Works(int64_t day) const {
    if (make_up_.count(day)) return true;
    if (holidays_.count(day)) return false;
    return weekdays_.count(static_cast<int>((day % 7 + 7 + 3) % 7) + 1) > 0;  // 1970-01-01: Thu
  }
  // The day's working windows as UTC [open, close); none on a day off.
  std::vector<std::pair<Millis, Millis>> Windows(int64_t day) const {
    std::vector<std::pair<Millis, Millis>> out;
    if (!Works(day)) return out;
    for (auto [from, to] : windows_)
      out.emplace_back(Midnight(day) + from * kMinute, Midnight(day) + to * kMinute);
    return out;
  }
  // The first instant at which `amount` (> 0) working ms from `start` are used up.
  Millis AddWorking(Millis start, Millis amount) const {
    for (int64_t d = LocalDay(start);; ++d) {
      for (auto [open, close] : Windows(d)) {
        const Millis from = std::max(open, start);
        if (from >= close) continue;
        if (amount <= close - from) return from + amount;
        amount -= close - from;
      }
    }
  }
  Millis WorkingBetween(Millis a, Millis b) const {
    Millis sum = 0;
    for (int64_t d = LocalDay(a); d <= LocalDay(b); ++d)
      for (auto [open, close] : Windows(d))
        sum += std::max<Millis>(0, std::min(close, b) - std::max(open, a));
    return sum;
  }
  // N working days end at the close of the N-th working day after the start's local day.
  Millis CloseOfNthWorkingDayAfter(Millis start, int n) const {
    int64_t d = LocalDay(start);
    for (int seen = 0; seen < n;) seen += Works(++d) ? 1 : 0;
    return Windows(d).back().second;
  }

 private:
  Millis offset_;
  std::vector<std::pair<int, int>> windows_;  // minutes after local midnight
  std::set<int> weekdays_;
  std::set<int64_t> holidays_, make_up_;
};

// One stage's limit in its own measure: wall time or working time from `start`.
struct StageRef {
  Millis start = 0;
  bool working = false;
  Millis limit_ms = 0;
};

StageRef StartStage(Millis start, const v1::TimeLimit& limit, const ReferenceCalendar& cal) {
  switch (limit.clock()) {
    case v1::WORKING_HOURS:
      return {start, true, std::llround(limit.value() * kHour)};
    case v1::WORKING_DAYS: {
      const int n = static_cast<int>(limit.value());
      return {start, true, cal.WorkingBetween(start, cal.CloseOfNthWorkingDayAfter(start, n))};
    }
    case v1::CALENDAR_DAYS:
      return {start, false, std::llround(limit.value() * kDay)};
    default:  // urgent hours
      return {start, false, std::llround(limit.value() * kHour)};
  }
}

Millis StepInstant(const StageRef& s, double fraction, const ReferenceCalendar& cal) {
  const Millis position = std::llround(fraction * static_cast<double>(s.limit_ms));
  return s.working ? cal.AddWorking(s.start, position) : s.start + position;
}

// ---- The scenario ----

struct LadderStep {
  std::string id;
  double fraction;
};
using Ladder = std::map<v1::Stage, std::vector<LadderStep>>;  // ascending by fraction

Ladder LadderOf(const v1::CityConfig& city) {
  Ladder out;
  auto take = [&](v1::Stage s, const auto& steps) {
    for (const auto& st : steps) out[s].push_back({st.id(), st.fraction()});
    std::stable_sort(out[s].begin(), out[s].end(),
                     [](const auto& a, const auto& b) { return a.fraction < b.fraction; });
  };
  take(v1::ACCEPT, city.escalation().ladder().accept());
  take(v1::HANDLE, city.escalation().ladder().handle());
  take(v1::VERIFY, city.escalation().ladder().verify());
  return out;
}

// Subcategories whose limits are the category's own: no 立案条件, no urgent variant, whole
// working days (the reference does not model a fraction of a working day).
std::vector<const v1::Category*> PlainCategories(const v1::CityConfig& city) {
  std::vector<const v1::Category*> out;
  for (const auto& c : city.categories()) {
    const auto& l = c.limits();
    if (!l.has_accept() || !l.has_handle() || !l.has_verify()) continue;
    if (c.conditions_size() > 0 || c.has_urgent()) continue;
    bool whole = true;
    for (const auto* t : {&l.accept(), &l.handle(), &l.verify()})
      whole = whole && (t->clock() != v1::WORKING_DAYS || t->value() == std::floor(t->value()));
    if (whole) out.push_back(&c);
  }
  return out;
}

// What the test chose for one case; 0 = never (the case stalls there or the time is past the end).
struct PlannedCase {
  const v1::Category* category = nullptr;
  std::string grid;
  Millis report = 0, register_at = 0, dispatch = 0, accept = 0, resolve = 0, verify = 0, close = 0;
};

struct Expected {
  v1::Stage stage;
  std::string step;
  Millis due;
  auto operator<=>(const Expected&) const = default;
};

class ScenarioPlanner {
 public:
  ScenarioPlanner(const v1::CityConfig& city, const ReferenceCalendar& cal, const Ladder& ladder,
                  Millis start, Millis end, uint64_t seed)
      : city_(city), cal_(cal), ladder_(ladder), start_(start), end_(end), rng_(seed) {}

  std::vector<PlannedCase> Plan(int cases) {
    std::vector<Millis> reports;
    reports.reserve(cases);
    for (int i = 0; i < cases; ++i) reports.push_back(ReportTime());
    std::sort(reports.begin(), reports.end());
    // Category and grid cycle so that no two reports within 24 h share both: no duplicates.
    const auto categories = PlainCategories(city_);
    std::vector<PlannedCase> out;
    for (int i = 0; i < cases; ++i) {
      PlannedCase c;
      c.category = categories[i % categories.size()];
      c.grid = city_.grids(static_cast<int>((i / categories.size()) % city_.grids_size())).code();
      c.report = reports[i];
      Times(c);
      out.push_back(std::move(c));
    }
    return out;
  }

  // The reference: each stage's steps with instant ≤ the stage's end (the command that ends it,
  // or the end of the scenario). A step due at the instant of that command fires before it;
  // `ties` counts those.
  std::vector<Expected> ExpectedSteps(const PlannedCase& c, size_t& ties) const {
    std::vector<Expected> out;
    if (!c.dispatch) return out;
    const auto& l = c.category->limits();
    Add(out, v1::ACCEPT, StartStage(c.dispatch, l.accept(), cal_), c.accept ? c.accept : end_,
        ties);
    Add(out, v1::HANDLE, StartStage(c.dispatch, l.handle(), cal_), c.resolve ? c.resolve : end_,
        ties);
    if (c.resolve) {
      Add(out, v1::VERIFY, StartStage(c.resolve, l.verify(), cal_), c.verify ? c.verify : end_,
          ties);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  uint64_t Below(uint64_t n) { return rng_() % n; }
  Millis Between(Millis a, Millis b) {  // uniform in [a, b)
    return b <= a ? a
                  : a + static_cast<Millis>(static_cast<double>(rng_() >> 11) * 0x1.0p-53 *
                                            static_cast<double>(b - a));
  }

  // 3 in 4 reports come in 08:00–18:00 local time, the rest at any hour, holidays included.
  Millis ReportTime() {
    const Millis day = start_ + static_cast<Millis>(Below(30)) * kDay;
    const Millis minute =
        Below(4) < 3 ? 480 + static_cast<Millis>(Below(600)) : static_cast<Millis>(Below(1440));
    return day + minute * kMinute + static_cast<Millis>(Below(60)) * 1000;
  }

  Millis Instant(Millis start, const v1::TimeLimit& l, double fraction) const {
    return StepInstant(StartStage(start, l, cal_), fraction, cal_);
  }

  // Accept before, between and after the accept steps (some exactly at one), resolve before the
  // red 100 %, between it and the 督办 200 %, after it (some exactly at either), verify before
  // or after its step; about 4 % of cases stall at each stage and stay open.
  void Times(PlannedCase& c) {
    const auto& l = c.category->limits();
    c.register_at = c.report + Between(60'000, 1'800'000);
    c.dispatch = c.register_at + Between(60'000, 1'200'000);
    const uint64_t stall = Below(100);
    const Millis a1 = Instant(c.dispatch, l.accept(), 1.0);
    const uint64_t ra = Below(100);
    c.accept = ra < 3    ? Instant(c.dispatch, l.accept(), 0.5)
               : ra < 6  ? a1
               : ra < 55 ? Between(c.dispatch + 1000, a1)
                         : Between(a1 + 1, a1 + (a1 - c.dispatch));
    const Millis h1 = Instant(c.dispatch, l.handle(), 1.0),
                 h2 = Instant(c.dispatch, l.handle(), 2.0);
    const uint64_t rr = Below(100);
    c.resolve = rr < 3    ? h1
                : rr < 6  ? h2
                : rr < 50 ? Between(c.dispatch, h1)
                : rr < 80 ? Between(h1 + 1, h2)
                          : Between(h2 + 1, h2 + (h2 - c.dispatch) / 2);
    if (c.resolve <= c.accept) c.resolve = c.accept + Between(60'000, 7'200'000);
    const Millis v100 = Instant(c.resolve, l.verify(), 1.0);
    const uint64_t rv = Below(100);
    c.verify = rv < 4    ? v100
               : rv < 70 ? Between(c.resolve + 1000, v100)
                         : Between(v100 + 1, v100 + (v100 - c.resolve) / 2);
    c.close = c.verify + Between(60'000, 3'600'000);
    if (stall < 4) c.accept = 0;
    if (stall < 8) c.resolve = 0;
    if (stall < 12) c.verify = 0;
    // Nothing happens past the end, nor after a step that did not happen.
    Millis* order[] = {&c.register_at, &c.dispatch, &c.accept, &c.resolve, &c.verify, &c.close};
    bool stopped = false;
    for (Millis* t : order) {
      stopped = stopped || *t == 0 || *t > end_;
      if (stopped) *t = 0;
    }
  }

  void Add(std::vector<Expected>& out, v1::Stage stage, const StageRef& s, Millis until,
           size_t& ties) const {
    for (const auto& step : ladder_.at(stage)) {
      const Millis due = StepInstant(s, step.fraction, cal_);
      if (due <= until) out.push_back({stage, step.id, due});
      ties += due == until ? 1 : 0;
    }
  }

  const v1::CityConfig& city_;
  const ReferenceCalendar& cal_;
  const Ladder& ladder_;
  Millis start_, end_;
  std::mt19937_64 rng_;
};

// ---- Driving the engine the way engine/cli/simulate.cc does ----

enum class Kind { kReport, kRegister, kDispatch, kAccept, kResolve, kVerify, kClose };

struct Action {
  Millis at;
  size_t index;  // into the planned cases
  Kind kind;
};

std::vector<Action> Actions(const std::vector<PlannedCase>& cases) {
  std::vector<Action> out;
  for (size_t i = 0; i < cases.size(); ++i) {
    const PlannedCase& c = cases[i];
    const std::pair<Millis, Kind> steps[] = {
        {c.report, Kind::kReport}, {c.register_at, Kind::kRegister}, {c.dispatch, Kind::kDispatch},
        {c.accept, Kind::kAccept}, {c.resolve, Kind::kResolve},      {c.verify, Kind::kVerify},
        {c.close, Kind::kClose}};
    for (auto [at, kind] : steps)
      if (at) out.push_back({at, i, kind});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Action& a, const Action& b) { return a.at < b.at; });
  return out;
}

// The engine in a temporary directory on a ManualClock, with simulate.cc's options.
class Simulation {
 public:
  Simulation(std::shared_ptr<const v1::CityConfig> city, Millis start) : clock_(start) {
    char tmpl[] = "/tmp/casebus-scenario-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    adapters::RegisterAllAdapters(registry_);
    auto e = server::Engine::Open(std::move(city),
                                  {.data_dir = dir_, .sync = false, .run_dispatcher = false},
                                  clock_, registry_);
    EXPECT_TRUE(e.has_value()) << e.error().ToString();
    if (e) engine_ = std::move(*e);
    if (engine_) engine_->Start();
  }
  ~Simulation() {
    engine_.reset();  // stops it
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return engine_ != nullptr; }

  // Every ladder step fires at its own instant: the clock visits each one up to `t`.
  void Advance(Millis t) {
    for (Millis due = engine_->next_due(); due != 0 && due <= t; due = engine_->next_due()) {
      clock_.Set(std::max(due, clock_.Now()));
      engine_->Tick();
      ++ticks_;
    }
    clock_.Set(std::max(t, clock_.Now()));
  }
  v1::CommandResult Execute(v1::Command command) {
    v1::Request req;
    req.set_version(1);
    *req.add_commands() = std::move(command);
    v1::Reply reply = engine_->Call(std::move(req));
    return reply.results_size() ? reply.results(0) : v1::CommandResult{};
  }
  v1::QueryResult Ask(v1::Query q) {
    v1::Request req;
    req.set_version(1);
    *req.mutable_query() = std::move(q);
    return engine_->Call(std::move(req)).query();
  }
  size_t ticks() const { return ticks_; }

 private:
  ManualClock clock_;
  std::string dir_;
  dispatch::AdapterRegistry registry_;
  std::unique_ptr<server::Engine> engine_;
  size_t ticks_ = 0;
};

// The command for one action; departments act on their own work orders.
v1::Command CommandFor(const Action& a, const PlannedCase& c, uint64_t id,
                       const std::string& dept) {
  static const char* kNames[] = {"report",  "register", "dispatch", "accept",
                                 "resolve", "verify",   "close"};
  v1::Command cmd;
  cmd.set_request_id(std::string(kNames[static_cast<int>(a.kind)]) + "-" + std::to_string(a.index));
  cmd.set_actor("op-sim");
  switch (a.kind) {
    case Kind::kReport:
      cmd.set_actor("inspector-07");
      cmd.mutable_report()->set_category(c.category->code());
      cmd.mutable_report()->mutable_place()->set_grid(c.grid);
      cmd.mutable_report()->set_source(v1::INSPECTOR);
      break;
    case Kind::kRegister:
      cmd.mutable_register_()->set_case_id(id);
      break;
    case Kind::kDispatch:
      cmd.mutable_dispatch()->set_case_id(id);
      break;
    case Kind::kAccept:
      cmd.set_actor(dept);
      cmd.mutable_accept()->set_case_id(id);
      break;
    case Kind::kResolve:
      cmd.set_actor(dept);
      cmd.mutable_resolve()->set_case_id(id);
      cmd.mutable_resolve()->add_evidence("photo://after/" + std::to_string(id));
      break;
    case Kind::kVerify:
      cmd.mutable_verify()->set_case_id(id);
      cmd.mutable_verify()->set_passed(true);
      break;
    case Kind::kClose:
      cmd.mutable_close()->set_case_id(id);
      break;
  }
  return cmd;
}

std::string StageName(v1::Stage s) {
  std::string n = v1::Stage_Name(s);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return n;
}

std::string Describe(const std::vector<Expected>& steps) {
  std::string out;
  for (const auto& e : steps)
    out += " " + StageName(e.stage) + "/" + e.step + "@" + FormatIso(e.due, 480);
  return out.empty() ? " none" : out;
}

// Escalations over all cases, the engine's against the reference's.
struct Tally {
  std::map<std::pair<v1::Stage, std::string>, std::array<int64_t, 2>> counts;  // {ref, engine}
  size_t mismatched = 0;  // cases whose escalations differ (the first 5 are reported)
  size_t late = 0;        // escalations applied after their due instant

  void Add(const v1::Case& c, const std::vector<Expected>& want) {
    std::vector<Expected> got;
    for (const auto& e : c.history()) {
      if (e.type() != v1::EV_ESCALATED) continue;
      got.push_back({e.stage(), e.step_id(), e.due_at_ms()});
      ++counts[{e.stage(), e.step_id()}][1];
      late += e.at_ms() != e.due_at_ms() ? 1 : 0;
    }
    for (const auto& e : want) ++counts[{e.stage, e.step}][0];
    std::sort(got.begin(), got.end());
    if (got == want || ++mismatched > 5) return;
    ADD_FAILURE() << "case " << c.id() << " (" << c.category() << ", dispatched "
                  << FormatIso(c.dispatched_at_ms(), 480) << "): reference" << Describe(want)
                  << "; engine" << Describe(got);
  }
};

// The deadlines shown for people against the reference's 100 % instants.
void CheckDeadlines(const v1::Case& c, const PlannedCase& p, const ReferenceCalendar& cal) {
  const auto& l = p.category->limits();
  EXPECT_EQ(c.accept_deadline_ms(), StepInstant(StartStage(p.dispatch, l.accept(), cal), 1.0, cal))
      << c.id();
  EXPECT_EQ(c.handle_deadline_ms(), StepInstant(StartStage(p.dispatch, l.handle(), cal), 1.0, cal))
      << c.id();
  if (p.resolve) {
    EXPECT_EQ(c.verify_deadline_ms(), StepInstant(StartStage(p.resolve, l.verify(), cal), 1.0, cal))
        << c.id();
  }
}

constexpr int kCases = 21'000;
constexpr uint64_t kSeed = 20260920;

TEST(ScenarioTest, ThirtyDaysAcrossNationalDayEscalateAsTheReferenceCounts) {
  auto loaded = config::LoadCityConfigFile(CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  const std::shared_ptr<const v1::CityConfig> city = *loaded;
  ASSERT_EQ(city->calendar().weekday_windows_size(), 0)
      << "the reference models one set of windows";
  ASSERT_EQ(city->calendar().utc_offset_minutes(), 480);
  const ReferenceCalendar cal(city->calendar());
  // What the scenario is about: the make-up Sunday and Saturday work, the holiday week does not.
  ASSERT_TRUE(cal.Works(DayOf("2026-09-20")) && cal.Works(DayOf("2026-10-10")));
  ASSERT_FALSE(cal.Works(DayOf("2026-10-01")) || cal.Works(DayOf("2026-10-07")));

  const Ladder ladder = LadderOf(*city);
  const Millis start = cal.Midnight(DayOf("2026-09-20")), end = cal.Midnight(DayOf("2026-10-20"));
  ScenarioPlanner planner(*city, cal, ladder, start, end, kSeed);
  const std::vector<PlannedCase> cases = planner.Plan(kCases);
  const std::vector<Action> actions = Actions(cases);
  ASSERT_GE(cases.size(), 20'000u);

  Simulation sim(city, start);
  ASSERT_TRUE(sim.ok());
  std::vector<uint64_t> ids(cases.size(), 0);
  std::vector<std::string> depts(cases.size());
  size_t refused = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const Action& a : actions) {
    sim.Advance(a.at);
    const v1::CommandResult r =
        sim.Execute(CommandFor(a, cases[a.index], ids[a.index], depts[a.index]));
    if (r.code() != v1::OK || r.merged()) {
      if (++refused <= 5) {
        ADD_FAILURE() << r.request_id() << " at " << FormatIso(a.at, 480) << ": " << r.message();
      }
      continue;
    }
    if (a.kind == Kind::kReport) ids[a.index] = r.case_id();
    if (a.kind == Kind::kDispatch) depts[a.index] = r.department();
  }
  sim.Advance(end);
  const double engine_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(refused, 0u);

  // Read every case back; compare its escalations with the reference's, case by case.
  Tally tally;
  for (const auto& [stage, steps] : ladder)
    for (const auto& s : steps) tally.counts[{stage, s.id}] = {0, 0};
  size_t deadlines_checked = 0, ties = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    v1::Query show;
    show.mutable_show()->set_case_id(ids[i]);
    const v1::QueryResult found = sim.Ask(show);
    ASSERT_EQ(found.code(), v1::OK) << "case " << ids[i] << ": " << found.message();
    tally.Add(found.found(), planner.ExpectedSteps(cases[i], ties));
    if (i % 97 == 0 && cases[i].dispatch) {
      CheckDeadlines(found.found(), cases[i], cal);
      ++deadlines_checked;
    }
  }
  EXPECT_EQ(tally.mismatched, 0u) << "cases whose escalations differ from the reference";
  EXPECT_EQ(tally.late, 0u) << "the clock stops at every step's instant: none fires late";
  std::printf(
      "scenario: %zu cases, %zu commands, %zu clock stops at ladder instants, engine %.1f s; "
      "%zu steps due exactly when their stage ended; deadlines of %zu cases spot-checked\n",
      cases.size(), actions.size(), sim.ticks(), engine_seconds, ties, deadlines_checked);
  std::printf("%-8s %-16s %10s %10s\n", "stage", "step", "reference", "engine");
  for (const auto& [key, n] : tally.counts) {
    std::printf("%-8s %-16s %10lld %10lld\n", StageName(key.first).c_str(), key.second.c_str(),
                static_cast<long long>(n[0]), static_cast<long long>(n[1]));
    EXPECT_EQ(n[1], n[0]) << StageName(key.first) << "/" << key.second;
    EXPECT_GT(n[0], 0) << "the scenario reaches every step: " << StageName(key.first) << "/"
                       << key.second;
  }
}

}  // namespace
}  // namespace casebus

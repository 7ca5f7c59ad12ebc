// ledger_query_bench: what a leadership query costs after 1,000,000 and 10,000,000 cases of
// history (about 300 and 3,000 days at 3,300 cases a day). The ledger promises that a query
// reads counters, not cases, so year 10 costs what day 1 costs (engine/core/ledger.h); this
// measures it. In-process, no store: a core::Ledger on the sample city's config and calendar.
//
// History. Synthetic v1::Case objects, each put in with Ledger::Add(Ledger::Of(&case)) as the
// shard would after its last event: the sample city's grids, subcategories (weighted), sources
// (inspector, hotline, app, ...), departments chosen by the city's own Router for the case's
// category, grid and source. States by age: almost every case older than two weeks is closed
// (1 in 200 stays open past its deadline for good), recent ones are still open, some of them
// overdue; 2 % are voided at registration. The history ends on a fixed day, mid-month
// (2026-11-17), so "this month" reads 17 day buckets per key and a year reads the ragged ends
// plus 11 month roll-ups. TakeDirty() is called once a simulated day, as the engine's commits
// would drain it.
//
// Queries, each timed alone (steady_clock), after 100 warm-up ones; caches stay warm between
// them, as on a dashboard polled every few seconds:
//   month    Sum(kDepartment, first day of the month, last day)
//   year     Sum(kDepartment, last day − 364, last day); when the history is shorter than that
//            (1M cases ≈ 304 days) the range holds all of it and Sum answers from the totals
//   months   Sum(kDepartment) over the 12 whole months before the last day's month (the annual
//            通报): month roll-ups only, never the totals shortcut, as the last day is left out
//   totals   Totals(kDepartment), all history
//   answer   what CaseMachine::AnswerMetrics does for group_by=department over the month: the
//            name map, a row per configured department, Sum, FinishRate, RankRows, the city total
//   json     answer + the metrics JSON of GET /v1/metrics/closure, serialized
// Each run of each size is a child process (fork), so one size's heap does not inflate the
// other's; with --runs N the table shows, per figure, the median over the N runs of their p50
// and of their p99.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/json.hpp>

#include "bench/bench_util.h"
#include "engine/base/time_format.h"
#include "engine/config/loader.h"
#include "engine/config/time_zone.h"
#include "engine/core/ledger.h"
#include "engine/core/metrics_answer.h"
#include "engine/core/router.h"
#include "engine/query/metrics_json.h"

namespace {

using namespace casebus;
using Steady = std::chrono::steady_clock;
using core::Dim;

struct Options {
  std::vector<uint64_t> sizes{1'000'000, 10'000'000};
  int runs = 1;  // child processes per size; the table shows the medians
  int queries = 2'000;
  int per_day = 3'300;
  unsigned seed = 20261117;
  std::string last_day = "2026-11-17";
  std::string config = CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml";
};

enum Figure { kMonth, kYear, kMonths12, kTotals, kAnswer, kJson, kFigures };
constexpr const char* kFigureNames[kFigures] = {
    "Sum(department), this month (17 days)", "Sum(department), last 365 days",
    "Sum(department), the 12 months before", "Totals(department), all history",
    "metrics answer, department, month", "answer + JSON (GET /v1/metrics/closure)"};
constexpr int kWarmUp = 100;

// What a child reports for one size (plain data: it crosses a pipe).
struct SizeResult {
  int status = 0;  // 0 ok, 2 failed
  uint64_t cases = 0, buckets = 0, rows[kFigures] = {};
  int64_t days = 0;
  double fill_s = 0, rss_before_mib = 0, rss_after_mib = 0;
  double p50_us[kFigures] = {}, p99_us[kFigures] = {}, max_us[kFigures] = {};
  int64_t closed = 0, open = 0, overdue_open = 0, voided = 0;
};

double RssMib() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, resident = 0;
  f >> size >> resident;
  return static_cast<double>(resident * sysconf(_SC_PAGESIZE)) / (1 << 20);
}


[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "ledger_query_bench: %s\n", what.c_str());
  std::exit(2);
}

// Weights 1/(rank+1)^0.8 over n items in a seeded random order: a few departments and
// categories get most of the cases, as in a real city.
std::discrete_distribution<size_t> Skewed(size_t n, std::mt19937_64& rng) {
  std::vector<double> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = 1.0 / std::pow(static_cast<double>(i + 1), 0.8);
  std::shuffle(w.begin(), w.end(), rng);
  return std::discrete_distribution<size_t>(w.begin(), w.end());
}

// Synthetic cases of the sample city. One v1::Case is reused; Make() rewrites it.
class CityHistory {
 public:
  CityHistory(const v1::CityConfig& cfg, const core::Router& router, unsigned seed)
      : router_(router), rng_(seed) {
    for (const auto& c : cfg.categories())
      if (c.has_limits() && !c.parent().empty()) categories_.push_back(c.code());
    for (const auto& g : cfg.grids()) grids_.push_back(g.code());
    if (categories_.empty() || grids_.empty()) Die("the config has no subcategories or grids");
    category_ = Skewed(categories_.size(), rng_);
    grid_ = std::uniform_int_distribution<size_t>(0, grids_.size() - 1);
  }

  // A case registered on local day `day` (city offset `offset_min`), `age` days before the
  // history's last day. Counts what it made in `r`.
  const v1::Case& Make(int64_t day, int64_t age, int offset_min, SizeResult& r) {
    v1::Case& c = case_;
    c.Clear();
    const size_t cat = category_(rng_), grid = grid_(rng_);
    const v1::Source source = kSources[source_(rng_)];
    c.set_category(categories_[cat]);
    c.mutable_place()->set_grid(grids_[grid]);
    c.set_source(source);
    const Millis reported = day * kDay - offset_min * kMinute + hour_(rng_) * kMinute;
    c.set_reported_at_ms(reported);
    c.set_registered_at_ms(reported + 5 * kMinute);
    if (unit_(rng_) < 0.02) {  // not a case for the city: voided at registration
      c.set_state(v1::VOIDED);
      ++r.voided;
      return c;
    }
    c.set_department(Department(cat, grid, source));
    c.set_dispatched_at_ms(reported + 15 * kMinute);
    c.set_handle_deadline_ms(reported + 2 * kDay);
    if (unit_(rng_) < 0.04) c.set_rework_count(1);
    if (unit_(rng_) < 0.03) c.set_extension_count(1), c.set_extension_hours(24);
    const double open_share = age <= 0 ? 0.7 : 0.6 * std::exp(-static_cast<double>(age) / 4) + 0.005;
    if (unit_(rng_) >= open_share) {
      c.set_state(v1::CLOSED);
      c.set_resolved_at_ms(reported + 20 * kHour);
      c.set_closed_at_ms(reported + 26 * kHour);
      c.set_closed_on_time(unit_(rng_) < 0.9);
      ++r.closed;
      return c;
    }
    ++r.open;
    const double s = unit_(rng_);
    c.set_state(s < 0.2 ? v1::DISPATCHED : s < 0.7 ? v1::ACCEPTED : v1::RESOLVED);
    if (c.state() == v1::RESOLVED) {
      c.set_resolved_at_ms(reported + 30 * kHour);
    } else if (age > 2 && unit_(rng_) < 0.6) {  // past its deadline, still open
      c.set_overdue_at_ms(c.handle_deadline_ms());
      c.set_escalation_count(1);
      if (unit_(rng_) < 0.3) c.set_supervision_count(1);
      ++r.overdue_open;
    }
    return c;
  }

 private:
  static constexpr v1::Source kSources[] = {v1::INSPECTOR, v1::HOTLINE, v1::APP,
                                            v1::SENSOR,    v1::OPEN311, v1::SUPERIOR};

  // The city's routing for (category, grid, source), computed once per triple.
  const std::string& Department(size_t cat, size_t grid, v1::Source source) {
    const uint64_t key = (uint64_t{cat} << 32) | (uint64_t{grid} << 8) | static_cast<uint64_t>(source);
    auto it = routes_.find(key);
    if (it != routes_.end()) return it->second;
    v1::Case probe;
    probe.set_category(categories_[cat]);
    probe.mutable_place()->set_grid(grids_[grid]);
    probe.set_source(source);
    auto d = router_.Route(probe);
    if (!d) Die("route " + categories_[cat] + " at " + grids_[grid] + ": " + d.error().message());
    return routes_.emplace(key, d->department()).first->second;
  }

  const core::Router& router_;
  std::mt19937_64 rng_;
  std::vector<std::string> categories_, grids_;
  std::discrete_distribution<size_t> category_;
  std::uniform_int_distribution<size_t> grid_{0, 0};
  std::discrete_distribution<size_t> source_{50, 30, 10, 5, 3, 2};
  std::uniform_int_distribution<int> hour_{8 * 60 + 30, 17 * 60 + 30};  // minutes after midnight
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  std::unordered_map<uint64_t, std::string> routes_;
  v1::Case case_;
};

// p50, p99 and max of `query` over `n` timed calls, in µs; `rows` gets its last result size.
template <typename Query>
void Measure(int n, Query query, double& p50, double& p99, double& max, uint64_t& rows) {
  for (int i = 0; i < kWarmUp; ++i) rows = query();
  std::vector<double> us(static_cast<size_t>(n));
  for (auto& u : us) {
    const auto t0 = Steady::now();
    rows = query();
    u = std::chrono::duration<double, std::micro>(Steady::now() - t0).count();
  }
  std::sort(us.begin(), us.end());
  p50 = us[us.size() / 2];
  p99 = us[std::min(us.size() - 1, static_cast<size_t>(std::ceil(0.99 * static_cast<double>(us.size()))) - 1)];
  max = us.back();
}

SizeResult MeasureSize(const Options& o, uint64_t n) {
  SizeResult r;
  auto cfg = config::LoadCityConfigFile(o.config);
  if (!cfg) Die(cfg.error().message());
  auto offsets = config::CalendarOffsets(**cfg);
  if (!offsets) Die(offsets.error().message());
  auto router = core::Router::Compile(**cfg);
  if (!router) Die(router.error().message());
  const core::WorkingCalendar calendar((*cfg)->calendar(), std::move(*offsets));
  const int offset_min = (*cfg)->calendar().utc_offset_minutes();
  const int64_t last = *ParseDate(o.last_day);
  const int64_t days = (static_cast<int64_t>(n) + o.per_day - 1) / o.per_day;
  const int64_t first = last - days + 1;
  CityHistory history(**cfg, *router, o.seed);

  r.rss_before_mib = RssMib();
  const auto t0 = Steady::now();
  core::Ledger ledger(**cfg, calendar);
  uint64_t made = 0;
  for (int64_t day = first; day <= last && made < n; ++day) {
    for (int i = 0; i < o.per_day && made < n; ++i, ++made)
      ledger.Add(ledger.Of(&history.Make(day, last - day, offset_min, r)));
    (void)ledger.TakeDirty();
    if ((day - first) % 100 == 99 || made == n)
      std::fprintf(stderr, "  N=%llu: %llu cases filled (day %lld of %lld), %.0f s, RSS %.0f MiB\n",
                   static_cast<unsigned long long>(n), static_cast<unsigned long long>(made),
                   static_cast<long long>(day - first + 1), static_cast<long long>(days),
                   std::chrono::duration<double>(Steady::now() - t0).count(), RssMib());
  }
  r.fill_s = std::chrono::duration<double>(Steady::now() - t0).count();
  r.rss_after_mib = RssMib();
  r.cases = made;
  r.days = days;
  r.buckets = ledger.bucket_count();

  int y;
  unsigned m, d;
  CivilFromDays(last, y, m, d);
  const int64_t month_start = DaysFromCivil(y, m, 1);
  const int64_t year_before = DaysFromCivil(y - 1, m, 1);
  const v1::CityConfig& city = **cfg;
  // The engine's own answer (core::AnswerMetrics), for the month, as GET /v1/metrics/closure.
  const core::UnitNames names = core::UnitNamesOf(city);
  v1::Metrics month;
  month.set_group_by(v1::BY_DEPARTMENT);
  month.set_from(FormatDate(month_start));
  month.set_to(FormatDate(last));
  auto answer = [&] {
    v1::QueryResult r = core::AnswerMetrics(ledger, city, names, month, last, Millis{0});
    if (r.code() != v1::OK) Die(r.message());
    return r.metrics();
  };
  const std::vector<std::function<uint64_t()>> queries = {
      [&] { return ledger.Sum(Dim::kDepartment, month_start, last).size(); },
      [&] { return ledger.Sum(Dim::kDepartment, last - 364, last).size(); },
      [&] { return ledger.Sum(Dim::kDepartment, year_before, month_start - 1).size(); },
      [&] { return ledger.Totals(Dim::kDepartment).size(); },
      [&] { return static_cast<uint64_t>(answer().rows_size()); },
      [&] { return boost::json::serialize(query::MetricsJson(answer(), offset_min)).size(); },
  };
  for (int f = 0; f < kFigures; ++f)
    Measure(o.queries, queries[f], r.p50_us[f], r.p99_us[f], r.max_us[f], r.rows[f]);
  return r;
}

// Runs one size in a child process; the child sends its SizeResult back through a pipe.
SizeResult MeasureInChild(const Options& o, uint64_t n) {
  int fds[2];
  if (pipe(fds) != 0) Die("pipe");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) Die("fork");
  if (pid == 0) {
    close(fds[0]);
    SizeResult r = MeasureSize(o, n);
    ssize_t w = write(fds[1], &r, sizeof r);
    _exit(w == static_cast<ssize_t>(sizeof r) ? 0 : 1);
  }
  close(fds[1]);
  SizeResult r;
  r.status = 2;
  size_t got = 0;
  for (ssize_t k;
       got < sizeof r && (k = read(fds[0], reinterpret_cast<char*>(&r) + got, sizeof r - got)) > 0;)
    got += static_cast<size_t>(k);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != sizeof r) r.status = 2;
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// One SizeResult of the medians of `runs` (the failed ones left out; status 2 if all failed).
SizeResult MedianOf(const std::vector<SizeResult>& runs) {
  std::vector<const SizeResult*> ok;
  for (const auto& r : runs)
    if (r.status == 0) ok.push_back(&r);
  if (ok.empty()) return runs.front();
  SizeResult m = *ok.front();
  auto median = [&](auto field) {
    std::vector<double> v;
    for (const SizeResult* r : ok) v.push_back(field(*r));
    return Median(v);
  };
  m.fill_s = median([](const SizeResult& r) { return r.fill_s; });
  m.rss_before_mib = median([](const SizeResult& r) { return r.rss_before_mib; });
  m.rss_after_mib = median([](const SizeResult& r) { return r.rss_after_mib; });
  for (int f = 0; f < kFigures; ++f) {
    m.p50_us[f] = median([f](const SizeResult& r) { return r.p50_us[f]; });
    m.p99_us[f] = median([f](const SizeResult& r) { return r.p99_us[f]; });
    m.max_us[f] = median([f](const SizeResult& r) { return r.max_us[f]; });
  }
  return m;
}

std::string Count(uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

void PrintRun(int run, uint64_t n, const SizeResult& r) {
  if (r.status != 0) {
    std::printf("  run %d, N=%s: failed (the child process died: out of memory?)\n", run, Count(n).c_str());
    return;
  }
  std::printf("  run %d, N=%s: fill %.1f s; p50/p99 µs:", run, Count(n).c_str(), r.fill_s);
  for (int f = 0; f < kFigures; ++f) std::printf(" %.1f/%.1f", r.p50_us[f], r.p99_us[f]);
  std::printf("\n");
  std::fflush(stdout);
}

void PrintTables(const Options& o, const std::vector<SizeResult>& results) {
  std::printf("\n%12s %6s %10s %9s %9s %9s %9s %9s %8s\n", "cases", "days", "buckets", "closed %",
              "open %", "overdue %", "RSS MiB", "ledger MiB", "fill s");
  for (size_t i = 0; i < results.size(); ++i) {
    const SizeResult& r = results[i];
    if (r.status != 0) {
      std::printf("%12s failed: the child process died (out of memory?)\n", Count(o.sizes[i]).c_str());
      continue;
    }
    const double c = static_cast<double>(r.cases) / 100;
    std::printf("%12s %6lld %10s %9.1f %9.1f %9.2f %9.0f %10.0f %8.1f\n", Count(r.cases).c_str(),
                static_cast<long long>(r.days), Count(r.buckets).c_str(), static_cast<double>(r.closed) / c,
                static_cast<double>(r.open) / c, static_cast<double>(r.overdue_open) / c, r.rss_after_mib,
                r.rss_after_mib - r.rss_before_mib, r.fill_s);
  }
  std::printf("(buckets: the ledger's (key, day) buckets, bucket_count(); ledger MiB: RSS growth while "
              "filling; open and overdue: still open at the last day)\n\n");
  // One column pair (p50, p99) per size, then the ratios of the last size to the first.
  std::printf("%-42s", "query, latency in µs");
  for (size_t i = 0; i < results.size(); ++i) {
    const std::string label = Count(results[i].cases);
    std::printf(" %14s p50 %5s p99", label.c_str(), "");
  }
  if (results.size() > 1) std::printf("   ratio p50   ratio p99");
  std::printf("\n");
  for (int f = 0; f < kFigures; ++f) {
    std::printf("%-42s", kFigureNames[f]);
    for (const SizeResult& r : results) std::printf(" %18.2f %9.2f", r.p50_us[f], r.p99_us[f]);
    if (results.size() > 1 && results.front().status == 0 && results.back().status == 0)
      std::printf("   %9.2f   %9.2f", results.back().p50_us[f] / results.front().p50_us[f],
                  results.back().p99_us[f] / results.front().p99_us[f]);
    std::printf("\n");
  }
  std::printf("medians over %d run(s) of each run's p50 and p99; %d timed queries per figure and run "
              "after %d warm-up ones; rows per answer (first size):",
              o.runs, o.queries, kWarmUp);
  for (int f = 0; f < kJson; ++f) std::printf(" %llu", static_cast<unsigned long long>(results[0].rows[f]));
  std::printf("; JSON %llu bytes\n", static_cast<unsigned long long>(results[0].rows[kJson]));
  if (results.size() > 1)
    std::printf("ratio: the %s-case figure over the %s-case one\n", Count(results.back().cases).c_str(),
                Count(results.front().cases).c_str());
  for (const SizeResult& r : results)
    if (r.status == 0 && r.days <= 365)
      std::printf("N=%s: %lld days of history, so \"last 365 days\" is all of it and Sum answers from "
                  "the totals\n", Count(r.cases).c_str(), static_cast<long long>(r.days));
}

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--cases") {
      o.sizes = bench::ParseNumbers<uint64_t>(k, v, 1, 1'000'000'000);
    } else if (k == "--runs") {
      o.runs = bench::ParseNumber(k, v, 1, 99);
    } else if (k == "--queries") {
      o.queries = bench::ParseNumber(k, v, 1, 100'000'000);
    } else if (k == "--per-day") {
      o.per_day = bench::ParseNumber(k, v, 1, 100'000'000);
    } else if (k == "--seed") {
      o.seed = bench::ParseNumber<unsigned>(k, v, 0, UINT_MAX);
    } else {
      return false;
    }
  }
  return argc % 2 == 1 && !o.sizes.empty();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bench::ParseArgsOrExit(argc, argv, o, ParseArgs,
                         "ledger_query_bench [--cases 1000000,10000000] [--runs 1] "
                         "[--queries 2000] [--per-day 3300] [--seed N]");
  std::printf("ledger_query_bench: sample city, %d cases/day ending %s, core::Ledger filled "
              "directly (no store), one child process per size and run; figures in the order of "
              "the table below\n",
              o.per_day, o.last_day.c_str());
  std::vector<SizeResult> results;
  for (uint64_t n : o.sizes) {
    std::vector<SizeResult> runs;
    for (int run = 1; run <= o.runs; ++run) {
      runs.push_back(MeasureInChild(o, n));
      PrintRun(run, n, runs.back());
    }
    results.push_back(MedianOf(runs));
  }
  PrintTables(o, results);
  return 0;
}

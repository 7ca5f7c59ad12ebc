// pg_ticket_store: the PostgreSQL peer (bench/peers/README.md). Two modes:
//
// Lifecycle (default): --clients threads, each with its own connection and its own workload
// Generator (bench/workload), walk --window cases at a time through their plans, one command
// per transaction (ticket_store.h: --style app, statements one at a time, or tuned, one
// statement per command), synchronous_commit=on. Each run starts from empty tables
// and a CHECKPOINT, warms up, then counts committed commands for --seconds. Prints commands/s
// and cases/s per run and their medians.
//
// --closure-query: for each --history size, loads that many cases of 2026 (ticket_schema.h),
// builds the indexes, VACUUM ANALYZE, then times BASELINES §4 query (c) --repeat times.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/peers/sample_stats.h"
#include "bench/bench_util.h"
#include "bench/peers/ticket_schema.h"
#include "bench/peers/ticket_store.h"
#include "bench/workload/workload.h"
#include "engine/config/loader.h"
#include "engine/config/time_zone.h"

namespace {

using namespace casebus;
using namespace casebus::bench;
using Steady = std::chrono::steady_clock;

struct Options {
  std::string conninfo = "host=127.0.0.1 port=5433 user=postgres dbname=peers";
  std::string config = CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml";
  int clients = 4, window = 64, seconds = 10, warmup = 2, runs = 5, repeat = 10;
  uint64_t seed = 1;
  bool closure = false;
  TicketStore::Style style = TicketStore::Style::kApp;  // --style app|tuned
  bool sync = true;  // --no-sync: synchronous_commit=off, a reference point (BASELINES P7/P8)
  std::vector<uint64_t> history{1'000'000, 10'000'000};
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "pg_ticket_store: %s\n", what.c_str());
  std::exit(1);
}

// What the client threads share: counters read by the main thread, and the first error.
struct Shared {
  std::atomic<bool> stop{false}, measuring{false};
  std::atomic<uint64_t> commands{0}, cases{0}, merged{0}, refused{0};
  std::mutex mu;
  std::vector<double> latency_us;  // measured window only, merged at the end
  std::string error;
  void Fail(const std::string& e) {
    std::lock_guard lock(mu);
    if (error.empty()) error = e;
    stop = true;
  }
};

struct Slot {
  CasePlan plan;
  size_t step = 0;
  uint64_t case_id = 0;
};

void RunClient(const Options& o, const CityRules& rules, int id, Shared& shared) {
  auto store = TicketStore::Open(o.conninfo, rules, o.style, o.sync);
  if (!store) return shared.Fail(store.error().ToString());
  Generator gen(*rules.config, o.seed, id, {}, o.clients);
  std::vector<Slot> slots(o.window);
  for (auto& s : slots) s.plan = gen.NextCase();
  std::vector<double> latency;
  // Slots join kRampSlots at a time, one more group per round, so their plans run out of step
  // (all starting together would send every case's report, then every register, … in waves).
  constexpr size_t kRampSlots = 8;
  size_t active = std::min(slots.size(), kRampSlots);
  for (size_t i = 0; !shared.stop.load(std::memory_order_relaxed);) {
    Slot& s = slots[i];
    const v1::Command cmd = gen.Command(s.plan, s.step, s.case_id);
    const auto t0 = Steady::now();
    auto applied = store->Apply(cmd);
    if (!applied) return shared.Fail(cmd.request_id() + ": " + applied.error().ToString());
    if (shared.measuring.load(std::memory_order_relaxed))
      latency.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
    bool done = true;
    switch (applied->outcome) {
      case TicketStore::Outcome::kCommitted:
        shared.commands.fetch_add(1, std::memory_order_relaxed);
        if (s.step == 0) s.case_id = applied->case_id;
        done = ++s.step >= s.plan.steps.size();
        if (done) shared.cases.fetch_add(1, std::memory_order_relaxed);
        break;
      case TicketStore::Outcome::kMerged:
        shared.commands.fetch_add(1, std::memory_order_relaxed);
        shared.merged.fetch_add(1, std::memory_order_relaxed);
        break;
      case TicketStore::Outcome::kRefused:
        shared.refused.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    if (done) s = Slot{gen.NextCase()};
    if (++i == active) {
      i = 0;
      active = std::min(slots.size(), active + kRampSlots);
    }
  }
  std::lock_guard lock(shared.mu);
  shared.latency_us.insert(shared.latency_us.end(), latency.begin(), latency.end());
}

// Sleeps `seconds`, waking early when a client failed.
void Wait(Shared& shared, int seconds) {
  const auto until = Steady::now() + std::chrono::seconds(seconds);
  while (Steady::now() < until && !shared.stop.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

struct RunRates {
  double commands = 0, cases = 0;
};

RunRates OneRun(const Options& o, const CityRules& rules, PgConnection& admin, int run) {
  if (Status st = ResetTables(admin); !st.ok()) Die(st.ToString());
  Shared shared;
  std::vector<std::thread> threads;
  threads.reserve(o.clients);
  for (int c = 0; c < o.clients; ++c)
    threads.emplace_back([&, c] { RunClient(o, rules, c, shared); });
  Wait(shared, o.warmup);
  const uint64_t cmd0 = shared.commands, case0 = shared.cases, merged0 = shared.merged,
                 refused0 = shared.refused;
  shared.measuring = true;
  const auto t0 = Steady::now();
  Wait(shared, o.seconds);
  const uint64_t cmd1 = shared.commands, case1 = shared.cases, merged1 = shared.merged,
                 refused1 = shared.refused;
  const double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  shared.stop = true;
  for (auto& t : threads) t.join();
  if (!shared.error.empty()) Die(shared.error);
  RunRates r{static_cast<double>(cmd1 - cmd0) / secs, static_cast<double>(case1 - case0) / secs};
  std::printf(
      "  run %d: %8.0f lifecycle commands/s  %7.0f cases/s  "
      "(per command p50 %.2f ms, p99 %.2f ms; merged %llu, refused %llu)\n",
      run, r.commands, r.cases, Percentile(shared.latency_us, 0.50) / 1000,
      Percentile(shared.latency_us, 0.99) / 1000,
      static_cast<unsigned long long>(merged1 - merged0),
      static_cast<unsigned long long>(refused1 - refused0));
  std::fflush(stdout);
  return r;
}

void LifecycleMode(const Options& o, const v1::CityConfig& cfg, PgConnection& admin) {
  auto router = core::Router::Compile(cfg);
  if (!router) Die("routes: " + router.error().ToString());
  auto offsets = config::CalendarOffsets(cfg);
  if (!offsets) Die(offsets.error().ToString());
  const core::WorkingCalendar calendar(cfg.calendar(), *offsets);
  const CityRules rules{&cfg, &*router, &calendar};
  if (Status st = CreateSchema(admin, /*with_indexes=*/true); !st.ok()) Die(st.ToString());
  const double steps = Generator(cfg, o.seed, 0).MeanStepsPerCase();
  std::printf(
      "pg_ticket_store: %d clients (1 connection each) × %d cases in flight, one "
      "transaction per lifecycle command, %s, synchronous_commit=%s, %d s per run after "
      "%d s warm-up; %.2f commands per case on average (workload mix)\n",
      o.clients, o.window,
      o.style == TicketStore::Style::kApp ? "style app (BEGIN, statements one at a time, COMMIT)"
                                          : "style tuned (one statement per command, dispatch 2)",
      o.sync ? "on" : "off (reference only: not durable)", o.seconds, o.warmup, steps);
  std::vector<double> commands, cases;
  for (int r = 1; r <= o.runs; ++r) {
    const RunRates rates = OneRun(o, rules, admin, r);
    commands.push_back(rates.commands);
    cases.push_back(rates.cases);
  }
  std::printf(
      "median: %.0f lifecycle commands/s, %.0f cases/s (commands/s min %.0f, max %.0f, "
      "n=%zu)\n",
      Median(commands), Median(cases), *std::min_element(commands.begin(), commands.end()),
      *std::max_element(commands.begin(), commands.end()), commands.size());
}

double MillisSince(Steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
}

void ClosureSize(const Options& o, const HistoryDraw& draw, PgConnection& db, uint64_t n) {
  auto must = [](const Status& st) {
    if (!st.ok()) Die(st.ToString());
  };
  must(CreateSchema(db, /*with_indexes=*/false));
  auto t0 = Steady::now();
  must(LoadHistory(db, draw, n));
  const double load_s = MillisSince(t0) / 1000;
  t0 = Steady::now();
  must(db.Exec("SET maintenance_work_mem = '1GB'"));
  must(CreateIndexes(db));
  must(db.Exec("VACUUM ANALYZE cases"));
  const double index_s = MillisSince(t0) / 1000;
  auto sizes = db.Scalar(
      "SELECT pg_size_pretty(pg_relation_size('cases')) || ' heap / ' || "
      "pg_size_pretty(pg_total_relation_size('cases')) || ' with indexes; ' || "
      "(SELECT count(*) FROM cases WHERE created_at >= '2026-03-01' AND created_at < "
      "'2026-04-01') || ' cases in March, ' || (SELECT round(100.0 * count(*) FILTER (WHERE "
      "status = 'closed') / count(*)) FROM cases) || ' % closed'");
  if (!sizes) Die(sizes.error().ToString());
  std::printf("%llu cases: loaded in %.1f s, indexes + VACUUM ANALYZE %.1f s; %s\n",
              static_cast<unsigned long long>(n), load_s, index_s, sizes->c_str());
  auto plan = db.Query(std::string("EXPLAIN ") + kClosureQuery);
  if (!plan) Die(plan.error().ToString());
  for (int i = 0; i < PQntuples(plan->get()); ++i)
    std::printf("  plan: %s\n", PQgetvalue(plan->get(), i, 0));
  // One connection measures every size in turn: the previous size's statement goes first.
  must(db.Exec("DEALLOCATE ALL"));
  must(db.Prepare("closure", kClosureQuery));
  std::vector<double> ms;
  int groups = 0;
  for (int i = -2; i < o.repeat; ++i) {  // two unmeasured executions warm the cache
    t0 = Steady::now();
    auto r = db.ExecPrepared("closure", {});
    if (!r) Die(r.error().ToString());
    if (i >= 0) ms.push_back(MillisSince(t0));
    groups = PQntuples(r->get());
  }
  const double median = Median(ms), p99 = Percentile(ms, 0.99);  // Percentile sorts ms
  std::printf(
      "  closure rate by department, March 2026: %d departments; median %.1f ms, p99 "
      "%.1f ms (min %.1f, max %.1f) over %d executions\n",
      groups, median, p99, ms.front(), ms.back(), o.repeat);
  std::fflush(stdout);
}

void ClosureMode(const Options& o, const v1::CityConfig& cfg, PgConnection& db) {
  const HistoryDraw draw = DrawFromConfig(cfg);
  std::printf(
      "pg_ticket_store --closure-query: %zu departments, %zu categories, %zu grids; "
      "created_at indexed (the ticket schema's index)\n",
      draw.departments.size(), draw.categories.size(), draw.grids.size());
  for (uint64_t n : o.history) ClosureSize(o, draw, db, n);
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  const char* usage =
      "usage: pg_ticket_store [--conninfo S] [--config FILE] [--clients N] [--window N] "
      "[--seconds N] [--warmup N] [--runs N] [--seed N] [--style app|tuned] [--no-sync]\n"
      "       pg_ticket_store --closure-query [--history N,N...] [--repeat N] [--conninfo S]\n";
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--closure-query") {
      o.closure = true;
      continue;
    }
    if (k == "--no-sync") {
      o.sync = false;
      continue;
    }
    if (i + 1 >= argc) Die(std::string("missing value for ") + k + "\n" + usage);
    const std::string v = argv[++i];
    const int n = std::atoi(v.c_str());
    if (k == "--conninfo")
      o.conninfo = v;
    else if (k == "--config")
      o.config = v;
    else if (k == "--clients")
      o.clients = n;
    else if (k == "--window")
      o.window = n;
    else if (k == "--seconds")
      o.seconds = n;
    else if (k == "--warmup")
      o.warmup = n;
    else if (k == "--runs")
      o.runs = n;
    else if (k == "--repeat")
      o.repeat = n;
    else if (k == "--seed")
      o.seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--history")
      o.history = ParseSizes(v);
    else if (k == "--style" && (v == "app" || v == "tuned"))
      o.style = v == "app" ? TicketStore::Style::kApp : TicketStore::Style::kTuned;
    else
      Die("unknown flag " + k + "\n" + usage);
  }
  if (o.clients < 1 || o.window < 1 || o.seconds < 1 || o.warmup < 0 || o.runs < 1 ||
      o.repeat < 1 || o.history.empty())
    Die(std::string("bad flag value\n") + usage);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  const auto city = bench::LoadCityOrExit(o.config, "pg_ticket_store");
  auto admin = PgConnection::Open(o.conninfo);
  if (!admin) Die(admin.error().ToString());
  auto settings = admin->Scalar(
      "SELECT version() || '; synchronous_commit=' || current_setting('synchronous_commit') || "
      "', fsync=' || current_setting('fsync') || ', wal_sync_method=' || "
      "current_setting('wal_sync_method') || ', shared_buffers=' || "
      "current_setting('shared_buffers') || ', jit=' || current_setting('jit')");
  if (!settings) Die(settings.error().ToString());
  std::printf("server: %s\n", settings->c_str());
  if (o.closure)
    ClosureMode(o, *city, *admin);
  else
    LifecycleMode(o, *city, *admin);
  return 0;
}

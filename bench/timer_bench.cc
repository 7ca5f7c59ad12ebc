// timer_bench: the cost of advancing the clock through a working day and firing the escalation
// steps that come due, with 1,000,000 and 4,000,000 open cases (issue 3). In-process, no store:
// a core::CaseMachine on the sample city.
//
// Open cases. N − K "background" cases were dispatched (and accepted a minute later) at times
// spread over the six weeks before the measured day, in categories whose ladder leaves a step
// pending after that day but none inside it (rejection-sampled with the engine's own clock
// arithmetic); the steps that came due before the day fired while they were created, as the
// shard would have fired them. K "active" cases — the same K for every N, from a seed that does
// not depend on N — are dispatched during the preceding working day, half of them accepted;
// they are the only ones with steps inside the measured day. So the day fires the same steps
// whatever N is, while the timer queue holds about one entry per open case.
//
// One run: re-create the K active cases, fire what came due before 08:00 (not measured), then
// advance a virtual clock from 08:00 to 18:00 local in 1-minute ticks, each tick FireDue(now),
// the serialization the engine does before its commit (journal record and outbox notice per
// step) and TakeTimerChanges(); then void the active cases (not measured), so every run has
// the same N open. Memory per open case: resident set before and after creating the cases.
//
// Each N runs in a child process (fork), so one size's heap does not inflate the next one's
// measurements. A size that would not fit in memory is skipped with the numbers that say why.

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/config/loader.h"
#include "bench/bench_util.h"
#include "engine/config/time_zone.h"
#include "engine/core/case_machine.h"
#include "engine/core/stage_clock.h"

namespace {

using namespace casebus;
using Steady = std::chrono::steady_clock;

struct Options {
  std::vector<uint64_t> sizes{1'000'000, 4'000'000};
  int runs = 5;
  int active = 10'000;
  unsigned seed = 20260318;
  double reserve_gib = 3.0;  // memory left for the rest of the machine
  std::string config = CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml";
};

// The measured day: Wednesday 2026-03-18, 08:00–18:00 in Asia/Shanghai (00:00–10:00 UTC).
constexpr Millis kDayStart = 1'773'792'000'000;
constexpr Millis kDayEnd = kDayStart + 10 * kHour;
constexpr Millis kPrevOpen = kDayStart - kDay + 30 * kMinute;               // Tue 08:30 local
constexpr Millis kPrevClose = kDayStart - kDay + 9 * kHour + 30 * kMinute;  // Tue 17:30 local
constexpr int kTicks = static_cast<int>((kDayEnd - kDayStart) / kMinute);
constexpr int kMaxRuns = 16;

struct RunResult {
  double day_ms = 0;       // all ticks of the day, this thread's CPU time
  double day_wall_ms = 0;  // the same, wall-clock (includes time other processes took the CPU)
  uint64_t fired = 0;      // steps fired inside the day
  uint64_t empty_ticks = 0;
  double empty_tick_ns = 0;  // FireDue + TakeTimerChanges when nothing is due
};

// What a child process reports for one size (plain data: it crosses a pipe).
struct SizeResult {
  int status = 0;  // 0 ok, 1 skipped for memory, 2 failed
  uint64_t open = 0, timers = 0, setup_fired = 0;
  double bytes_per_case = 0, setup_s = 0, needed_gib = 0, available_gib = 0;
  int runs = 0;
  RunResult run[kMaxRuns];
};

using bench::MemAvailableBytes;
using bench::RssBytes;

double ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// With CASEBUS_PERF_CTL naming `perf record --control fifo:PATH -D -1`'s fifo, perf samples
// the measured ticks only.
void PerfControl(const char* command) {
  static const char* fifo = std::getenv("CASEBUS_PERF_CTL");
  if (fifo) std::ofstream(fifo) << command << std::endl;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "timer_bench: %s\n", what.c_str());
  std::exit(2);
}

class TimerBench {
 public:
  TimerBench(const Options& o, std::shared_ptr<const v1::CityConfig> cfg,
             std::unique_ptr<core::CaseMachine> m)
      : o_(o), cfg_(std::move(cfg)), m_(std::move(m)) {
    for (const auto& c : cfg_->categories()) {
      if (c.has_limits() || c.conditions_size() > 0) all_categories_.push_back(&c);
      if (c.has_limits() && c.conditions_size() == 0 && c.limits().has_handle())
        plain_categories_.push_back(&c);
    }
    for (const auto& s : cfg_->escalation().ladder().handle())
      handle_fractions_.push_back(s.fraction());
  }

  // Creates n − K background cases and the first K active ones; reports memory per case.
  // Returns false when the size would not fit (result says why).
  bool Populate(uint64_t n, SizeResult& result) {
    const auto t0 = Steady::now();
    const uint64_t background = n > static_cast<uint64_t>(o_.active) ? n - o_.active : 0;
    std::vector<std::pair<Millis, const v1::Category*>> specs = BackgroundSpecs(background);
    const int64_t rss0 = RssBytes();  // after the specs: they are the bench's, not the engine's
    result.available_gib = static_cast<double>(MemAvailableBytes()) / (1 << 30);
    Millis next_sweep = specs.empty() ? kDayStart : specs.front().first + kHour;
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto& [t, cat] = specs[i];
      if (t >= next_sweep) {
        result.setup_fired += Sweep(t);
        next_sweep = t + kHour;
      }
      Open(t, *cat, t + kMinute);
      if (i + 1 == 100'000 && specs.size() > 200'000) {
        // Extrapolate from the first 100k before the machine runs out of memory.
        const double per_case = static_cast<double>(RssBytes() - rss0) / 100'000;
        result.needed_gib =
            per_case * static_cast<double>(n) * 1.2 / (1 << 30);  // grows ~10% later
        if (result.needed_gib > result.available_gib - o_.reserve_gib) {
          result.bytes_per_case = per_case;
          return false;
        }
      }
    }
    result.setup_fired += Sweep(kDayStart);
    CreateActive(0);
    result.setup_s = std::chrono::duration<double>(Steady::now() - t0).count();
    result.open = n;
    result.bytes_per_case = static_cast<double>(RssBytes() - rss0) / static_cast<double>(n);
    return true;
  }

  // One measured day. REQUIRES: the run's active cases exist (Populate or NextRun).
  RunResult Day() {
    RunResult r;
    Sweep(kDayStart);  // what came due before 08:00 (the active cases' earlier steps)
    std::string bytes;
    Steady::duration total{};
    double cpu_ns = 0;
    PerfControl("enable");
    for (int i = 1; i <= kTicks; ++i) {
      const Millis now = kDayStart + i * kMinute;
      const double c0 = ThreadCpuNs();
      const auto t0 = Steady::now();
      std::vector<core::Effects> fired = m_->FireDue(now);
      for (const auto& fx : fired) {  // what the engine serializes for its commit
        bytes.clear();
        fx.record.AppendToString(&bytes);
        for (const auto& n : fx.notices) n.AppendToString(&bytes);
      }
      (void)m_->TakeTimerChanges();
      total += Steady::now() - t0;
      cpu_ns += ThreadCpuNs() - c0;
      r.fired += fired.size();
      r.empty_ticks += fired.empty() ? 1 : 0;
    }
    PerfControl("disable");
    r.day_wall_ms = std::chrono::duration<double, std::milli>(total).count();
    r.day_ms = cpu_ns / 1e6;
    constexpr int kEmpty = 200'000;
    const double e0 = ThreadCpuNs();
    for (int i = 0; i < kEmpty; ++i) {
      std::vector<core::Effects> none = m_->FireDue(kDayEnd);
      if (!none.empty()) Die("a step came due after the day ended");
      (void)m_->TakeTimerChanges();
    }
    r.empty_tick_ns = (ThreadCpuNs() - e0) / kEmpty;
    return r;
  }

  // Voids run `run`'s active cases (so N stays N) and creates the next run's.
  void NextRun(int run) {
    for (uint64_t id : active_ids_) {
      v1::Command c = NewCommand(id, 9);
      c.mutable_void_()->set_case_id(id);
      c.mutable_void_()->set_reason("bench: next run");
      Execute(c, kDayEnd);
    }
    active_ids_.clear();
    (void)m_->TakeTimerChanges();
    CreateActive(run + 1);
  }

  size_t timers() const { return m_->scheduled_timers(); }
  size_t remembered_requests() const { return m_->remembered_requests(); }
  double request_window_hours() const { return cfg_->intake().request_id_window_hours(); }
  // Protobuf's own estimate of one open case's v1::Case (fields and history), averaged.
  double CaseProtoBytes() const {
    size_t n = 0, bytes = 0;
    m_->ForEachCase([&](const v1::Case& c) {
      if (n == 10'000) return;
      bytes += c.SpaceUsedLong() + m_->HistoryBytes(c.id());
      ++n;
    });
    return n ? static_cast<double>(bytes) / static_cast<double>(n) : 0;
  }

 private:
  // Background cases: (dispatch instant, category), sorted by instant. Each has no handle
  // step in (kDayStart, kDayEnd] and at least one after it.
  std::vector<std::pair<Millis, const v1::Category*>> BackgroundSpecs(uint64_t count) {
    std::mt19937_64 rng(o_.seed);
    std::uniform_int_distribution<Millis> when(kDayStart - 42 * kDay, kDayStart - 2 * kHour);
    std::uniform_int_distribution<size_t> pick(0, plain_categories_.size() - 1);
    std::vector<std::pair<Millis, const v1::Category*>> specs;
    specs.reserve(count);
    while (specs.size() < count) {
      const Millis t = when(rng);
      const v1::Category* cat = plain_categories_[pick(rng)];
      const v1::StageClock h =
          core::StartClock(v1::HANDLE, t, cat->limits().handle(), m_->calendar());
      bool inside = false, later = false;
      auto check = [&](Millis at) {
        inside |= at > kDayStart && at <= kDayEnd;
        later |= at > kDayEnd;
      };
      check(core::DeadlineOf(h, m_->calendar()));
      for (double f : handle_fractions_)
        check(core::InstantAt(h, std::llround(f * static_cast<double>(h.limit_ms())),
                              m_->calendar()));
      if (!inside && later) specs.emplace_back(t, cat);
    }
    std::sort(specs.begin(), specs.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return specs;
  }

  // Run `run`'s K active cases, dispatched during the working day before the measured one,
  // half accepted 1–60 min later. Same seed for every N: the day fires the same steps.
  void CreateActive(int run) {
    std::mt19937_64 rng(o_.seed * 1000003ull + static_cast<unsigned>(run));
    std::uniform_int_distribution<Millis> when(kPrevOpen, kPrevClose);
    std::uniform_int_distribution<size_t> pick(0, all_categories_.size() - 1);
    std::vector<Millis> times(o_.active);
    for (auto& t : times) t = when(rng);
    std::sort(times.begin(), times.end());
    for (Millis t : times) {
      const v1::Category* cat = all_categories_[pick(rng)];
      const bool accept = std::bernoulli_distribution(0.5)(rng);
      const Millis accept_at = t + std::uniform_int_distribution<Millis>(1, 60)(rng) * kMinute;
      active_ids_.push_back(Open(t, *cat, accept ? accept_at : 0));
    }
    (void)m_->TakeTimerChanges();
  }

  // Report, register, dispatch at t; accept at accept_at (0: stays dispatched). Unique
  // coordinates 120 m apart, so the deduper never merges two of them.
  uint64_t Open(Millis t, const v1::Category& cat, Millis accept_at) {
    const uint64_t g = created_++;
    v1::Command report = NewCommand(g, 0);
    auto* r = report.mutable_report();
    r->set_category(cat.code());
    const auto& grid = cfg_->grids(static_cast<int>(g % cfg_->grids_size()));
    r->mutable_place()->set_grid(grid.code());
    r->mutable_place()->set_lat(28.0 + static_cast<double>(g / 2000) * 0.0011);
    r->mutable_place()->set_lon(118.0 + static_cast<double>(g % 2000) * 0.00125);
    r->mutable_place()->set_has_coordinates(true);
    r->set_source(v1::INSPECTOR);
    r->set_description("上水井盖破损，需更换");
    const uint64_t id = Execute(report, t);
    v1::Command c = NewCommand(g, 1);
    c.mutable_register_()->set_case_id(id);
    Execute(c, t);
    c = NewCommand(g, 2);
    c.mutable_dispatch()->set_case_id(id);
    Execute(c, t);
    if (accept_at > 0) {
      c = NewCommand(g, 3);
      c.mutable_accept()->set_case_id(id);
      Execute(c, accept_at);
    }
    if (created_ % 1024 == 0) (void)m_->TakeTimerChanges();
    return id;
  }

  static v1::Command NewCommand(uint64_t g, int step) {
    v1::Command c;
    char id[40];
    std::snprintf(id, sizeof id, "gw-%012llu-%d", static_cast<unsigned long long>(g), step);
    c.set_request_id(id);  // 17 bytes, like a gateway's idempotency key
    c.set_actor("bench");
    return c;
  }

  uint64_t Execute(const v1::Command& c, Millis now) {
    core::Effects fx = m_->Execute(c, now);
    if (fx.result.code() != v1::OK || fx.result.merged())
      Die(c.request_id() + ": " + fx.result.message() + (fx.result.merged() ? " (merged)" : ""));
    return fx.result.case_id();
  }

  uint64_t Sweep(Millis now) {
    const size_t n = m_->FireDue(now).size();
    (void)m_->TakeTimerChanges();
    return n;
  }

  const Options& o_;
  std::shared_ptr<const v1::CityConfig> cfg_;
  std::unique_ptr<core::CaseMachine> m_;
  std::vector<const v1::Category*> all_categories_, plain_categories_;
  std::vector<double> handle_fractions_;
  std::vector<uint64_t> active_ids_;
  uint64_t created_ = 0;
};

SizeResult MeasureSize(const Options& o, uint64_t n) {
  SizeResult result;
  auto cfg = config::LoadCityConfigFile(o.config);
  if (!cfg) Die(cfg.error().message());
  auto offsets = config::CalendarOffsets(**cfg);
  if (!offsets) Die(offsets.error().message());
  auto machine = core::CaseMachine::Create(*cfg, std::move(*offsets));
  if (!machine) Die(machine.error().message());
  TimerBench bench(o, *cfg, std::move(*machine));
  if (!bench.Populate(n, result)) {
    result.status = 1;
    return result;
  }
  result.timers = bench.timers();
  std::printf(
      "  N=%llu: %.0f s to create, %.0f bytes/open case (v1::Case with its encoded history: "
      "%.0f), %llu timers, %llu steps fired before the day, %llu request ids remembered "
      "(the last %.0f h of the 42 days)\n",
      static_cast<unsigned long long>(n), result.setup_s, result.bytes_per_case,
      bench.CaseProtoBytes(), static_cast<unsigned long long>(result.timers),
      static_cast<unsigned long long>(result.setup_fired),
      static_cast<unsigned long long>(bench.remembered_requests()),
      bench.request_window_hours());
  for (int r = 0; r < o.runs; ++r) {
    if (r > 0) bench.NextRun(r - 1);
    result.run[r] = bench.Day();
    const RunResult& d = result.run[r];
    std::printf(
        "    run %d: day %7.2f ms CPU (%7.2f ms wall), %6llu fired, %3llu of %d ticks fired "
        "nothing, empty tick %.0f ns\n",
        r + 1, d.day_ms, d.day_wall_ms, static_cast<unsigned long long>(d.fired),
        static_cast<unsigned long long>(d.empty_ticks), kTicks, d.empty_tick_ns);
    std::fflush(stdout);
  }
  result.runs = o.runs;
  return result;
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
    std::fflush(stdout);
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

void PrintTable(const Options& o, const std::vector<uint64_t>& sizes,
                const std::vector<SizeResult>& results) {
  std::printf("\n%10s %10s %9s %9s %11s %11s %11s %13s %13s %8s\n", "open", "bytes/case", "timers",
              "fired/day", "day CPU ms", "(min)", "day wall ms", "µs CPU/fired", "ns/empty tick",
              "setup s");
  std::vector<double> cpu_medians, cpu_mins, wall_medians;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const SizeResult& r = results[i];
    cpu_medians.push_back(0);
    cpu_mins.push_back(0);
    wall_medians.push_back(0);
    if (r.status == 1) {
      std::printf(
          "%10llu skipped: %.0f bytes/case on the first 100,000 → ~%.1f GiB needed, %.1f GiB "
          "available, %.1f GiB kept for the rest of the machine\n",
          static_cast<unsigned long long>(sizes[i]), r.bytes_per_case, r.needed_gib,
          r.available_gib, o.reserve_gib);
      continue;
    }
    if (r.status != 0) {
      std::printf("%10llu failed: the child process died (out of memory?)\n",
                  static_cast<unsigned long long>(sizes[i]));
      continue;
    }
    std::vector<double> day, wall, fired, per, empty;
    for (int k = 0; k < r.runs; ++k) {
      const RunResult& d = r.run[k];
      day.push_back(d.day_ms);
      wall.push_back(d.day_wall_ms);
      fired.push_back(static_cast<double>(d.fired));
      per.push_back(d.fired ? d.day_ms * 1000 / static_cast<double>(d.fired) : 0);
      empty.push_back(d.empty_tick_ns);
    }
    cpu_medians.back() = Median(day);
    cpu_mins.back() = *std::min_element(day.begin(), day.end());
    wall_medians.back() = Median(wall);
    std::printf("%10llu %10.0f %9llu %9.0f %11.2f %11.2f %11.2f %13.2f %13.0f %8.0f\n",
                static_cast<unsigned long long>(r.open), r.bytes_per_case,
                static_cast<unsigned long long>(r.timers), Median(fired), Median(day),
                cpu_mins.back(), Median(wall), Median(per), Median(empty), r.setup_s);
  }
  std::printf("medians of %d day-runs; a day = %d one-minute ticks, 08:00–18:00 local\n", o.runs,
              kTicks);
  for (size_t i = 1; i < sizes.size(); ++i)
    if (cpu_medians[0] > 0 && cpu_medians[i] > 0)
      std::printf(
          "day time ratio N=%llu / N=%llu (open ×%.1f): %.2f CPU (medians), %.2f CPU (minima), "
          "%.2f wall (medians)\n",
          static_cast<unsigned long long>(sizes[i]), static_cast<unsigned long long>(sizes[0]),
          static_cast<double>(sizes[i]) / static_cast<double>(sizes[0]),
          cpu_medians[i] / cpu_medians[0], cpu_mins[i] / cpu_mins[0],
          wall_medians[i] / wall_medians[0]);
}

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--cases") {
      o.sizes = bench::ParseNumbers<uint64_t>(k, v, 1, 1'000'000'000);
    } else if (k == "--runs") {
      o.runs = bench::ParseNumber(k, v, 1, kMaxRuns);
    } else if (k == "--active") {
      o.active = bench::ParseNumber(k, v, 0, 1'000'000'000);
    } else if (k == "--seed") {
      o.seed = bench::ParseNumber<unsigned>(k, v, 0, UINT_MAX);
    } else if (k == "--reserve-gib") {
      o.reserve_gib = bench::ParseNumber(k, v, 0.0, 1024.0);
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
                         "timer_bench [--cases 1000000,4000000] [--runs 5] [--active 10000] "
                         "[--seed N] [--reserve-gib 3]");
  std::printf(
      "timer_bench: %d active cases with steps in the measured day, the rest pending "
      "later; sample city; %d runs per size\n",
      o.active, o.runs);
  std::vector<SizeResult> results;
  for (uint64_t n : o.sizes) results.push_back(MeasureInChild(o, n));
  PrintTable(o, o.sizes, results);
  return 0;
}

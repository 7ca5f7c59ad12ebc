// apply_bench: the shard's CPU cost per lifecycle command, in-process (no ZeroMQ, no disk).
// It measures what the shard thread does for each command between the queue and the commit
// thread — CaseMachine::Execute, the journal record's serialization and audit link, the work
// order's outbox row, the reply's result — and then the replay of the journal it made through
// a fresh machine (recovery's speed, commands/s) three ways: event by event on one thread; in
// bulk on one thread (parse included); and as recovery runs it, core::ReplayJournal (parsed on
// a second thread, replayed in bulk behind it; wall time, records from memory, not RocksDB).
//
// Cases walk the full loop (report, register, dispatch, accept, resolve, verify, close) with
// `--window` cases in flight, interleaved as clients would send them; the clock advances 1 ms
// per batch of `--batch` commands. Prints ns/command (CPU time of this thread) per run and the
// median. Use under `perf record` to see where the shard's time goes.

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "casebus/v1/work_order.pb.h"
#include "bench/bench_util.h"
#include "engine/base/audit_chain.h"
#include "engine/config/loader.h"
#include "engine/config/time_zone.h"
#include "engine/core/case_machine.h"
#include "engine/core/replay_journal.h"

namespace {

using namespace casebus;

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Slot {
  uint64_t n = 0, case_id = 0;
  int step = 0;
};

class Steps {
 public:
  explicit Steps(const v1::CityConfig& cfg) {
    for (const auto& c : cfg.categories())
      if (c.has_limits() || c.conditions_size() > 0) categories_.push_back(c.code());
    for (const auto& g : cfg.grids()) grids_.push_back(g);
  }
  void Next(const Slot& s, v1::Command& c) {
    c.Clear();
    c.set_request_id("a-" + std::to_string(s.n) + "-" + std::to_string(s.step));
    c.set_actor("bench");
    switch (s.step) {
      case 0: {
        auto* r = c.mutable_report();
        r->set_category(categories_[s.n % categories_.size()]);
        const auto& g = grids_[(s.n / categories_.size()) % grids_.size()];
        r->mutable_place()->set_grid(g.code());
        r->mutable_place()->set_lat(g.lat() + static_cast<double>(s.n % 101) * 1e-5);
        r->mutable_place()->set_lon(g.lon() + static_cast<double>(s.n % 103) * 1e-5);
        r->mutable_place()->set_has_coordinates(true);
        r->set_source(v1::INSPECTOR);
        break;
      }
      case 1: c.mutable_register_()->set_case_id(s.case_id); break;
      case 2: c.mutable_dispatch()->set_case_id(s.case_id); break;
      case 3: c.mutable_accept()->set_case_id(s.case_id); break;
      case 4:
        c.mutable_resolve()->set_case_id(s.case_id);
        c.mutable_resolve()->add_evidence("p");
        break;
      case 5:
        c.mutable_verify()->set_case_id(s.case_id);
        c.mutable_verify()->set_passed(true);
        break;
      default: c.mutable_close()->set_case_id(s.case_id); break;
    }
  }

 private:
  std::vector<std::string> categories_;
  std::vector<v1::Grid> grids_;
};

struct RunResult {
  double apply_ns = 0, replay_ns = 0, bulk_ns = 0, piped_ns = 0;
  uint64_t commands = 0, refused = 0, merged = 0, records = 0;
  size_t journal_bytes = 0;
};

RunResult OneRun(std::shared_ptr<const v1::CityConfig> cfg, uint64_t commands, int window, int batch) {
  auto offsets = config::CalendarOffsets(*cfg);
  auto machine = *core::CaseMachine::Create(cfg, *offsets);
  Steps steps(*cfg);
  std::vector<Slot> slots(static_cast<size_t>(window));
  uint64_t next_n = 0;
  for (auto& s : slots) s.n = next_n++;
  // 2026-03-18 09:00 Asia/Shanghai, a Wednesday: inside working hours.
  Millis now = 1'773'795'600'000;
  std::vector<std::string> journal;
  journal.reserve(commands);
  std::string chain;
  v1::Command cmd;
  RunResult out;
  const double t0 = CpuSeconds();
  uint64_t done = 0;
  size_t i = 0;
  while (done < commands) {
    Slot& s = slots[i];
    i = (i + 1) % slots.size();
    steps.Next(s, cmd);
    core::Effects fx = machine->Execute(cmd, now);
    if (fx.Changed()) {
      fx.record.set_prev_hash(chain);
      journal.emplace_back();
      fx.record.SerializeToString(&journal.back());
      chain = AuditLink(journal.size(), journal.back());
    }
    for (auto& w : fx.work_orders) {
      v1::OutboxItem item;
      *item.mutable_work_order() = std::move(w);
      std::string row = item.SerializeAsString();
      out.journal_bytes += row.size();
    }
    v1::Reply reply;
    *reply.add_results() = std::move(fx.result);
    const auto& r = reply.results(0);
    if (r.code() == v1::OK) {
      if (s.step == 0) s.case_id = r.case_id();
      if (s.step == 0 && r.merged()) {
        ++out.merged;
        s.step = 7;
      } else {
        ++s.step;
      }
    } else {
      ++out.refused;
      s.step = 7;
    }
    if (s.step >= 7) s = Slot{next_n++, 0, 0};
    if (++done % static_cast<uint64_t>(batch) == 0) {
      now += 1;
      (void)machine->TakeTimerChanges();
      (void)machine->TakeLedgerChanges();
      (void)machine->FireDue(now);
    }
  }
  out.apply_ns = (CpuSeconds() - t0) * 1e9 / static_cast<double>(commands);
  out.commands = commands;
  out.records = journal.size();
  for (const auto& r : journal) out.journal_bytes += r.size();
  // Replay: what recovery does with each journal record.
  auto fresh = *core::CaseMachine::Create(cfg, *offsets);
  const double t1 = CpuSeconds();
  v1::JournalRecord rec;
  for (const auto& bytes : journal) {
    rec.ParseFromString(bytes);
    fresh->Replay(rec);
  }
  out.replay_ns = (CpuSeconds() - t1) * 1e9 / static_cast<double>(journal.size());
  // Bulk replay, as recovery does it: the cases' indexes rebuilt once at the end (on two
  // threads there, so wall time, not this thread's CPU time).
  auto bulk = *core::CaseMachine::Create(cfg, *offsets);
  const auto t2 = std::chrono::steady_clock::now();
  bulk->BeginBulkReplay();
  core::CaseMachine::PreparedRecord prepared;
  for (const auto& bytes : journal) {
    prepared.record.ParseFromString(bytes);
    core::CaseMachine::Prepare(prepared);
    bulk->Replay(prepared);
  }
  bulk->EndBulkReplay();
  out.bulk_ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t2).count() /
                static_cast<double>(journal.size());
  // Recovery's replay itself (core::ReplayJournal): parsed on a second thread, replayed in bulk
  // behind it; the records come from memory here, not from RocksDB. Wall time.
  auto piped = *core::CaseMachine::Create(cfg, *offsets);
  const auto t3 = std::chrono::steady_clock::now();
  uint64_t replayed = 0;
  const Status st = core::ReplayJournal(
      *piped,
      [&](const core::JournalSink& sink) {
        for (size_t i = 0; i < journal.size(); ++i)
          if (!sink(i + 1, journal[i])) break;
        return Status::Ok();
      },
      nullptr, replayed);
  out.piped_ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t3).count() /
                 static_cast<double>(journal.size());
  if (!st.ok() || replayed != journal.size() || piped->case_count() != machine->case_count()) {
    std::fprintf(stderr, "apply_bench: the two-thread replay failed: %s (%llu of %zu records)\n", st.ToString().c_str(),
                 static_cast<unsigned long long>(replayed), journal.size());
    std::exit(1);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t commands = 2'000'000;
  int window = 10'000, batch = 1000, runs = 5;
  std::string config = CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml";
  constexpr const char* kUsage = "usage: apply_bench [--commands N] [--window N] [--batch N] [--runs N] [--config FILE]\n";
  constexpr const char* kProgram = "apply_bench";
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s needs a value\n%s", kProgram, k.c_str(), kUsage);
      return 2;
    }
    const char* v = argv[i + 1];
    if (k == "--commands") commands = bench::NumberOrExit<uint64_t>(kProgram, k, v, 1, 1'000'000'000);
    else if (k == "--window") window = bench::NumberOrExit(kProgram, k, v, 1, 10'000'000);
    else if (k == "--batch") batch = bench::NumberOrExit(kProgram, k, v, 1, 1'000'000);
    else if (k == "--runs") runs = bench::NumberOrExit(kProgram, k, v, 1, 1000);
    else if (k == "--config") config = v;
    else {
      std::fprintf(stderr, "%s: unknown option %s\n%s", kProgram, k.c_str(), kUsage);
      return 2;
    }
  }
  const auto cfg = bench::LoadCityOrExit(config, "apply_bench");
  std::printf("apply_bench: %llu commands, %d cases in flight, clock +1 ms per %d commands; CPU time of the thread\n",
              static_cast<unsigned long long>(commands), window, batch);
  std::vector<double> apply, replay, bulk, piped;
  for (int r = 1; r <= runs; ++r) {
    RunResult res = OneRun(cfg, commands, window, batch);
    std::printf("  run %d: apply %7.0f ns/command (%8.0f commands/s), replay %6.0f ns/record (%9.0f records/s), "
                "bulk replay %6.0f ns/record (%9.0f records/s), two-thread replay %6.0f ns/record (%9.0f records/s); "
                "%llu refused, %llu merged, %.0f bytes written per command\n",
                r, res.apply_ns, 1e9 / res.apply_ns, res.replay_ns, 1e9 / res.replay_ns, res.bulk_ns, 1e9 / res.bulk_ns,
                res.piped_ns, 1e9 / res.piped_ns,
                static_cast<unsigned long long>(res.refused), static_cast<unsigned long long>(res.merged),
                static_cast<double>(res.journal_bytes) / static_cast<double>(res.commands));
    std::fflush(stdout);
    if (res.refused > 0) {  // the workload only sends legal commands
      std::fprintf(stderr, "apply_bench: run %d: %llu commands refused\n", r,
                   static_cast<unsigned long long>(res.refused));
      return 1;
    }
    apply.push_back(res.apply_ns);
    replay.push_back(res.replay_ns);
    bulk.push_back(res.bulk_ns);
    piped.push_back(res.piped_ns);
  }
  std::sort(apply.begin(), apply.end());
  std::sort(replay.begin(), replay.end());
  std::sort(bulk.begin(), bulk.end());
  std::sort(piped.begin(), piped.end());
  std::printf("median: apply %.0f ns/command (%.0f commands/s), replay %.0f ns/record (%.0f records/s), "
              "bulk replay %.0f ns/record (%.0f records/s), two-thread replay %.0f ns/record (%.0f records/s), n=%d\n",
              apply[apply.size() / 2], 1e9 / apply[apply.size() / 2], replay[replay.size() / 2],
              1e9 / replay[replay.size() / 2], bulk[bulk.size() / 2], 1e9 / bulk[bulk.size() / 2],
              piped[piped.size() / 2], 1e9 / piped[piped.size() / 2], runs);
  return 0;
}

// End-to-end durable throughput: real `casebus serve` process, real ZeroMQ DEALER clients.
// Each command is acknowledged only after its group commit is fsynced; the measured path is
// submit → validate → route → journal (sync) → work order in the outbox → ack.
//
// Clients walk cases drawn from the benchmark workload (bench/workload: the city's category
// mix, misroutes, reworks, voids, duplicate reports), each keeping `window` frames in flight;
// a case's next step goes out when the reply to its previous step came back, and a merged
// report ends its case. --frame N sends N cases' steps per frame (a gateway). Prints one line
// per run and the median.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bench/deviations.h"
#include "bench/bench_util.h"
#include "bench/scratch_server.h"
#include "bench/workload/workload.h"
#include "casebus/v1/command.pb.h"
#include "engine/config/loader.h"

namespace {

using namespace casebus;
using Clock = std::chrono::steady_clock;

struct Options {
  int clients = 4, window = 64, frame = 1, seconds = 10, warmup = 2, runs = 5;
  uint64_t seed = 1;
  bool sync = true;
  std::string binary, config;
};

// One case on its way through its plan.
struct CaseWalk {
  bench::CasePlan plan;
  size_t step = 0;
  uint64_t case_id = 0;
};

struct Counters {
  std::atomic<uint64_t> ok{0}, busy{0};
  std::atomic<bool> failed{false};  // a frame refused whole: the run's figure means nothing
  bench::Deviations deviations;
};

void RunClient(const Options& o, const v1::CityConfig& cfg, const std::string& endpoint, int id,
               std::atomic<bool>& stop, Counters& counts) {
  zmq::context_t ctx(1);
  zmq::socket_t sock = bench::LoadDealer(ctx, endpoint);
  bench::Generator workload(cfg, o.seed, id, {}, o.clients);
  // `window` frames in flight; each frame carries `frame` cases' next steps.
  std::vector<std::vector<CaseWalk>> frames(o.window, std::vector<CaseWalk>(o.frame));
  for (auto& f : frames)
    for (auto& w : f) w = CaseWalk{workload.NextCase()};
  // Frames waiting for their reply, by their first command's request id: replies do not come
  // back in send order (the intake answers BUSY at once, ahead of frames still committing).
  std::unordered_map<std::string, int> in_flight;
  v1::Request req;
  std::string bytes;
  auto send_frame = [&](int fi) {
    req.Clear();
    req.set_version(1);
    for (const auto& w : frames[fi])
      *req.add_commands() = workload.Command(w.plan, w.step, w.case_id);
    req.SerializeToString(&bytes);
    sock.send(zmq::buffer(bytes), zmq::send_flags::none);
    in_flight.emplace(req.commands(0).request_id(), fi);
  };
  // Applies one result to its case; the case is replaced by a new one when it ended.
  auto advance = [&](CaseWalk& w, const v1::CommandResult& r) {
    const bench::StepKind step = w.plan.steps[w.step];
    if (r.code() == v1::BUSY) {  // sent again as it is, with the same request id
      counts.busy.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (r.code() != v1::OK) {
      counts.deviations.Refused(step, r.code(), r.message());
      w = CaseWalk{workload.NextCase()};
      return;
    }
    counts.ok.fetch_add(1, std::memory_order_relaxed);
    if (step == bench::StepKind::kReport) {
      w.case_id = r.case_id();
      if (r.merged() != w.plan.duplicate) counts.deviations.MergeMismatch(w.plan.duplicate);
      if (r.merged()) w.step = w.plan.steps.size() - 1;  // joined an open case: that ends it
    }
    if (++w.step == w.plan.steps.size()) w = CaseWalk{workload.NextCase()};
  };
  for (int i = 0; i < o.window; ++i) send_frame(i);
  v1::Reply reply;
  v1::CommandResult missing;  // for a frame answered with fewer results than commands
  missing.set_code(v1::INTERNAL);
  missing.set_message("the reply has fewer results than the frame had commands");
  while (!stop.load(std::memory_order_relaxed)) {
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(200));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t msg;
    while (sock.recv(msg, zmq::recv_flags::dontwait)) {
      reply.ParseFromArray(msg.data(), static_cast<int>(msg.size()));
      if (reply.results_size() == 0) {  // refused whole (size, parse, version): a bench error
        std::fprintf(stderr, "client %d: a frame was refused whole: %s\n", id,
                     reply.error().message().c_str());
        counts.failed.store(true);
        return;
      }
      auto it = in_flight.find(reply.results(0).request_id());
      if (it == in_flight.end()) continue;  // (cannot happen: one reply per frame sent)
      const int fi = it->second;
      in_flight.erase(it);
      for (int i = 0; i < o.frame; ++i)
        advance(frames[fi][i], i < reply.results_size() ? reply.results(i) : missing);
      send_frame(fi);
    }
  }
}

// The rate, or a negative number when the run failed (nothing acknowledged, a command refused
// or a frame refused whole: the workload only sends legal commands).
double OneRun(const Options& o, const v1::CityConfig& cfg, int run) {
  auto server = bench::ScratchServer::Start(o.binary, o.config, o.sync);
  if (!server) std::exit(1);
  std::atomic<bool> stop{false};
  Counters counts;
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c)
    threads.emplace_back([&, c] { RunClient(o, cfg, server->endpoint(), c, stop, counts); });
  std::this_thread::sleep_for(std::chrono::seconds(o.warmup));
  const uint64_t ok0 = counts.ok.load(), busy0 = counts.busy.load();
  const double server_cpu0 = bench::ProcessCpuSeconds(server->pid()), self_cpu0 = bench::SelfCpuSeconds();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
  const uint64_t ok1 = counts.ok.load(), busy1 = counts.busy.load();
  const double server_cpu = bench::ProcessCpuSeconds(server->pid()) - server_cpu0;
  const double self_cpu = bench::SelfCpuSeconds() - self_cpu0;
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  stop.store(true);
  for (auto& t : threads) t.join();
  server.reset();
  const double rate = static_cast<double>(ok1 - ok0) / secs;
  // CPU per acknowledged command: steadier than the rate, which moves with whatever else the
  // two cores do; the server's includes its checkpoint writers (reaped children).
  const double acked = static_cast<double>(std::max<uint64_t>(1, ok1 - ok0));
  std::printf("  run %d: %10.0f acknowledged commands/s  (busy %llu, refused %llu; CPU per command: server %.2f µs, "
              "load generator %.2f µs; cores busy: server %.2f, load generator %.2f)\n",
              run, rate, static_cast<unsigned long long>(busy1 - busy0),
              static_cast<unsigned long long>(counts.deviations.refused()), server_cpu * 1e6 / acked,
              self_cpu * 1e6 / acked, server_cpu / secs, self_cpu / secs);
  std::fflush(stdout);
  counts.deviations.Print(("run " + std::to_string(run)).c_str());
  if (ok1 == ok0 || counts.deviations.refused() > 0 || counts.failed.load()) {
    std::fprintf(stderr, "e2e_throughput: run %d failed: %s\n", run,
                 counts.failed.load() ? "a frame was refused whole"
                 : ok1 == ok0         ? "no command was acknowledged"
                                      : "commands were refused (see above)");
    return -1;
  }
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.binary = CASEBUS_BIN;
  o.config = CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml";
  const auto usage = [](FILE* to) {
    std::fprintf(to,
                 "usage: e2e_throughput [--clients N] [--window N] [--frame N] [--seconds N] "
                 "[--runs N] [--warmup N] [--seed N] [--binary PATH] [--no-sync]\n");
  };
  constexpr const char* kProgram = "e2e_throughput";
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--no-sync") {
      o.sync = false;
      continue;
    }
    if (k == "-h" || k == "--help") {
      usage(stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      if (k.rfind("--", 0) == 0)
        std::fprintf(stderr, "%s: %s needs a value\n", kProgram, k.c_str());
      usage(stderr);
      return 2;
    }
    const char* v = argv[++i];
    if (k == "--seed")
      o.seed = bench::NumberOrExit<uint64_t>(kProgram, k, v, 0, UINT64_MAX);
    else if (k == "--binary")  // another build's casebus, for a before/after comparison
      o.binary = v;
    else if (k == "--clients")
      o.clients = bench::NumberOrExit(kProgram, k, v, 1, 256);
    else if (k == "--window")
      o.window = bench::NumberOrExit(kProgram, k, v, 1, 4096);
    else if (k == "--frame")
      o.frame = bench::NumberOrExit(kProgram, k, v, 1, 10000);
    else if (k == "--seconds")
      o.seconds = bench::NumberOrExit(kProgram, k, v, 1, 86400);
    else if (k == "--runs")
      o.runs = bench::NumberOrExit(kProgram, k, v, 1, 1000);
    else if (k == "--warmup")
      o.warmup = bench::NumberOrExit(kProgram, k, v, 0, 3600);
    else {
      std::fprintf(stderr, "%s: unknown option %s\n", kProgram, k.c_str());
      usage(stderr);
      return 2;
    }
  }
  const auto city = bench::LoadCityOrExit(o.config, "e2e_throughput");
  std::printf(
      "e2e_throughput: %d clients × %d frames in flight × %d command(s)/frame, %s, %d s per run\n",
      o.clients, o.window, o.frame, o.sync ? "sync=true (fsync per group commit)" : "sync=false",
      o.seconds);
  std::printf("workload: bench/workload, seed %llu, %.2f commands per case on average\n",
              static_cast<unsigned long long>(o.seed),
              bench::Generator(*city, o.seed, 0).MeanStepsPerCase());
  std::vector<double> rates;
  for (int r = 1; r <= o.runs; ++r) {
    const double rate = OneRun(o, *city, r);
    if (rate < 0) return 1;
    rates.push_back(rate);
  }
  std::sort(rates.begin(), rates.end());
  std::printf("median: %.0f commands/s (min %.0f, max %.0f, n=%zu)\n", rates[rates.size() / 2],
              rates.front(), rates.back(), rates.size());
  return 0;
}

// End-to-end latency at fixed offered rates, open loop: real `casebus serve` process, real
// ZeroMQ DEALER clients (one thread each), durable acks (fsync per group commit).
//
// Each client sends on a schedule — rate / clients commands per second, evenly spaced, --frame
// N commands per frame — whatever the replies do. A command's latency is its reply's arrival
// minus its INTENDED send time, so a client that falls behind (or a server that stalls) shows
// as latency: no coordinated omission. With --frame N > 1 a client is a gateway (a hotline
// bridge, a sensor hub) that collects commands arriving evenly and sends them N at a time: a
// command's intended time is when it reached the gateway, so its wait for the frame to fill
// is part of its latency. A command answered BUSY is sent again at a later slot
// and keeps its first intended time.
//
// Cases come from the benchmark workload (bench/workload). A case's next step becomes
// eligible when its previous step's reply arrived; each slot takes the oldest eligible step,
// or starts a new case when fewer than --open cases are open or none is eligible, so the
// schedule never waits for a case. Latencies of commands intended after the warm-up go into
// one sorted vector per run (exact percentiles). Prints per rate and run: offered, achieved
// ack rate, p50, p99, p99.9, max (ms), then the median over runs. Before each run at up to
// 2,000/s (with sync), the disk alone is measured at the same pace (DiskFloor): the p99 no
// durable acknowledgement can beat here.

#include <fcntl.h>
#include <sys/prctl.h>
#include <poll.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "bench/deviations.h"
#include "bench/bench_util.h"
#include "bench/scratch_server.h"
#include "bench/workload/workload.h"
#include "casebus/v1/command.pb.h"
#include "engine/config/loader.h"

namespace {

using namespace casebus;
using Nanos = int64_t;

Nanos Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
constexpr Nanos kSecond = 1'000'000'000;

struct Options {
  std::vector<double> rates = {1000, 10000, 50000, 100000};
  int seconds = 10, warmup = 2, runs = 3, clients = 4, frame = 1, open = 64, drain = 30;
  uint64_t seed = 1;
  bool sync = true;
  bool disk_floor = true;  // beside each run at ≤ kFloorMaxRate: the disk alone at that pace
  bool timeline = false;   // per 50 ms of intended send time: p50 and max (finding stalls)
  // --tick-us T: a client wakes once per T µs and sends every frame whose intended time has
  // come (0: wakes for each frame). Latency still counts from each frame's intended time, so
  // the wait for the tick is in every figure; the tick only spares the load generator a
  // thread wake-up (and its ZeroMQ I/O thread one more) per frame, which at 50k frames/s on
  // two shared cores was a whole core taken from the server.
  int tick_us = 0;
  std::string binary, config;
};

// Above this rate the server commits many commands per fsync, so "one fsync per command
// interval" is not the floor of anything.
constexpr double kFloorMaxRate = 2000;

// The run's shared clock: the schedule's start and the measured window.
struct Window {
  Nanos start, measure_from, measure_to, drain_until;
};

// What one client measured; merged by the run.
struct ClientResult {
  std::vector<Nanos> latencies;  // OK replies (and lower bounds for incomplete commands)
  std::vector<std::pair<Nanos, Nanos>> timeline;  // --timeline: (intended − window start, latency)
  uint64_t acked_in_window = 0, busy = 0, incomplete = 0;
  Nanos last_send_lateness = 0;  // how late the last scheduled frame went out
};

class Client {
 public:
  Client(const Options& o, const v1::CityConfig& cfg, int id, double rate, const Window& w,
         bench::Deviations& deviations)
      : o_(o), window_(w), workload_(cfg, o.seed, id, {}, o.clients), deviations_(deviations) {
    const double frames_per_second = rate / o.clients / o.frame;
    interval_ = static_cast<Nanos>(static_cast<double>(kSecond) / frames_per_second);
    // Clients' schedules are interleaved, not in phase.
    first_ = w.start + interval_ * id / o.clients;
    tick_ = static_cast<Nanos>(o.tick_us) * 1000;
    frames_ = static_cast<uint64_t>(frames_per_second * (o.warmup + o.seconds));
    result_.latencies.reserve(static_cast<size_t>(rate / o.clients * o.seconds * 1.1) + 16);
    missing_.set_code(v1::INTERNAL);
    missing_.set_message("the reply has fewer results than the frame had commands");
  }

  ClientResult Run(const std::string& endpoint);

 private:
  struct CaseWalk {
    bench::CasePlan plan;
    size_t step = 0;
    uint64_t case_id = 0;
    Nanos first_intended = 0;  // of the step in flight or waiting for a retry
    bool retry = false;        // the step was answered BUSY
  };
  struct FrameSent {
    Nanos intended;
    std::vector<uint32_t> cases;  // in the frame's order
  };

  uint32_t TakeCase(Nanos intended);
  void SendFrame(zmq::socket_t& sock, Nanos intended);
  void OnReply(const zmq::message_t& msg, Nanos arrival);
  void Advance(uint32_t k, const v1::CommandResult& r, Nanos arrival);
  void EndCase(uint32_t k);
  bool Measured(Nanos intended) const {
    return intended >= window_.measure_from && intended < window_.measure_to;
  }

  const Options& o_;
  const Window& window_;
  bench::Generator workload_;
  bench::Deviations& deviations_;
  // When frame i goes out: its intended time, or with --tick-us the tick boundary at or after it.
  Nanos SendAt(uint64_t i) const {
    const Nanos intended = first_ + static_cast<Nanos>(i) * interval_;
    if (tick_ <= 0) return intended;
    return first_ + (static_cast<Nanos>(i) * interval_ + tick_ - 1) / tick_ * tick_;
  }

  Nanos interval_, first_, tick_ = 0;
  uint64_t frames_;
  std::vector<CaseWalk> cases_;
  std::vector<uint32_t> free_;     // indices of ended cases, for reuse
  std::deque<uint32_t> eligible_;  // cases whose next step may go, oldest first
  size_t open_ = 0;
  // Frames waiting for their reply, by their first command's request id: replies do not come
  // back in send order (the intake answers BUSY at once, ahead of frames still committing).
  std::unordered_map<std::string, FrameSent> in_flight_;
  bool refused_whole_ = false;  // a frame was refused whole: no request id to match; stop
  v1::Request request_;
  v1::Reply reply_;
  v1::CommandResult missing_;
  std::string bytes_;
  ClientResult result_;
};

uint32_t Client::TakeCase(Nanos intended) {
  uint32_t k;
  if (!eligible_.empty() && open_ >= static_cast<size_t>(o_.open)) {
    k = eligible_.front();
    eligible_.pop_front();
  } else {
    if (free_.empty()) {
      k = static_cast<uint32_t>(cases_.size());
      cases_.emplace_back();
    } else {
      k = free_.back();
      free_.pop_back();
    }
    cases_[k] = CaseWalk{workload_.NextCase()};
    ++open_;
  }
  CaseWalk& c = cases_[k];
  if (!c.retry) c.first_intended = intended;
  return k;
}

void Client::SendFrame(zmq::socket_t& sock, Nanos intended) {
  request_.Clear();
  request_.set_version(1);
  FrameSent f{intended, {}};
  f.cases.reserve(static_cast<size_t>(o_.frame));
  for (int i = 0; i < o_.frame; ++i) {
    // A frame of N stands for a gateway that collected N commands over one frame interval and
    // sent them when the last came: command i reached the gateway (i + 1) / N of the way
    // through the interval, and its latency counts from then, the gateway's wait included.
    const Nanos arrived = intended - interval_ + interval_ * (i + 1) / o_.frame;
    const uint32_t k = TakeCase(arrived);
    const CaseWalk& c = cases_[k];
    *request_.add_commands() = workload_.Command(c.plan, c.step, c.case_id);
    f.cases.push_back(k);
  }
  in_flight_.emplace(request_.commands(0).request_id(), std::move(f));
  request_.SerializeToString(&bytes_);
  sock.send(zmq::buffer(bytes_), zmq::send_flags::none);
}

void Client::EndCase(uint32_t k) {
  free_.push_back(k);
  --open_;
}

void Client::Advance(uint32_t k, const v1::CommandResult& r, Nanos arrival) {
  CaseWalk& c = cases_[k];
  const bench::StepKind step = c.plan.steps[c.step];
  if (r.code() == v1::BUSY) {  // again at the next slot, same request id, same intended time
    ++result_.busy;
    c.retry = true;
    eligible_.push_front(k);
    return;
  }
  if (r.code() != v1::OK) {
    deviations_.Refused(step, r.code(), r.message());
    EndCase(k);
    return;
  }
  c.retry = false;
  if (arrival >= window_.measure_from && arrival < window_.measure_to) ++result_.acked_in_window;
  if (Measured(c.first_intended)) {
    result_.latencies.push_back(arrival - c.first_intended);
    if (o_.timeline) result_.timeline.push_back({c.first_intended - window_.measure_from, arrival - c.first_intended});
  }
  if (step == bench::StepKind::kReport) {
    c.case_id = r.case_id();
    if (r.merged() != c.plan.duplicate) deviations_.MergeMismatch(c.plan.duplicate);
    if (r.merged()) c.step = c.plan.steps.size() - 1;  // joined an open case: that ends it
  }
  if (++c.step == c.plan.steps.size()) {
    EndCase(k);
  } else {
    eligible_.push_back(k);
  }
}

void Client::OnReply(const zmq::message_t& msg, Nanos arrival) {
  reply_.ParseFromArray(msg.data(), static_cast<int>(msg.size()));
  if (reply_.results_size() == 0) {  // refused whole (size, parse, version): a bench error
    std::fprintf(stderr, "a frame was refused whole: %s\n", reply_.error().message().c_str());
    refused_whole_ = true;
    return;
  }
  auto it = in_flight_.find(reply_.results(0).request_id());
  if (it == in_flight_.end()) {
    std::fprintf(stderr, "a reply to no frame in flight: %s\n",
                 reply_.results(0).request_id().c_str());
    return;
  }
  const FrameSent f = std::move(it->second);
  in_flight_.erase(it);
  for (size_t i = 0; i < f.cases.size(); ++i) {
    const int n = static_cast<int>(i);
    Advance(f.cases[i], n < reply_.results_size() ? reply_.results(n) : missing_, arrival);
  }
}

ClientResult Client::Run(const std::string& endpoint) {
  zmq::context_t ctx(1);
  zmq::socket_t sock = bench::LoadDealer(ctx, endpoint);
  const int fd = sock.get(zmq::sockopt::fd);
  uint64_t next = 0;  // the next frame of the schedule
  zmq::message_t msg;
  auto drain = [&] {
    while (sock.recv(msg, zmq::recv_flags::dontwait)) OnReply(msg, Now());
  };
  for (;;) {
    Nanos now = Now();
    if (next < frames_ && now >= SendAt(next)) {
      const Nanos intended = first_ + static_cast<Nanos>(next) * interval_;
      SendFrame(sock, intended);
      if (++next == frames_) result_.last_send_lateness = Now() - intended;
      drain();
      continue;
    }
    if ((next == frames_ && in_flight_.empty()) || refused_whole_) break;
    const Nanos until =
        next < frames_ ? SendAt(next) : window_.drain_until;
    if (now >= until) break;  // the drain deadline passed with replies still out
    // ZMQ_FD is edge-triggered: wait on it only when ZMQ_EVENTS shows nothing to read.
    if (sock.get(zmq::sockopt::events) & ZMQ_POLLIN) {
      drain();
      continue;
    }
    pollfd p{fd, POLLIN, 0};
    const Nanos wait = until - now;
    timespec ts{static_cast<time_t>(wait / kSecond), static_cast<long>(wait % kSecond)};
    ppoll(&p, 1, &ts, nullptr);
    drain();
  }
  // What never got its OK: counted, and its latency is at least the time it waited.
  const Nanos end = Now();
  auto incomplete = [&](const CaseWalk& c) {
    if (!Measured(c.first_intended)) return;
    ++result_.incomplete;
    result_.latencies.push_back(end - c.first_intended);
  };
  for (const auto& [id, f] : in_flight_)
    for (uint32_t k : f.cases) incomplete(cases_[k]);  // never answered
  for (uint32_t k : eligible_)
    if (cases_[k].retry) incomplete(cases_[k]);  // answered BUSY, no slot left to retry in
  return std::move(result_);
}

struct RunResult {
  double offered = 0, acked = 0, p50 = 0, p99 = 0, p999 = 0, max = 0;  // ms for the latencies
};

double Ms(Nanos n) { return static_cast<double>(n) / 1e6; }

// --timeline: the measured window in 50 ms steps of intended send time, each with its p50 and
// max; a stall on the server (a rehash, a flush) shows as a run of steps with a high max.
void PrintTimeline(const std::vector<ClientResult>& results, int seconds) {
  constexpr Nanos kStep = kSecond / 20;
  std::vector<std::vector<Nanos>> steps(static_cast<size_t>(seconds) * 20);
  for (const auto& r : results)
    for (const auto& [t, latency] : r.timeline)
      steps[std::min<size_t>(steps.size() - 1, static_cast<size_t>(t / kStep))].push_back(latency);
  std::printf("      from s   commands     p50 ms     max ms\n");
  for (size_t i = 0; i < steps.size(); ++i) {
    auto& v = steps[i];
    if (v.empty()) continue;
    std::sort(v.begin(), v.end());
    std::printf("    %8.2f %10zu %10.3f %10.3f\n", static_cast<double>(i) * 0.05, v.size(), Ms(v[v.size() / 2]),
                Ms(v.back()));
  }
}

RunResult OneRun(const Options& o, const v1::CityConfig& cfg, double rate, int run) {
  auto server = bench::ScratchServer::Start(o.binary, o.config, o.sync);
  if (!server) std::exit(1);
  Window w;
  w.start = Now() + kSecond / 2;  // time for every client to connect
  w.measure_from = w.start + o.warmup * kSecond;
  w.measure_to = w.measure_from + o.seconds * kSecond;
  w.drain_until = w.measure_to + o.drain * kSecond;
  bench::Deviations deviations;
  std::vector<ClientResult> results(o.clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c)
    threads.emplace_back([&, c] {
      Client client(o, cfg, c, rate, w, deviations);
      results[c] = client.Run(server->endpoint());
    });
  for (auto& t : threads) t.join();
  server.reset();

  std::vector<Nanos> all;
  uint64_t acked = 0, busy = 0, incomplete = 0;
  Nanos lateness = 0;
  for (auto& r : results) {
    all.insert(all.end(), r.latencies.begin(), r.latencies.end());
    acked += r.acked_in_window;
    busy += r.busy;
    incomplete += r.incomplete;
    lateness = std::max(lateness, r.last_send_lateness);
  }
  std::sort(all.begin(), all.end());
  if (o.timeline) PrintTimeline(results, o.seconds);
  auto at = [&](double q) {  // nearest rank
    if (all.empty()) return 0.0;
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(all.size())));
    return Ms(all[std::min(all.size(), std::max<size_t>(rank, 1)) - 1]);
  };
  RunResult r{rate,      static_cast<double>(acked) / o.seconds, at(0.50), at(0.99),
              at(0.999), all.empty() ? 0.0 : Ms(all.back())};
  std::printf(
      "  %8.0f/s run %d: acked %9.0f/s  p50 %8.3f  p99 %8.3f  p99.9 %8.3f  max %9.3f ms"
      "  (n=%zu, busy %llu, refused %llu, incomplete %llu, last send %.1f ms late)\n",
      rate, run, r.acked, r.p50, r.p99, r.p999, r.max, all.size(),
      static_cast<unsigned long long>(busy), static_cast<unsigned long long>(deviations.refused()),
      static_cast<unsigned long long>(incomplete), Ms(lateness));
  std::fflush(stdout);
  deviations.Print(
      ("rate " + std::to_string(static_cast<long long>(rate)) + " run " + std::to_string(run))
          .c_str());
  return r;
}

// The disk's own latency at the run's pace: a 4 KiB append and fdatasync (what a group commit
// of one small batch costs the WAL) every 1/rate s for `seconds`, in the file system the server's
// scratch data directory is in. Percentiles as for the commands; nothing else runs meanwhile.
struct Floor {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;
  size_t n = 0;
};
Floor DiskFloor(double rate, int seconds) {
  Floor f;
  char path[] = "/tmp/casebus-disk-floor-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return f;
  unlink(path);
  char block[4096];
  std::fill(std::begin(block), std::end(block), 'x');
  const Nanos every = static_cast<Nanos>(1e9 / rate), end = Now() + seconds * kSecond;
  std::vector<Nanos> took;
  for (Nanos next = Now(); next < end; next += every) {
    while (Now() < next) std::this_thread::sleep_for(std::chrono::microseconds(50));
    const Nanos t = Now();
    if (write(fd, block, sizeof block) != static_cast<ssize_t>(sizeof block) || fdatasync(fd) != 0) break;
    took.push_back(Now() - t);
  }
  close(fd);
  if (took.empty()) return f;
  std::sort(took.begin(), took.end());
  auto at = [&](double q) {
    const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(took.size())));
    return Ms(took[std::min(took.size(), std::max<size_t>(rank, 1)) - 1]);
  };
  f = {at(0.5), at(0.99), at(0.999), Ms(took.back()), took.size()};
  std::printf("  %8.0f/s disk alone: 4 KiB append + fdatasync every %.3f ms in /tmp: p50 %8.3f  p99 %8.3f  p99.9 %8.3f  max %9.3f ms  (n=%zu)\n",
              rate, 1e3 / rate, f.p50, f.p99, f.p999, f.max, f.n);
  std::fflush(stdout);
  return f;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

bool ParseRates(const std::string& text, std::vector<double>& rates) {
  rates.clear();
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    // The whole item must be the number: "50k" is not 50/s.
    double r = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), r);
    if (ec != std::errc() || end != item.data() + item.size() || !(r > 0) || r > 1e7) return false;
    rates.push_back(r);
  }
  return !rates.empty();
}

constexpr const char* kProgram = "e2e_latency";

// Prints the usage on `to` (stdout when asked for with --help); returns the exit status of a
// refused command line.
int Usage(FILE* to = stderr) {
  std::fprintf(to,
               "usage: e2e_latency [--rates R1,R2,...] [--seconds N] [--warmup N] [--runs N] "
               "[--clients N] [--frame N] [--open N] [--drain N] [--seed N] [--binary PATH] [--no-sync] [--no-disk-floor] [--timeline] [--tick-us T]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Client threads (they inherit this) wake for each scheduled send within a microsecond, not
  // the default 50 µs of timer slack: a late send would count as the server's latency.
  (void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  Options o;
  o.binary = CASEBUS_BIN;
  o.config = CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml";
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--no-sync") {
      o.sync = false;
      continue;
    }
    if (k == "--no-disk-floor") {
      o.disk_floor = false;
      continue;
    }
    if (k == "--timeline") {
      o.timeline = true;
      continue;
    }
    if (k == "-h" || k == "--help") {
      Usage(stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s needs a value\n", kProgram, k.c_str());
      return Usage();
    }
    const char* v = argv[++i];
    if (k == "--rates") {
      if (!ParseRates(v, o.rates)) {
        std::fprintf(stderr, "%s: --rates: '%s' is not a list of positive commands/s (e.g. 1000,50000)\n", kProgram, v);
        return Usage();
      }
    } else if (k == "--seconds")
      o.seconds = bench::NumberOrExit(kProgram, k, v, 1, 86400);
    else if (k == "--warmup")
      o.warmup = bench::NumberOrExit(kProgram, k, v, 0, 3600);
    else if (k == "--runs")
      o.runs = bench::NumberOrExit(kProgram, k, v, 1, 1000);
    else if (k == "--clients")
      o.clients = bench::NumberOrExit(kProgram, k, v, 1, 256);
    else if (k == "--frame")
      o.frame = bench::NumberOrExit(kProgram, k, v, 1, 10000);
    else if (k == "--open")
      o.open = bench::NumberOrExit(kProgram, k, v, 1, 1000000);
    else if (k == "--tick-us")
      o.tick_us = bench::NumberOrExit(kProgram, k, v, 0, 1000000);
    else if (k == "--drain")
      o.drain = bench::NumberOrExit(kProgram, k, v, 0, 3600);
    else if (k == "--seed")
      o.seed = bench::NumberOrExit<uint64_t>(kProgram, k, v, 0, UINT64_MAX);
    else if (k == "--binary")  // another build's casebus, for a before/after comparison
      o.binary = v;
    else {
      std::fprintf(stderr, "%s: unknown option %s\n", kProgram, k.c_str());
      return Usage();
    }
  }
  if (o.seconds < 1 || o.warmup < 0 || o.runs < 1 || o.clients < 1 || o.frame < 1 || o.open < 1 ||
      o.tick_us < 0)
    return Usage();
  const auto city = bench::LoadCityOrExit(o.config, "e2e_latency");
  std::printf(
      "e2e_latency: open loop, %d clients (DEALER, a thread each), %d command(s)/frame, "
      "≥%d open cases/client, %s, %d s measured after %d s warm-up, %d run(s) per rate\n",
      o.clients, o.frame, o.open, o.sync ? "sync=true (fsync per group commit)" : "sync=false",
      o.seconds, o.warmup, o.runs);
  if (o.tick_us > 0)
    std::printf("pacing: each client wakes every %d µs and sends the frames due by then (their wait for the "
                "tick is in their latency)\n",
                o.tick_us);
  std::printf(
      "workload: bench/workload, seed %llu, %.2f commands per case on average; latency = "
      "reply arrival − intended send time\n",
      static_cast<unsigned long long>(o.seed),
      bench::Generator(*city, o.seed, 0).MeanStepsPerCase());
  std::vector<RunResult> medians;
  std::vector<std::pair<double, double>> floors;  // rate, median disk-alone p99
  for (double rate : o.rates) {
    std::vector<double> acked, p50, p99, p999, max, floor_p99;
    for (int run = 1; run <= o.runs; ++run) {
      if (o.sync && o.disk_floor && rate <= kFloorMaxRate) floor_p99.push_back(DiskFloor(rate, o.seconds).p99);
      RunResult r = OneRun(o, *city, rate, run);
      acked.push_back(r.acked), p50.push_back(r.p50), p99.push_back(r.p99);
      p999.push_back(r.p999), max.push_back(r.max);
    }
    medians.push_back({rate, Median(acked), Median(p50), Median(p99), Median(p999), Median(max)});
    if (!floor_p99.empty()) floors.emplace_back(rate, Median(floor_p99));
  }
  std::printf(
      "median of %d run(s):\n  offered/s    acked/s     p50 ms     p99 ms   p99.9 ms      max ms\n",
      o.runs);
  for (const RunResult& m : medians)
    std::printf("  %9.0f  %9.0f  %9.3f  %9.3f  %9.3f  %10.3f\n", m.offered, m.acked, m.p50, m.p99,
                m.p999, m.max);
  for (const auto& [rate, p99] : floors)
    std::printf("the disk alone at %.0f/s (one 4 KiB append + fdatasync per command interval, just before each run): "
                "median p99 %.3f ms: the device's own tail, under every durable acknowledgement at that pace\n",
                rate, p99);
  return 0;
}

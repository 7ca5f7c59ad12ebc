// End-to-end durable throughput: real `casebus serve` process, real ZeroMQ DEALER clients.
// Each command is acknowledged only after its group commit is fsynced; the measured path is
// submit → validate → route → journal (sync) → work order in the outbox → ack.
//
// Clients walk cases through the full loop (report, register, dispatch, accept, resolve,
// verify, close), each keeping `window` cases in flight; --frame N sends N commands per frame
// (a gateway). Prints one line per run and the median.

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "casebus/v1/command.pb.h"
#include "engine/config/loader.h"
#include "tests/integration/server_process.h"

namespace {

using namespace casebus;
using Clock = std::chrono::steady_clock;

struct Options {
  int clients = 4, window = 64, frame = 1, seconds = 10, warmup = 2, runs = 5;
  bool sync = true;
  std::string binary, config;
};

struct CaseSlot {
  uint64_t n = 0, case_id = 0;
  int step = 0;
};

class Workload {
 public:
  Workload(const v1::CityConfig& cfg, int client) : client_(client) {
    for (const auto& c : cfg.categories())
      if (c.has_limits() || c.conditions_size() > 0) categories_.push_back(c.code());
    for (const auto& g : cfg.grids()) grids_.push_back(g);
  }
  v1::Command Next(CaseSlot& s) {
    v1::Command c;
    c.set_request_id("b" + std::to_string(client_) + "-" + std::to_string(s.n) + "-" + std::to_string(s.step));
    c.set_actor("bench");
    switch (s.step) {
      case 0: {
        auto* r = c.mutable_report();
        r->set_category(categories_[s.n % categories_.size()]);
        const auto& g = grids_[(s.n / categories_.size() + client_ * 97) % grids_.size()];
        r->mutable_place()->set_grid(g.code());
        // Spread reports so few merge: a unique point per case number.
        r->mutable_place()->set_lat(g.lat() + static_cast<double>(s.n % 7) * 1e-4);
        r->mutable_place()->set_lon(g.lon() + static_cast<double>(client_) * 1e-3);
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
    return c;
  }

 private:
  int client_;
  std::vector<std::string> categories_;
  std::vector<v1::Grid> grids_;
};

struct Counters {
  std::atomic<uint64_t> ok{0}, busy{0}, refused{0};
};

void RunClient(const Options& o, const v1::CityConfig& cfg, const std::string& endpoint, int id,
               std::atomic<bool>& stop, Counters& counts) {
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::sndhwm, 0);
  sock.set(zmq::sockopt::rcvhwm, 0);
  sock.connect(endpoint);
  Workload w(cfg, id);
  // `window` frames in flight; each frame carries `frame` cases' next steps.
  std::vector<std::vector<CaseSlot>> frames(o.window, std::vector<CaseSlot>(o.frame));
  uint64_t next_n = 0;
  for (auto& f : frames)
    for (auto& s : f) s.n = next_n++;
  // DEALER→ROUTER replies come back in send order on one connection.
  std::deque<int> in_flight;
  auto send_plain = [&](int fi) {
    v1::Request req;
    req.set_version(1);
    for (auto& s : frames[fi]) *req.add_commands() = w.Next(s);
    std::string bytes = req.SerializeAsString();
    sock.send(zmq::buffer(bytes), zmq::send_flags::none);
    in_flight.push_back(fi);
  };
  for (int i = 0; i < o.window; ++i) send_plain(i);
  while (!stop.load(std::memory_order_relaxed)) {
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(200));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t msg;
    while (sock.recv(msg, zmq::recv_flags::dontwait)) {
      v1::Reply reply;
      reply.ParseFromArray(msg.data(), static_cast<int>(msg.size()));
      const int fi = in_flight.front();
      in_flight.pop_front();
      for (int i = 0; i < reply.results_size() && i < o.frame; ++i) {
        const auto& r = reply.results(i);
        CaseSlot& s = frames[fi][i];
        if (r.code() == v1::OK) {
          counts.ok.fetch_add(1, std::memory_order_relaxed);
          if (s.step == 0) s.case_id = r.case_id();
          if (s.step == 0 && r.merged()) s.step = 7;  // joined an open case: start another
          else ++s.step;
          if (s.step >= 7) s = CaseSlot{next_n++, 0, 0};
        } else if (r.code() == v1::BUSY) {
          counts.busy.fetch_add(1, std::memory_order_relaxed);
        } else {
          counts.refused.fetch_add(1, std::memory_order_relaxed);
          s = CaseSlot{next_n++, 0, 0};
        }
      }
      send_plain(fi);
    }
  }
}

double OneRun(const Options& o, const v1::CityConfig& cfg, int run) {
  char tmpl[] = "/tmp/casebus-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(testing::FreePort());
  std::vector<std::string> args = {"serve", "--config", o.config, "--data", dir + "/data",
                                   "--endpoint", endpoint, "--endpoint-file", dir + "/ep",
                                   "--http", "127.0.0.1:0", "--no-dispatch"};
  if (!o.sync) args.push_back("--no-sync");
  testing::ServerProcess server(o.binary, args, dir + "/server.log");
  if (!server.Start(dir + "/ep")) {
    std::fprintf(stderr, "server did not start; see %s/server.log\n", dir.c_str());
    std::exit(1);
  }
  std::atomic<bool> stop{false};
  Counters counts;
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c)
    threads.emplace_back([&, c] { RunClient(o, cfg, endpoint, c, stop, counts); });
  std::this_thread::sleep_for(std::chrono::seconds(o.warmup));
  const uint64_t ok0 = counts.ok.load(), busy0 = counts.busy.load();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
  const uint64_t ok1 = counts.ok.load(), busy1 = counts.busy.load();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  stop.store(true);
  for (auto& t : threads) t.join();
  server.Terminate();
  const double rate = static_cast<double>(ok1 - ok0) / secs;
  std::printf("  run %d: %10.0f acknowledged commands/s  (busy %llu, refused %llu)\n", run, rate,
              static_cast<unsigned long long>(busy1 - busy0),
              static_cast<unsigned long long>(counts.refused.load()));
  std::fflush(stdout);
  std::filesystem::remove_all(dir);
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.binary = CASEBUS_BIN;
  o.config = CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml";
  for (int i = 1; i + 1 < argc || (i < argc && std::string(argv[i]) == "--no-sync"); i += 2) {
    std::string k = argv[i];
    if (k == "--no-sync") { o.sync = false; --i; continue; }
    int v = std::atoi(argv[i + 1]);
    if (k == "--clients") o.clients = v;
    else if (k == "--window") o.window = v;
    else if (k == "--frame") o.frame = v;
    else if (k == "--seconds") o.seconds = v;
    else if (k == "--runs") o.runs = v;
    else if (k == "--warmup") o.warmup = v;
    else {
      std::fprintf(stderr, "usage: e2e_throughput [--clients N] [--window N] [--frame N] [--seconds N] [--runs N] [--no-sync]\n");
      return 2;
    }
  }
  auto cfg = config::LoadCityConfigFile(o.config);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message().c_str());
    return 1;
  }
  std::printf("e2e_throughput: %d clients × %d frames in flight × %d command(s)/frame, %s, %d s per run\n",
              o.clients, o.window, o.frame, o.sync ? "sync=true (fsync per group commit)" : "sync=false",
              o.seconds);
  std::vector<double> rates;
  for (int r = 1; r <= o.runs; ++r) rates.push_back(OneRun(o, **cfg, r));
  std::sort(rates.begin(), rates.end());
  std::printf("median: %.0f commands/s (min %.0f, max %.0f, n=%zu)\n", rates[rates.size() / 2],
              rates.front(), rates.back(), rates.size());
  return 0;
}

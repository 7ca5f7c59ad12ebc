// restart_bench: how long `casebus serve` takes to come back over a data directory holding
// 1,000,000 and 5,000,000 open cases — from the process's start until it answers a status
// query over ZeroMQ — with its peak resident set and the journal records it replayed.
//
// Building a size: a child process (fork) fills a fresh data directory with bench/open_cases.h
// (an in-process Engine, sync off: reported, registered, dispatched; work orders in the
// outbox; no report merges), so its heap is gone before the server starts. The cases are
// reported at a virtual instant one day after the wall clock, so no ladder step comes due
// during the restarts (firing overdue steps is timer_bench's measure); the status reply's
// escalation count shows it.
//
// Memory: before any size above 200,000, a pilot of 100,000 cases is built and restarted once
// (and the server once over an empty directory, for its fixed part); a size whose estimate
// (Pilot::NeededBytes) would not fit in MemAvailable minus --reserve-gib, or whose data would
// not fit on disk, is skipped with the numbers that say why. Should the estimate be wrong, a
// build or restart is stopped when MemAvailable falls below a third of the reserve.
//
// One restart: the real binary (`casebus serve --no-dispatch`, sync on) on that directory,
// spawned while a DEALER already connects to its endpoint (reconnecting every 2 ms) with a
// status query queued; the time is spawn → first successful reply. Peak RSS is the server's
// VmHWM read right after that reply. The page cache is warm (the build just wrote the files;
// run 1 is also the first open after the build). Median of --runs restarts per size.
//
// History (--closed-per-open K): K closed cases, each through the whole loop, built beside each
// open one, so the journal holds a city's past as well (3 records per open case, 7 per closed).
//
// Two ways back (--from): from the checkpoint the last clean stop wrote (the builder's engine
// stops cleanly, as a deploy or a config change that needs a restart does), and from the journal
// alone (the checkpoint removed before each run, as after a crash that came before any clean
// stop: every record is replayed).

#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "bench/open_cases.h"
#include "bench/bench_util.h"
#include "casebus/v1/command.pb.h"
#include "engine/config/loader.h"
#include "tests/integration/server_process.h"

namespace {

using namespace casebus;
namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

struct Options {
  std::vector<uint64_t> sizes{1'000'000, 5'000'000};
  int runs = 3;
  int frame = 1000;  // commands per Request while building
  int window = 16;   // report Requests in flight while building
  int closed_per_open = 0;  // history: closed cases built beside each open one (7 records each)
  double reserve_gib = 3.0;
  int timeout_s = 1800;  // per restart
  std::string dir = fs::temp_directory_path().string();
  bool keep = false;
  std::string binary = CASEBUS_BIN;
  std::string config = CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml";
  // How each restart finds the state: "checkpoint" (the file a clean stop wrote: the usual
  // restart) and "journal" (the file removed first: a crash before any clean stop).
  std::vector<std::string> from{"checkpoint", "journal"};
};

constexpr uint64_t kPilot = 100'000;
constexpr int kMaxRuns = 16;

std::string Count(uint64_t n) {  // 1,000,000
  const std::string digits = std::to_string(n);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// A "Key: N kB" line of a /proc file, in bytes (0 when absent).
int64_t ProcBytes(const std::string& file, const std::string& key) {
  std::ifstream f(file);
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + key.size()) * 1024;
  return 0;
}

constexpr double kGib = 1 << 30;

// Below this much MemAvailable a build or a restart is stopped: a third of the reserve.
int64_t FloorBytes(const Options& o) { return static_cast<int64_t>(o.reserve_gib / 3 * kGib); }

double FreeDiskGib(const std::string& path) {
  struct statvfs s {};
  if (statvfs(path.c_str(), &s) != 0) return 0;
  return static_cast<double>(s.f_bavail) * static_cast<double>(s.f_frsize) / kGib;
}

using BuildResult = bench::OpenCasesResult;

void SetError(BuildResult& r, const std::string& what) {
  r.ok = false;
  std::snprintf(r.error, sizeof r.error, "%s", what.c_str());
}

// Builds one size in a child process, so its heap is gone before the server starts.
BuildResult BuildInChild(const Options& o, std::shared_ptr<const v1::CityConfig> cfg, uint64_t n,
                         const fs::path& data) {
  int fds[2];
  BuildResult r;
  if (pipe(fds) != 0) {
    SetError(r, "pipe failed");
    return r;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    BuildResult built =
        bench::BuildOpenCases(std::move(cfg), n, data.string(), {o.frame, o.window, o.closed_per_open, FloorBytes(o)});
    const ssize_t w = write(fds[1], &built, sizeof built);
    _exit(w == static_cast<ssize_t>(sizeof built) ? 0 : 1);
  }
  close(fds[1]);
  size_t got = 0;
  for (ssize_t k; pid > 0 && got < sizeof r &&
                  (k = read(fds[0], reinterpret_cast<char*>(&r) + got, sizeof r - got)) > 0;)
    got += static_cast<size_t>(k);
  close(fds[0]);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  if (got != sizeof r) SetError(r, "the build process died (out of memory?)");
  return r;
}

struct RunResult {
  bool ok = false;
  double seconds = 0;
  int64_t peak_rss = 0;
  uint64_t replayed = 0, restored = 0, open = 0, escalations = 0;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream f(path);
  std::stringstream text;
  text << f.rdbuf();
  return text.str();
}

// Whether the process has exited (a zombie not yet reaped, or gone).
bool Exited(pid_t pid) {
  const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || stat.compare(paren, 3, ") Z") == 0;
}

// The "replayed N journal records" of the server's start line (0 when absent).
uint64_t ReplayedFromLog(const fs::path& log) {
  const std::string s = ReadFile(log);
  std::smatch m;
  static const std::regex kReplayed("replayed ([0-9]+) journal records");
  return std::regex_search(s, m, kReplayed) ? std::stoull(m[1]) : 0;
}

// The "restored N cases from the checkpoint" of the start line (0 when absent).
uint64_t RestoredFromLog(const fs::path& log) {
  const std::string s = ReadFile(log);
  std::smatch m;
  static const std::regex kRestored("restored ([0-9]+) cases from the checkpoint");
  return std::regex_search(s, m, kRestored) ? std::stoull(m[1]) : 0;
}

// One restart: spawn → first successful status reply over ZeroMQ. from: "checkpoint" uses the
// one the last clean stop wrote; "journal" removes it first.
RunResult Restart(const Options& o, const fs::path& dir, const std::string& from = "checkpoint") {
  RunResult out;
  if (from == "journal") fs::remove(dir / "data" / "checkpoint");
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(testing::FreePort());
  const fs::path log = dir / "server.log", ready = dir / "endpoint";
  fs::remove(log);
  testing::ServerProcess server(
      o.binary,
      {"serve", "--config", o.config, "--data", (dir / "data").string(), "--endpoint", endpoint,
       "--endpoint-file", ready.string(), "--http", "127.0.0.1:0", "--no-dispatch"},
      log.string());
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::reconnect_ivl, 2);
  sock.connect(endpoint);
  v1::Request req;
  req.set_version(1);
  req.mutable_query()->mutable_status();
  const std::string bytes = req.SerializeAsString();
  sock.send(zmq::buffer(bytes), zmq::send_flags::none);
  const auto t0 = Steady::now();
  (void)server.Start(ready.string(), 0);  // spawns without waiting: the reply is what we wait for
  const auto deadline = t0 + std::chrono::seconds(o.timeout_s);
  v1::Reply reply;
  std::string why = server.running()
                        ? "no status reply within " + std::to_string(o.timeout_s) + " s"
                        : "could not spawn " + o.binary;
  while (server.running() && Steady::now() < deadline) {
    if (Exited(server.pid())) {
      why = "the server exited";
      break;
    }
    if (ProcBytes("/proc/meminfo", "MemAvailable:") < FloorBytes(o)) {
      why = "MemAvailable fell below the floor: server killed";  // before the OOM killer chooses
      break;
    }
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(20));
    zmq::message_t msg;
    if (!(item.revents & ZMQ_POLLIN) || !sock.recv(msg, zmq::recv_flags::dontwait)) continue;
    const double at = std::chrono::duration<double>(Steady::now() - t0).count();
    if (reply.ParseFromArray(msg.data(), static_cast<int>(msg.size())) &&
        reply.query().code() == v1::OK) {
      out.ok = true;
      out.seconds = at;
      break;
    }
    sock.send(zmq::buffer(bytes), zmq::send_flags::none);  // not ready to answer: ask again
  }
  if (!out.ok) {
    server.Kill();
    // The directory goes with the size: show the end of the server's log now.
    const std::string text = ReadFile(log);
    std::fprintf(stderr, "restart_bench: %s; the server's log ends:\n%s\n", why.c_str(),
                 text.substr(text.size() > 2000 ? text.size() - 2000 : 0).c_str());
    return out;
  }
  out.peak_rss = ProcBytes("/proc/" + std::to_string(server.pid()) + "/status", "VmHWM:");
  out.open = reply.query().status().open_cases();
  out.escalations = reply.query().status().escalations();
  server.Terminate();
  out.replayed = ReplayedFromLog(log);
  out.restored = RestoredFromLog(log);
  return out;
}

// Memory and disk from a pilot: kPilot cases built and restarted once, and one restart over an
// empty data directory for the server's fixed part.
struct Pilot {
  bool ok = false;
  double builder_growth = 0;  // bytes the builder grew by over kPilot cases
  double server_peak = 0;     // bytes: the server's VmHWM over kPilot cases
  double server_empty = 0;    // bytes: its VmHWM over an empty data directory
  double disk_per_case = 0;   // bytes
  double PerCase() const { return (server_peak - server_empty) / static_cast<double>(kPilot); }
  // Peak memory of the larger process (builder or server) for n cases: its figure at the
  // pilot plus the state of every further case, that part +20 % (tables grow by doubling).
  double NeededBytes(uint64_t n) const {
    const double more = n > kPilot ? static_cast<double>(n - kPilot) : 0;
    return std::max(builder_growth + server_empty, server_peak) + PerCase() * 1.2 * more;
  }
};

struct SizeResult {
  uint64_t n = 0;
  enum { kBuilt, kSkipped, kFailed } state = kFailed;
  BuildResult build;
  std::vector<std::pair<std::string, std::vector<RunResult>>> runs;  // per Options::from
  double needed_gib = 0, available_gib = 0, disk_needed_gib = 0, disk_free_gib = 0;  // skipped
};

void PrintSkipped(const SizeResult& s, const Pilot& p, const Options& o) {
  std::printf(
      "%10s skipped: %.0f bytes per further open case (pilot) → ~%.1f GiB needed, %.1f GiB "
      "available, %.1f GiB kept for the rest of the machine; disk ~%.1f GiB needed, %.1f "
      "GiB free\n",
      Count(s.n).c_str(), p.PerCase(), s.needed_gib, s.available_gib, o.reserve_gib,
      s.disk_needed_gib, s.disk_free_gib);
}

void PrintBuild(const SizeResult& s) {
  const BuildResult& b = s.build;
  if (!b.ok)
    std::printf("%10s failed: %s\n", Count(s.n).c_str(), b.error);
  else
    std::printf(
        "  N=%s: built in %.1f s (%s closed beside them; %s commands, %.0f commands/s, sync off), "
        "data %.0f MiB, builder RSS %.0f bytes/case\n",
        Count(s.n).c_str(), b.seconds, Count(b.closed).c_str(), Count(b.commands).c_str(),
        static_cast<double>(b.commands) / b.seconds, static_cast<double>(b.data_bytes) / (1 << 20),
        b.bytes_per_case);
  std::fflush(stdout);
}

void PrintTable(const Options& o, const Pilot& pilot, const std::vector<SizeResult>& sizes) {
  std::printf("\n%10s %-10s %9s %11s %9s %8s %10s %8s %8s %12s %9s %11s\n", "open", "from", "restored",
              "replayed", "data MiB", "build s", "restart s", "(min)", "(max)", "cases/s", "peak MiB",
              "bytes/case");
  std::map<std::string, std::vector<std::pair<uint64_t, double>>> medians;  // per mode
  for (const SizeResult& s : sizes) {
    if (s.state == SizeResult::kSkipped) {
      PrintSkipped(s, pilot, o);
      continue;
    }
    if (s.runs.empty())
      std::printf("%10s failed: %s\n", Count(s.n).c_str(),
                  s.build.ok ? "no restart answered (see the server log above)" : s.build.error);
    for (const auto& [from, runs] : s.runs) {
      std::vector<double> secs, rss;
      uint64_t replayed = 0, restored = 0;
      for (const RunResult& r : runs)
        if (r.ok)
          secs.push_back(r.seconds), rss.push_back(static_cast<double>(r.peak_rss)), replayed = r.replayed,
              restored = r.restored;
      if (secs.empty()) {
        std::printf("%10s %-10s failed: no restart answered (see the server log above)\n", Count(s.n).c_str(),
                    from.c_str());
        continue;
      }
      const double med = Median(secs), peak = Median(rss);
      medians[from].emplace_back(s.n, med);
      std::printf("%10s %-10s %9s %11s %9.0f %8.1f %10.3f %8.3f %8.3f %12.0f %9.0f %11.0f\n", Count(s.n).c_str(),
                  from.c_str(), Count(restored).c_str(), Count(replayed).c_str(),
                  static_cast<double>(s.build.data_bytes) / (1 << 20), s.build.seconds, med,
                  *std::min_element(secs.begin(), secs.end()), *std::max_element(secs.begin(), secs.end()),
                  static_cast<double>(s.n) / med, peak / (1 << 20), peak / static_cast<double>(s.n));
    }
  }
  std::printf(
      "medians of %d restart(s) per size: spawn → first status reply over ZeroMQ; from = checkpoint: the "
      "one a clean stop wrote is restored; from = journal: it was removed first, every record is "
      "replayed; cases/s = open / restart s; peak = server VmHWM; bytes/case = peak / open\n",
      o.runs);
  for (const auto& [from, m] : medians)
    for (size_t i = 1; i < m.size(); ++i)
      std::printf("restart time ratio from the %s, N=%s / N=%s (open ×%.1f): %.2f\n", from.c_str(),
                  Count(m[i].first).c_str(), Count(m[0].first).c_str(),
                  static_cast<double>(m[i].first) / static_cast<double>(m[0].first), m[i].second / m[0].second);
}

// A fresh directory under --dir, removed when it goes out of scope.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& parent) {
    std::string tmpl = (fs::path(parent) / "casebus-restart-XXXXXX").string();
    if (mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (path_.empty()) return;
    if (keep) {
      std::printf("kept for profiling: %s\n", path_.c_str());
      return;
    }
    fs::remove_all(path_, ec);
  }
  bool keep = false;
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Pilot MeasurePilot(const Options& o, std::shared_ptr<const v1::CityConfig> cfg) {
  Pilot p;
  ScratchDir empty(o.dir), dir(o.dir);
  if (empty.path().empty() || dir.path().empty()) return p;
  const RunResult base = Restart(o, empty.path());
  const BuildResult b = BuildInChild(o, std::move(cfg), kPilot, dir.path() / "data");
  if (!b.ok) std::printf("pilot: %s cases failed: %s\n", Count(kPilot).c_str(), b.error);
  RunResult r = b.ok ? Restart(o, dir.path(), "checkpoint") : RunResult{};
  const RunResult whole = r.ok ? Restart(o, dir.path(), "journal") : RunResult{};
  if (!base.ok || !r.ok || !whole.ok) return p;
  r.peak_rss = std::max(r.peak_rss, whole.peak_rss);  // the larger of the two ways back
  p.ok = true;
  p.builder_growth = b.bytes_per_case * static_cast<double>(kPilot);
  p.server_peak = static_cast<double>(r.peak_rss);
  p.server_empty = static_cast<double>(base.peak_rss);
  p.disk_per_case = static_cast<double>(b.data_bytes) / static_cast<double>(kPilot);
  std::printf(
      "pilot: %s open cases built in %.1f s (builder grew %.0f MiB); server peak %.0f MiB "
      "(%.0f MiB over an empty directory: %.0f bytes per open case), restart %.3f s; disk "
      "%.0f bytes per case\n",
      Count(kPilot).c_str(), b.seconds, p.builder_growth / (1 << 20), p.server_peak / (1 << 20),
      p.server_empty / (1 << 20), p.PerCase(), r.seconds, p.disk_per_case);
  std::fflush(stdout);
  return p;
}

// Whether n cases fit, by the pilot's figures; the numbers go in s.
bool Fits(const Options& o, const Pilot& p, SizeResult& s) {
  s.needed_gib = p.NeededBytes(s.n) / kGib;
  s.available_gib = static_cast<double>(ProcBytes("/proc/meminfo", "MemAvailable:")) / kGib;
  s.disk_needed_gib = p.disk_per_case * static_cast<double>(s.n) * 1.2 / kGib;
  s.disk_free_gib = FreeDiskGib(o.dir);
  return s.needed_gib <= s.available_gib - o.reserve_gib &&
         s.disk_needed_gib <= s.disk_free_gib - 1.0;
}

SizeResult MeasureSize(const Options& o, std::shared_ptr<const v1::CityConfig> cfg,
                       const Pilot& pilot, uint64_t n) {
  SizeResult s;
  s.n = n;
  if (!pilot.ok && n > 2 * kPilot) {
    SetError(s.build, "not built: no memory estimate (the pilot failed)");
    PrintBuild(s);
    return s;
  }
  if (pilot.ok && !Fits(o, pilot, s)) {
    s.state = SizeResult::kSkipped;
    PrintSkipped(s, pilot, o);
    return s;
  }
  ScratchDir dir(o.dir);
  dir.keep = o.keep;  // --keep yes: the data directory stays, to profile a restart by hand
  if (dir.path().empty()) {
    SetError(s.build, "mkdtemp in " + o.dir + " failed");
    return s;
  }
  s.build = BuildInChild(o, std::move(cfg), n, dir.path() / "data");
  PrintBuild(s);
  if (!s.build.ok) return s;
  s.state = SizeResult::kBuilt;
  for (const std::string& from : o.from) {
    auto& runs = s.runs.emplace_back(from, std::vector<RunResult>()).second;
    for (int r = 1; r <= o.runs; ++r) {
      runs.push_back(Restart(o, dir.path(), from));
      const RunResult& x = runs.back();
      if (!x.ok) break;
      std::printf(
          "  run %d, N=%s, from the %s: first status reply after %.3f s; peak RSS %.0f MiB; "
          "restored %s cases; replayed %s journal records; %s open; %llu steps fired\n",
          r, Count(n).c_str(), from.c_str(), x.seconds, static_cast<double>(x.peak_rss) / (1 << 20),
          Count(x.restored).c_str(), Count(x.replayed).c_str(), Count(x.open).c_str(),
          static_cast<unsigned long long>(x.escalations));
      std::fflush(stdout);
    }
  }
  return s;
}

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--open") {
      o.sizes = bench::ParseNumbers<uint64_t>(k, v, 1, 1'000'000'000);
    } else if (k == "--runs") {
      o.runs = bench::ParseNumber(k, v, 1, kMaxRuns);
    } else if (k == "--frame") {
      o.frame = bench::ParseNumber(k, v, 1, 4096);
    } else if (k == "--closed-per-open") {
      o.closed_per_open = bench::ParseNumber(k, v, 0, 100);
    } else if (k == "--reserve-gib") {
      o.reserve_gib = bench::ParseNumber(k, v, 0.0, 1024.0);
    } else if (k == "--timeout") {
      o.timeout_s = bench::ParseNumber(k, v, 1, 86400);
    } else if (k == "--from") {
      o.from.clear();
      std::stringstream ss(v);
      for (std::string part; std::getline(ss, part, ',');) {
        if (part != "checkpoint" && part != "journal") return false;
        o.from.push_back(part);
      }
      if (o.from.empty()) return false;
    } else if (k == "--dir") {
      o.dir = v;
    } else if (k == "--keep") {
      o.keep = v == "yes";
    } else if (k == "--config") {
      o.config = v;
    } else {
      return false;
    }
  }
  return argc % 2 == 1 && !o.sizes.empty() &&
         std::all_of(o.sizes.begin(), o.sizes.end(), [](uint64_t n) { return n > 0; });
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bench::ParseArgsOrExit(argc, argv, o, ParseArgs,
                         "restart_bench [--open 1000000,5000000] [--runs 3] [--frame 1000] "
                         "[--closed-per-open 0] [--reserve-gib 3] [--timeout 1800] [--from checkpoint,journal] [--dir DIR] "
                         "[--keep yes] [--config FILE]");
  const auto cfg = bench::LoadCityOrExit(o.config, "restart_bench");
  std::printf(
      "restart_bench: `casebus serve --no-dispatch` (sync on) restarted over N open cases "
      "(reported, registered, dispatched; work orders in the outbox) of the sample city; "
      "spawn → first status reply over ZeroMQ; warm page cache; %d restart(s) per size; "
      "%d closed case(s) (the whole loop, 7 records each) built beside each open one\n",
      o.runs, o.closed_per_open);
  std::fflush(stdout);
  // Only sizes well above the pilot's need its estimate (smaller ones are as cheap as it).
  Pilot pilot;
  if (std::any_of(o.sizes.begin(), o.sizes.end(), [](uint64_t n) { return n > 2 * kPilot; }))
    pilot = MeasurePilot(o, cfg);
  std::vector<SizeResult> sizes;
  for (uint64_t n : o.sizes) sizes.push_back(MeasureSize(o, cfg, pilot, n));
  PrintTable(o, pilot, sizes);
  return 0;
}

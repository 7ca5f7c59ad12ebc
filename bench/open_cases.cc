#include "bench/open_cases.h"
#include "bench/bench_util.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "adapters/register_all.h"
#include "engine/server/engine.h"

namespace casebus::bench {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;


uint64_t DirBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec))
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  return total;
}

void SetError(OpenCasesResult& r, const std::string& what) {
  r.ok = false;
  std::snprintf(r.error, sizeof r.error, "%s", what.c_str());
}

// Where case n is reported: category n mod C, grid as apply_bench, and a point of that
// category's own lattice (60 m apart north–south, 67 m east–west) around the city's middle.
class Placement {
 public:
  Placement(const v1::CityConfig& cfg, uint64_t cases) {
    for (const auto& c : cfg.categories())
      if (c.has_limits() || c.conditions_size() > 0) categories_.push_back(c.code());
    for (const auto& g : cfg.grids()) {
      grids_.push_back(g.code());
      lat0_ += g.lat() / cfg.grids_size();
      lon0_ += g.lon() / cfg.grids_size();
    }
    const uint64_t per_category = cases / categories_.size() + 1;
    while (side_ * side_ < per_category) ++side_;
  }
  void Fill(uint64_t n, v1::Report& r) const {
    const uint64_t m = n / categories_.size();  // the case's place in its category
    r.set_category(categories_[n % categories_.size()]);
    r.set_source(v1::INSPECTOR);
    auto* p = r.mutable_place();
    p->set_grid(grids_[m % grids_.size()]);
    const double half = static_cast<double>(side_) / 2;
    p->set_lat(lat0_ + (static_cast<double>(m / side_) - half) * 0.00054);
    p->set_lon(lon0_ + (static_cast<double>(m % side_) - half) * 0.00070);
    p->set_has_coordinates(true);
  }

 private:
  std::vector<std::string> categories_, grids_;
  double lat0_ = 0, lon0_ = 0;
  uint64_t side_ = 1;
};

// Walks chunks of `frame` cases through report → register → dispatch (open ones) or on
// through accept → resolve → verify → close (closed ones: every (1 + closed_per_open)th chunk
// is open), one Request per chunk and stage; a stage is submitted when the previous stage's
// reply came back.
class Builder {
 public:
  Builder(const OpenCasesOptions& o, server::Engine& engine, ManualClock& clock,
          const Placement& place, uint64_t n)
      : o_(o),
        engine_(engine),
        clock_(clock),
        place_(place),
        n_(n * (1 + static_cast<uint64_t>(o.closed_per_open))),
        n_open_(n),
        chunks_((n_ + static_cast<uint64_t>(o.frame) - 1) / static_cast<uint64_t>(o.frame)) {}
  // Chunk c's cases stay open after its last stage, or are closed.
  bool Open(uint64_t c) const { return c % (1 + static_cast<uint64_t>(o_.closed_per_open)) == 0; }
  int LastStage(uint64_t c) const { return Open(c) ? 2 : 6; }

  bool Run(OpenCasesResult& result) {
    const auto t0 = Steady::now();
    const int64_t rss0 = RssBytes();
    uint64_t next = 0, finished = 0, open = 0, closed = 0, progress = 0;
    std::vector<std::vector<uint64_t>> ids(chunks_);
    int in_flight = 0;
    while (finished < chunks_) {
      for (; next < chunks_ && in_flight < o_.window; ++next, ++in_flight) {
        clock_.Advance(1);
        if (!Submit(next, 0, {})) return Fail(result, "the engine refused a request");
      }
      Done d = Wait();
      if (std::string bad = Check(d, ids[d.chunk]); !bad.empty()) return Fail(result, bad);
      if (d.stage < LastStage(d.chunk)) {
        if (!Submit(d.chunk, d.stage + 1, ids[d.chunk]))
          return Fail(result, "the engine refused a request");
        continue;
      }
      ids[d.chunk] = {};
      if (o_.min_available_bytes > 0 && MemAvailableBytes() < o_.min_available_bytes)
        return Fail(result, "MemAvailable fell below " +
                                std::to_string(o_.min_available_bytes >> 20) + " MiB at " +
                                std::to_string(open) + " open cases: stopped");
      --in_flight;
      ++finished;
      (Open(d.chunk) ? open : closed) += static_cast<uint64_t>(d.reply.results_size());
      if (finished * 10 / chunks_ > progress) {
        progress = finished * 10 / chunks_;
        std::fprintf(stderr, "  building N=%llu: %llu cases open, %llu closed (%llu %%), %.1f s\n",
                     static_cast<unsigned long long>(n_open_), static_cast<unsigned long long>(open),
                     static_cast<unsigned long long>(closed), static_cast<unsigned long long>(progress * 10),
                     std::chrono::duration<double>(Steady::now() - t0).count());
      }
    }
    result.seconds = std::chrono::duration<double>(Steady::now() - t0).count();
    result.open = open;
    result.closed = closed;
    result.commands = 3 * open + 7 * closed;
    result.bytes_per_case = static_cast<double>(RssBytes() - rss0) / static_cast<double>(open);  // per open case
    result.ok = true;
    return true;
  }

 private:
  struct Done {
    uint64_t chunk = 0;
    int stage = 0;
    v1::Reply reply;
  };

  bool Submit(uint64_t chunk, int stage, const std::vector<uint64_t>& ids) {
    v1::Request req;
    req.set_version(1);
    const uint64_t first = chunk * static_cast<uint64_t>(o_.frame);
    const uint64_t count = std::min<uint64_t>(static_cast<uint64_t>(o_.frame), n_ - first);
    static const char* kStage[] = {"r", "g", "d", "a", "s", "v", "c"};
    for (uint64_t i = 0; i < count; ++i) {
      v1::Command* c = req.add_commands();
      c->set_request_id("rb-" + std::to_string(first + i) + "-" + kStage[stage]);
      c->set_actor("restart-bench");
      switch (stage) {
        case 0: place_.Fill(first + i, *c->mutable_report()); break;
        case 1: c->mutable_register_()->set_case_id(ids[i]); break;
        case 2: c->mutable_dispatch()->set_case_id(ids[i]); break;
        case 3: c->mutable_accept()->set_case_id(ids[i]); break;
        case 4:
          c->mutable_resolve()->set_case_id(ids[i]);
          c->mutable_resolve()->add_evidence("photo://rb/" + std::to_string(first + i));
          break;
        case 5:
          c->mutable_verify()->set_case_id(ids[i]);
          c->mutable_verify()->set_passed(true);
          break;
        default: c->mutable_close()->set_case_id(ids[i]); break;
      }
    }
    return engine_.Submit(std::move(req), [this, chunk, stage](v1::Reply&& r) {
      {
        std::lock_guard lock(mu_);
        done_.push_back({chunk, stage, std::move(r)});
      }
      cv_.notify_one();
    });
  }

  // Every result of the reply OK and no report merged; a report's case ids go into ids.
  std::string Check(const Done& d, std::vector<uint64_t>& ids) const {
    const uint64_t first = d.chunk * static_cast<uint64_t>(o_.frame);
    for (int i = 0; i < d.reply.results_size(); ++i) {
      const auto& r = d.reply.results(i);
      if (r.code() != v1::OK || r.merged())
        return "case " + std::to_string(first + i) + " stage " + std::to_string(d.stage) + ": " +
               (r.merged() ? "merged" : v1::Code_Name(r.code()) + " " + r.message());
      if (d.stage == 0) ids.push_back(r.case_id());
    }
    return {};
  }

  Done Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !done_.empty(); });
    Done d = std::move(done_.front());
    done_.pop_front();
    return d;
  }

  bool Fail(OpenCasesResult& result, const std::string& what) {
    SetError(result, what);
    return false;
  }

  const OpenCasesOptions& o_;
  server::Engine& engine_;
  ManualClock& clock_;
  const Placement& place_;
  const uint64_t n_, n_open_, chunks_;  // n_: every case built
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Done> done_;
};

}  // namespace

OpenCasesResult BuildOpenCases(std::shared_ptr<const v1::CityConfig> config, uint64_t n,
                               const std::string& data_dir, OpenCasesOptions options) {
  OpenCasesResult result;
  ManualClock clock(SystemClock().Now() + kDay);
  dispatch::AdapterRegistry registry;
  adapters::RegisterAllAdapters(registry);
  auto engine = server::Engine::Open(
      config, {.data_dir = data_dir, .sync = false, .run_dispatcher = false}, clock, registry);
  if (!engine) {
    SetError(result, engine.error().ToString());
    return result;
  }
  (*engine)->Start();
  const Placement place(*config, n * (1 + static_cast<uint64_t>(std::max(0, options.closed_per_open))));
  Builder builder(options, **engine, clock, place, n);
  const bool built = builder.Run(result);
  (*engine)->Stop();  // answers what is still queued (after a failure) before the builder goes
  engine->reset();
  if (built) result.data_bytes = DirBytes(data_dir);
  return result;
}

}  // namespace casebus::bench

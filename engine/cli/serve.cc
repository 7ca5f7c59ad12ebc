// `casebus serve` and `casebus check-config`.

#include <sys/prctl.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "adapters/register_all.h"
#include "engine/auth/access.h"
#include "engine/cli/client.h"
#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/config/loader.h"
#include "engine/query/telemetry.h"
#include "engine/server/api_routes.h"
#include "engine/server/http_access.h"
#include "engine/server/intake.h"
#include "engine/server/open311_routes.h"
#include "engine/server/read_routes.h"

namespace casebus::cli {

Result<std::shared_ptr<const v1::CityConfig>> LoadConfigOrSample(const std::string& path) {
  if (path.empty()) return config::LoadCityConfigText(EmbeddedSampleCity(), "<embedded sample-city.yaml>");
  return config::LoadCityConfigFile(path);
}

int RunCheckConfig(const Args& args) {
  auto flags = Flags::Parse(args, {}, {});
  if (!flags || flags->positional().size() != 1) {
    std::fputs("usage: casebus check-config FILE\n", stderr);
    return 2;
  }
  const std::string& path = flags->positional()[0];
  auto cfg = config::LoadCityConfigFile(path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message().c_str());
    return 1;
  }
  const auto& c = **cfg;
  int subcategories = 0;
  for (const auto& cat : c.categories())
    if (cat.has_limits() || cat.conditions_size() > 0) ++subcategories;
  std::printf("%s: ok — %s: %d districts, %d streets, %d communities, %d grids, %d departments, "
              "%d categories (%d with limits), %d routes, %d assets\n",
              path.c_str(), c.name().c_str(), c.districts_size(), c.streets_size(),
              c.communities_size(), c.grids_size(), c.departments_size(), c.categories_size(),
              subcategories, c.routes_size(), c.assets_size());
  return 0;
}

// About two weeks of a large city's records (7 per case): a crash then replays seconds of
// journal, and the writer, a forked copy of the process, runs rarely.
constexpr uint64_t kDefaultCheckpointEvery = 1'000'000;

int RunServe(const Args& args) {
  auto flags = Flags::Parse(args,
                            {"config", "data", "endpoint", "endpoint-file", "http", "http-file", "access",
                             "checkpoint-every"},
                            {"no-sync", "no-dispatch"});
  if (!flags) {
    std::fprintf(stderr, "casebus serve: %s\n", flags.error().message().c_str());
    return 2;
  }
  // Journal records between two checkpoints written while serving (a crash replays at most
  // about this many); 0: only at a clean stop.
  uint64_t checkpoint_every = kDefaultCheckpointEvery;
  if (auto v = flags->Get("checkpoint-every")) {
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), checkpoint_every);
    if (ec != std::errc() || end != v->data() + v->size()) {
      std::fprintf(stderr, "casebus serve: --checkpoint-every: '%s' is not a number of journal records\n", v->c_str());
      return 2;
    }
  }
  // Block the stop signals in every thread; one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);  // reload
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string config_path = flags->GetOr("config", "");
  auto cfg = LoadConfigOrSample(config_path);
  if (!cfg) {
    std::fprintf(stderr, "casebus serve: config: %s\n", cfg.error().message().c_str());
    return 1;
  }
  const std::string data = flags->GetOr("data", "casebus-data");
  std::error_code ec;
  std::filesystem::create_directories(data, ec);
  if (ec) {
    std::fprintf(stderr, "casebus serve: --data %s: %s\n", data.c_str(), ec.message().c_str());
    return 1;
  }
  dispatch::AdapterRegistry registry;
  adapters::RegisterAllAdapters(registry);
  SystemClock clock;
  // --no-sync and --no-dispatch exist for benchmarks and their negative controls only.
  query::Telemetry telemetry(**cfg);
  server::EngineOptions options{.data_dir = data,
                                .sync = !flags->Has("no-sync"),
                                .run_dispatcher = !flags->Has("no-dispatch"),
                                .telemetry = &telemetry,
                                .checkpoint_every = checkpoint_every};
  auto engine = server::Engine::Open(*cfg, options, clock, registry);
  if (!engine) {
    std::fprintf(stderr, "casebus serve: %s\n", engine.error().ToString().c_str());
    return 1;
  }
  // From here on, new memory comes in 4 KiB pages whatever the system's THP mode: a 2 MiB page
  // zeroed, or compacted for, in the middle of a commit shows in the tail latency
  // (bench/RESULTS.md).
  (void)prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  // Who may call the HTTP API: the access file's tokens (none without one: every /v1 route
  // answers 401 and says how to make a token).
  const std::string access_path = flags->GetOr("access", std::getenv("CASEBUS_ACCESS") ? std::getenv("CASEBUS_ACCESS") : "");
  std::shared_ptr<const auth::Access> access = auth::Access::Empty();
  if (!access_path.empty()) {
    auto loaded = auth::Access::LoadFile(access_path, **cfg);
    if (!loaded) {
      std::fprintf(stderr, "casebus serve: --access: %s\n", loaded.error().message().c_str());
      return 1;
    }
    access = *loaded;
  }
  server::Gatekeeper gate(access, clock);
  // Reload (SIGHUP or POST /v1/admin/reload): the config file and the access file are read and
  // checked whole, the access file against the new config; the engine takes the new config
  // between two batches if it can (else says why); only then is the access file swapped. Any
  // failure leaves both old ones in force.
  std::mutex reload_mu;
  auto reload = [&]() -> Status {
    std::lock_guard lock(reload_mu);
    if (config_path.empty() && access_path.empty())
      return Status::FailedPrecondition("nothing to reload: serve runs on the embedded sample config and no --access file");
    auto refuse = [](const Status& st) {
      std::fprintf(stderr, "casebus: reload refused; the config and access file in force stay:\n%s\n",
                   st.message().c_str());
      return st;
    };
    auto next = config_path.empty() ? Result<std::shared_ptr<const v1::CityConfig>>((*engine)->config())
                                    : config::LoadCityConfigFile(config_path);
    if (!next) return refuse(next.error());
    std::shared_ptr<const auth::Access> next_access = auth::Access::Empty();
    if (!access_path.empty()) {
      auto loaded = auth::Access::LoadFile(access_path, **next);
      if (!loaded) return refuse(loaded.error());
      next_access = *loaded;
    }
    if (!config_path.empty()) {
      if (Status st = (*engine)->Reconfigure(*next); !st.ok()) return refuse(st);
    }
    gate.Swap(next_access);
    std::fprintf(stderr, "casebus: reloaded%s%s%s (%d tokens)\n", config_path.empty() ? "" : " ",
                 config_path.c_str(), access_path.empty() ? "" : (" " + access_path).c_str(),
                 next_access->config().tokens_size());
    return Status::Ok();
  };
  server::Intake intake(**engine, (*cfg)->intake());
  const std::string endpoint = flags->GetOr("endpoint", DefaultEndpoint());
  if (access->has_curve()) {
    if (Status st = intake.EnableCurve([&gate] { return gate.access(); }); !st.ok()) {
      std::fprintf(stderr, "casebus serve: ZeroMQ CURVE: %s\n", st.message().c_str());
      return 1;
    }
  } else if (!endpoint.starts_with("tcp://127.") && !endpoint.starts_with("tcp://localhost:") &&
             !endpoint.starts_with("ipc://") && !endpoint.starts_with("inproc://")) {
    // Without CURVE anyone who reaches the socket is trusted: only this machine may.
    std::fprintf(stderr,
                 "casebus serve: --endpoint %s: an intake without CURVE binds only to loopback or ipc://; "
                 "set curve_secret_key_file and curve_clients in the --access file (casebus keygen makes keys)\n",
                 endpoint.c_str());
    return 1;
  }
  auto bound = intake.Bind(endpoint);
  if (!bound) {
    std::fprintf(stderr, "casebus serve: %s\n", bound.error().message().c_str());
    return 1;
  }
  server::HttpServer http;
  server::AddReadRoutes(http, **engine, telemetry, gate);
  server::AddOpen311Routes(http, **engine, gate);
  server::ApiOptions api;
  api.reload = reload;
  server::AddApiRoutes(http, **engine, gate, std::move(api));
  auto http_bound = http.Start({.listen = flags->GetOr("http", DefaultHttp())});
  if (!http_bound) {
    std::fprintf(stderr, "casebus serve: --http: %s\n", http_bound.error().message().c_str());
    return 1;
  }
  (*engine)->Start();
  // Written once listening, atomically (tests and scripts wait for these files).
  auto announce = [&](const std::string& path, const std::string& what) {
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << what << "\n";
    std::filesystem::rename(tmp, path, ec);
  };
  if (auto f = flags->Get("endpoint-file")) announce(*f, *bound);
  if (auto f = flags->Get("http-file")) announce(*f, *http_bound);
  const auto stats = (*engine)->stats();
  const std::string restored =
      stats.checkpoint_seq == 0 ? std::string()
                                : "restored " + std::to_string(stats.checkpoint_cases) +
                                      " cases from the checkpoint at journal record " +
                                      std::to_string(stats.checkpoint_seq) + "; ";
  char took[160];
  std::snprintf(took, sizeof took, "open took %.2f s: store %.2f, checkpoint %.2f, replay %.2f, checks %.2f",
                stats.open_store_seconds + stats.open_checkpoint_seconds + stats.open_replay_seconds +
                    stats.open_checks_seconds,
                stats.open_store_seconds, stats.open_checkpoint_seconds, stats.open_replay_seconds,
                stats.open_checks_seconds);
  const std::string ledger =
      stats.ledger_differences > 0 ? "rewritten from the journal"
      : stats.ledger_behind > 0    ? "caught up from the journal (" + std::to_string(stats.ledger_behind) +
                                      " records behind after a crash" +
                                      (stats.ledger_compared ? ", matching it up to there)" : ")")
                                   : "matching the journal";
  std::printf("casebus: serving %s on %s, HTTP on http://%s (/dashboard, /metrics, "
              "/v1/, /open311/v2/; %d API tokens) (data %s; %sreplayed %llu journal records; %llu items "
              "waiting for delivery; timer rows checked beside serving; ledger %s; %s)\n",
              (*cfg)->name().c_str(), bound->c_str(), http_bound->c_str(), access->config().tokens_size(), data.c_str(),
              restored.c_str(), static_cast<unsigned long long>(stats.replayed_records),
              static_cast<unsigned long long>((*engine)->dispatcher().pending()),
              ledger.c_str(), took);
  std::fflush(stdout);

  std::atomic<bool> stop{false};
  std::thread waiter([&] {
    for (;;) {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      if (sig != SIGHUP) break;
      (void)reload();
    }
    stop.store(true);
  });
  waiter.detach();
  intake.Run(stop);
  http.Stop();
  (*engine)->Stop();  // drains, answers, and writes the checkpoint
  const auto end = (*engine)->stats();
  std::string checkpoint;
  if (end.checkpoint_written_seq > 0) {
    char size[64];
    std::snprintf(size, sizeof size, "%.1f MiB in %.2f s", end.checkpoint_written_bytes / 1048576.0,
                  end.checkpoint_write_seconds);
    checkpoint = "; checkpoint at journal record " + std::to_string(end.checkpoint_written_seq) + " written (" +
                 size + ")";
  } else if (!end.checkpoint_write_error.empty())
    checkpoint = "; no checkpoint written (" + end.checkpoint_write_error + "): the next start replays the journal";
  std::printf("casebus: stopped; %llu commands committed in this run%s\n",
              static_cast<unsigned long long>(end.commands_committed), checkpoint.c_str());
  return (*engine)->healthy() ? 0 : 1;
}

}  // namespace casebus::cli

// `casebus serve` and `casebus check-config`.

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "adapters/register_all.h"
#include "engine/cli/client.h"
#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/config/loader.h"
#include "engine/query/telemetry.h"
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

int RunServe(const Args& args) {
  auto flags = Flags::Parse(args, {"config", "data", "endpoint", "endpoint-file", "http", "http-file"},
                            {"no-sync", "no-dispatch"});
  if (!flags) {
    std::fprintf(stderr, "casebus serve: %s\n", flags.error().message().c_str());
    return 2;
  }
  // Block the stop signals in every thread; one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
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
                                .telemetry = &telemetry};
  auto engine = server::Engine::Open(*cfg, options, clock, registry);
  if (!engine) {
    std::fprintf(stderr, "casebus serve: %s\n", engine.error().ToString().c_str());
    return 1;
  }
  server::Intake intake(**engine, (*cfg)->intake());
  auto bound = intake.Bind(flags->GetOr("endpoint", DefaultEndpoint()));
  if (!bound) {
    std::fprintf(stderr, "casebus serve: %s\n", bound.error().message().c_str());
    return 1;
  }
  server::HttpServer http;
  server::AddReadRoutes(http, **engine, telemetry);
  server::AddOpen311Routes(http, **engine);
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
  std::printf("casebus: serving %s on %s, HTTP on http://%s (/dashboard, /metrics, "
              "/v1/metrics/closure, /open311/v2/) (data %s; replayed %llu journal records; %llu items "
              "waiting for delivery; %llu timer rows%s; ledger %s)\n",
              (*cfg)->name().c_str(), bound->c_str(), http_bound->c_str(), data.c_str(),
              static_cast<unsigned long long>(stats.replayed_records),
              static_cast<unsigned long long>((*engine)->dispatcher().pending()),
              static_cast<unsigned long long>(stats.timer_rows),
              stats.timer_mismatches == 0 ? ", matching the journal"
                                          : ", NOT matching the journal: timers follow the journal",
              stats.ledger_differences == 0 ? "matching the journal" : "rewritten from the journal");
  std::fflush(stdout);

  std::atomic<bool> stop{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    stop.store(true);
  });
  waiter.detach();
  intake.Run(stop);
  http.Stop();
  const auto end = (*engine)->stats();
  std::printf("casebus: stopped; %llu commands committed in this run\n",
              static_cast<unsigned long long>(end.commands_committed));
  return (*engine)->healthy() ? 0 : 1;
}

}  // namespace casebus::cli

// `casebus simulate`: replays a scenario of timestamped commands on a virtual clock through
// the real engine (journal, group commit, timers) in a temporary directory, stepping the clock
// to every ladder step's exact instant, and reports each case's deadlines and escalations and
// the closure table — as text, or as JSON with --json.

#include <boost/json.hpp>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "adapters/register_all.h"
#include "engine/base/time_format.h"
#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/cli/print.h"
#include "engine/config/loader.h"
#include "engine/query/closure_table.h"
#include "engine/server/engine.h"

namespace casebus::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr size_t kMaxLineBytes = 64 * 1024;

struct Step {
  Millis at;
  v1::Command command;
};

Result<std::vector<Step>> ReadScenario(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Err(Status::NotFound(path + ": cannot open the scenario"));
  std::vector<Step> steps;
  std::string line;
  Millis last = 0;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string where = path + ":" + std::to_string(n) + ": ";
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
    if (line.size() > kMaxLineBytes)
      return Err(Status::InvalidArgument(where + "line is longer than 64 KiB"));
    v1::ScenarioStep s;
    auto st = google::protobuf::util::JsonStringToMessage(line, &s);
    if (!st.ok())
      return Err(Status::InvalidArgument(where + "not a scenario step: " + std::string(st.message())));
    auto at = ParseIso(s.at());
    if (!at) return Err(Status::InvalidArgument(where + "at: '" + s.at() + "' is not ISO 8601 with an offset", "at"));
    if (*at < last) return Err(Status::InvalidArgument(where + "at: goes back in time; lines must be in time order", "at"));
    if (!s.has_command()) return Err(Status::InvalidArgument(where + "command: required", "command"));
    last = *at;
    steps.push_back({*at, std::move(*s.mutable_command())});
  }
  return steps;
}

std::string Iso(Millis t, int off) { return t > 0 ? FormatIso(t, off) : ""; }

json::object CaseJson(const v1::Case& c, int off) {
  json::array esc;
  for (const auto& e : c.history()) {
    if (e.type() != v1::EV_ESCALATED) continue;
    std::string stage = v1::Stage_Name(e.stage());
    for (auto& ch : stage) ch = static_cast<char>(std::tolower(ch));
    esc.push_back({{"stage", stage}, {"step", e.step_id()}, {"due", Iso(e.due_at_ms(), off)},
                   {"notify", e.notify()}, {"supervision", e.supervision()}});
  }
  std::string state = v1::CaseState_Name(c.state());
  for (auto& ch : state) ch = static_cast<char>(std::tolower(ch));
  return {{"id", c.id()},
          {"category", c.category()},
          {"department", c.department()},
          {"state", state},
          {"accept_deadline", Iso(c.accept_deadline_ms(), off)},
          {"handle_deadline", Iso(c.handle_deadline_ms(), off)},
          {"verify_deadline", Iso(c.verify_deadline_ms(), off)},
          {"escalations", std::move(esc)}};
}

json::array RowsJson(const google::protobuf::RepeatedPtrField<v1::ClosureRow>& rows) {
  json::array out;
  for (const auto& r : rows)
    out.push_back({{"key", r.key()}, {"registered", r.registered()}, {"dispatched", r.dispatched()},
                   {"due", r.due()}, {"closed", r.closed()}, {"closed_on_time", r.closed_on_time()},
                   {"overdue_open", r.overdue_open()}, {"rework", r.rework()},
                   {"returned", r.returned()}, {"closure_rate", r.closure_rate()},
                   {"on_time_closure_rate", r.on_time_closure_rate()}});
  return out;
}

v1::Reply Query(server::Engine& e, v1::Query q) {
  v1::Request r;
  r.set_version(1);
  *r.mutable_query() = std::move(q);
  return e.Call(std::move(r));
}

}  // namespace

int RunSimulate(const Args& args) {
  auto flags = Flags::Parse(args, {"config", "scenario", "json", "until"}, {});
  if (!flags) {
    std::fprintf(stderr, "casebus simulate: %s\n", flags.error().message().c_str());
    return 2;
  }
  auto path = flags->Required("scenario");
  if (!path) {
    std::fprintf(stderr, "casebus simulate: %s\n", path.error().message().c_str());
    return 2;
  }
  auto cfg = LoadConfigOrSample(flags->GetOr("config", ""));
  if (!cfg) {
    std::fprintf(stderr, "casebus simulate: config: %s\n", cfg.error().message().c_str());
    return 1;
  }
  auto steps = ReadScenario(*path);
  if (!steps) {
    std::fprintf(stderr, "casebus simulate: %s\n", steps.error().message().c_str());
    return 1;
  }
  if (steps->empty()) {
    std::fprintf(stderr, "casebus simulate: %s has no steps\n", path->c_str());
    return 1;
  }
  Millis until = steps->back().at;
  if (auto u = flags->Get("until")) {
    auto t = ParseIso(*u);
    if (!t) {
      std::fprintf(stderr, "casebus simulate: --until '%s' is not ISO 8601 with an offset\n", u->c_str());
      return 2;
    }
    until = std::max(until, *t);
  }
  std::string tmpl = (fs::temp_directory_path() / "casebus-simulate-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) {
    std::perror("casebus simulate: mkdtemp");
    return 1;
  }
  const int off = (*cfg)->calendar().utc_offset_minutes();
  ManualClock clock(steps->front().at);
  dispatch::AdapterRegistry registry;
  adapters::RegisterAllAdapters(registry);
  // No fsync: the directory is thrown away at exit, and a month of a city is ~170,000 batches
  // (one per step, one per ladder instant): 20 s without it, about 10 minutes with it.
  auto engine = server::Engine::Open(
      *cfg, {.data_dir = tmpl, .sync = false, .run_dispatcher = false, .checkpoint_on_stop = false}, clock,
      registry);
  if (!engine) {
    std::fprintf(stderr, "casebus simulate: %s\n", engine.error().ToString().c_str());
    fs::remove_all(tmpl);
    return 1;
  }
  server::Engine& e = **engine;
  e.Start();
  // Every ladder step fires at its own instant: the clock visits each one up to `t`.
  auto advance = [&](Millis t) {
    for (Millis due = e.next_due(); due != 0 && due <= t; due = e.next_due()) {
      clock.Set(std::max(due, clock.Now()));
      e.Tick();
    }
    clock.Set(std::max(t, clock.Now()));
  };
  size_t refused = 0, done = 0;
  const size_t progress_every = std::max<size_t>(1, steps->size() / 10);
  for (const Step& s : *steps) {
    advance(s.at);
    v1::Request req;
    req.set_version(1);
    *req.add_commands() = s.command;
    auto reply = e.Call(std::move(req));
    if (reply.results_size() == 0 || reply.results(0).code() != v1::OK) {
      ++refused;
      std::fprintf(stderr, "  %s %s: %s\n", FormatIso(s.at, off).c_str(), s.command.request_id().c_str(),
                   reply.results_size() ? FormatResult(reply.results(0)).c_str() : "no result");
    }
    if (++done % progress_every == 0 && steps->size() >= 1000)
      std::fprintf(stderr, "  … %zu/%zu steps, virtual time %s\n", done, steps->size(), FormatIso(s.at, off).c_str());
  }
  advance(until);
  e.Tick();

  v1::Query status;
  status.mutable_status();
  const uint64_t cases = Query(e, status).query().status().cases();
  v1::Query closure;
  closure.mutable_closure()->set_as_of_ms(until);
  const auto table = Query(e, closure).query();
  json::array case_json;
  std::string text;
  for (uint64_t id = 1; id <= cases; ++id) {
    v1::Query show;
    show.mutable_show()->set_case_id(id);
    auto r = Query(e, show);
    if (r.query().code() != v1::OK) continue;
    case_json.push_back(CaseJson(r.query().found(), off));
    if (!flags->Has("json")) text += FormatCase(r.query().found(), off) + "\n";
  }
  e.Stop();
  engine->reset();
  fs::remove_all(tmpl);

  if (auto out = flags->Get("json")) {
    json::object doc{{"scenario", *path},
                     {"until", FormatIso(until, off)},
                     {"steps", steps->size()},
                     {"refused", refused},
                     {"cases", std::move(case_json)},
                     {"closure_by_department", RowsJson(table.by_department())},
                     {"closure_by_district", RowsJson(table.by_district())}};
    std::ofstream(*out) << json::serialize(doc) << "\n";
    std::printf("casebus simulate: %zu steps, %llu cases, %zu refused; wrote %s\n", steps->size(),
                static_cast<unsigned long long>(cases), refused, out->c_str());
    return refused == 0 ? 0 : 1;
  }
  std::fputs(text.c_str(), stdout);
  std::printf("Closure as of %s\n\n", FormatIso(until, off).c_str());
  std::fputs(query::FormatClosureTable("By department", table.by_department()).c_str(), stdout);
  std::printf("\n%zu steps, %llu cases, %zu refused\n", steps->size(), static_cast<unsigned long long>(cases), refused);
  return refused == 0 ? 0 : 1;  // a refused step is printed above and fails the run
}

}  // namespace casebus::cli

#pragma once
// Shared by engine_test and intake_test: the sample city, a temporary data directory, and
// builders for the commands of the closed loop. Header-only; test thread only.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/base/clock.h"
#include "engine/config/loader.h"
#include "engine/server/engine.h"

namespace casebus::server::testing {

// 2026-03-02 09:00 +08:00, a Monday inside working hours.
constexpr Millis kStart = 1772413200000;
constexpr const char* kOperator = "op-wang";
constexpr const char* kDrainClog = "200404";

inline std::shared_ptr<const v1::CityConfig> SampleCity() {
  static const auto city = [] {
    auto c = config::LoadCityConfigFile(CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml");
    if (!c) {
      ADD_FAILURE() << c.error().ToString();
      return std::shared_ptr<const v1::CityConfig>(std::make_shared<v1::CityConfig>());
    }
    return *c;
  }();
  return city;
}

// The sample city with its intake limits edited.
inline std::shared_ptr<const v1::CityConfig> SampleCityWith(
    const std::function<void(v1::IntakeLimits&)>& edit) {
  auto c = std::make_shared<v1::CityConfig>(*SampleCity());
  edit(*c->mutable_intake());
  return c;
}

// The n-th grid of the sample city: distinct grids keep reports from merging as duplicates.
inline std::string Grid(int n) { return SampleCity()->grids(n).code(); }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/casebus-server-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline v1::Command Cmd(const std::string& request_id, const std::string& actor = kOperator) {
  v1::Command c;
  c.set_request_id(request_id);
  c.set_actor(actor);
  return c;
}

inline v1::Command Report(const std::string& rid, const std::string& grid,
                          const std::string& category = kDrainClog) {
  v1::Command c = Cmd(rid, "inspector-07");
  auto* r = c.mutable_report();
  r->set_category(category);
  r->mutable_place()->set_grid(grid);
  r->set_source(v1::INSPECTOR);
  r->set_description("下水道堵塞，污水外溢");
  return c;
}
inline v1::Command Register(const std::string& rid, uint64_t id) {
  v1::Command c = Cmd(rid);
  c.mutable_register_()->set_case_id(id);
  return c;
}
inline v1::Command Dispatch(const std::string& rid, uint64_t id) {
  v1::Command c = Cmd(rid);
  c.mutable_dispatch()->set_case_id(id);
  return c;
}
inline v1::Command Accept(const std::string& rid, uint64_t id, const std::string& dept) {
  v1::Command c = Cmd(rid, dept);
  c.mutable_accept()->set_case_id(id);
  return c;
}
inline v1::Command Resolve(const std::string& rid, uint64_t id, const std::string& dept) {
  v1::Command c = Cmd(rid, dept);
  c.mutable_resolve()->set_case_id(id);
  c.mutable_resolve()->add_evidence("photo://after/" + std::to_string(id));
  return c;
}
inline v1::Command Verify(const std::string& rid, uint64_t id) {
  v1::Command c = Cmd(rid);
  c.mutable_verify()->set_case_id(id);
  c.mutable_verify()->set_passed(true);
  return c;
}
inline v1::Command Close(const std::string& rid, uint64_t id) {
  v1::Command c = Cmd(rid);
  c.mutable_close()->set_case_id(id);
  return c;
}

inline v1::Request Req(std::initializer_list<v1::Command> commands) {
  v1::Request r;
  r.set_version(1);
  for (const auto& c : commands) *r.add_commands() = c;
  return r;
}
inline v1::Request ShowReq(uint64_t id) {
  v1::Request r;
  r.set_version(1);
  r.mutable_query()->mutable_show()->set_case_id(id);
  return r;
}
inline v1::Request StatusReq() {
  v1::Request r;
  r.set_version(1);
  r.mutable_query()->mutable_status();
  return r;
}

// Polls `done` every 10 ms for up to `limit`; true once it holds.
inline bool WaitFor(const std::function<bool()>& done,
                    std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// An Engine on `city` with its data in `dir`, started; nullptr (and a test failure) when it
// does not open.
inline std::unique_ptr<Engine> StartedEngine(std::shared_ptr<const v1::CityConfig> city,
                                             const std::string& dir, const Clock& clock,
                                             const dispatch::AdapterRegistry& registry,
                                             EngineOptions o = {}) {
  o.data_dir = dir;
  auto e = Engine::Open(std::move(city), o, clock, registry);
  EXPECT_TRUE(e.has_value()) << e.error().ToString();
  if (!e) return nullptr;
  (*e)->Start();
  return std::move(*e);
}

// Reports, registers and dispatches n cases on distinct grids and closes every other one
// (accept, resolve, verify, close), then stops the engine.
inline void RunClosedLoop(std::shared_ptr<const v1::CityConfig> city, const std::string& dir,
                          const Clock& clock, const dispatch::AdapterRegistry& registry, int n,
                          EngineOptions o = {}) {
  auto engine = StartedEngine(city, dir, clock, registry, o);
  ASSERT_TRUE(engine);
  for (int i = 0; i < n; ++i) {
    const std::string k = std::to_string(i);
    auto r = engine->Call(Req({Report("r" + k, Grid(i))}));
    ASSERT_EQ(r.results(0).code(), v1::OK) << r.results(0).message();
    const uint64_t id = r.results(0).case_id();
    ASSERT_EQ(engine->Call(Req({Register("g" + k, id)})).results(0).code(), v1::OK);
    auto d = engine->Call(Req({Dispatch("d" + k, id)}));
    ASSERT_EQ(d.results(0).code(), v1::OK) << d.results(0).message();
    if (i % 2 == 1) continue;  // half stay open
    const std::string dept = d.results(0).department();
    ASSERT_EQ(engine->Call(Req({Accept("a" + k, id, dept)})).results(0).code(), v1::OK);
    ASSERT_EQ(engine->Call(Req({Resolve("s" + k, id, dept)})).results(0).code(), v1::OK);
    ASSERT_EQ(engine->Call(Req({Verify("v" + k, id)})).results(0).code(), v1::OK);
    ASSERT_EQ(engine->Call(Req({Close("c" + k, id)})).results(0).code(), v1::OK);
  }
  engine->Stop();
}

}  // namespace casebus::server::testing

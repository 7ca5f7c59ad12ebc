// Fuzz target: one ZeroMQ payload frame as the intake decodes it (engine/server/frame_decode.h:
// size, protobuf parse, version, unknown fields, commands per frame), then every command
// through the stateless field rules (core::CheckCommand), and every valid report through the
// Router of the test city (tests/support/test_city.h, SmallCity).
//
// Checked beyond "no crash": a refusal names a code and a reason; a decoded request
// re-serializes to bytes that decode again to the same bytes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <google/protobuf/stubs/logging.h>

#include "engine/core/command_check.h"
#include "engine/core/router.h"
#include "engine/server/frame_decode.h"
#include "tests/support/test_city.h"

namespace casebus::fuzz {
namespace {

struct Fixture {
  v1::IntakeLimits limits;
  core::Router router;
};

const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    // Invalid UTF-8 in a string field is a parse failure, which protobuf also logs; the log
    // line would be the fuzzer's main cost.
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int,
                                       const std::string&) {});
    auto city = testing::SmallCity();
    auto router = core::Router::Compile(*city);
    if (!router) std::abort();
    return new Fixture{city->intake(), std::move(*router)};
  }();
  return *fixture;
}

void Require(bool condition) {
  if (!condition) std::abort();
}

void RouteReport(const core::Router& router, const v1::Report& r) {
  v1::Case c;
  c.set_category(r.category());
  c.set_condition(r.condition());
  *c.mutable_place() = r.place();
  c.set_source(r.source());
  c.set_urgency(r.urgency() == v1::URGENCY_UNSPECIFIED ? v1::NORMAL : r.urgency());
  c.set_asset_id(r.asset_id());
  auto decided = router.Route(c);
  if (decided) Require(!decided->department().empty());
  else Require(!decided.error().message().empty());
}

}  // namespace
}  // namespace casebus::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace casebus;
  const fuzz::Fixture& fixture = fuzz::GetFixture();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto decoded = server::DecodeRequestFrame(bytes, fixture.limits);
  if (!decoded) {
    fuzz::Require(decoded.error().code != v1::OK && !decoded.error().message.empty());
    return 0;
  }
  for (const v1::Command& cmd : decoded->commands()) {
    (void)core::CommandName(cmd);
    (void)core::TargetCase(cmd);
    Status st = core::CheckCommand(cmd);
    if (!st.ok()) {
      fuzz::Require(!st.message().empty());
      continue;
    }
    if (cmd.has_report()) fuzz::RouteReport(fixture.router, cmd.report());
  }
  const std::string again = decoded->SerializeAsString();
  auto redecoded = server::DecodeRequestFrame(again, fixture.limits);
  fuzz::Require(redecoded.has_value() && redecoded->SerializeAsString() == again);
  return 0;
}

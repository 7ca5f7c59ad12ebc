// Fuzz target: the city config loader (engine/config/loader.h, LoadCityConfigText): YAML text
// in, a validated CityConfig with defaults or an error listing the problems out.
//
// Checked beyond "no crash": an error names the source and says something; a config the
// loader accepts is one the engine can start on — its zone's offsets are known and its route
// table compiles (the two steps of Engine::Open that can refuse a config) — it survives a
// protobuf round trip (its strings are UTF-8, so records that copy them parse again), and
// ApplyDefaults on it changes nothing (it is idempotent). The rest of CaseMachine::Create is
// left out: its working calendar precomputes 2000–2100 and costs ~25 ms a config under ASan,
// which would cut this target to a few dozen executions a second.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <google/protobuf/stubs/logging.h>

#include "engine/config/loader.h"
#include "engine/config/time_zone.h"
#include "engine/core/router.h"

namespace {

constexpr std::string_view kSource = "fuzz.yaml";

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int,
                                     const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace casebus;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto loaded = config::LoadCityConfigText(yaml, kSource);
  if (!loaded) {
    const std::string& message = loaded.error().message();
    Require(loaded.error().code() == StatusCode::kInvalidArgument);
    Require(message.size() > kSource.size() && message.starts_with(kSource));
    return 0;
  }
  const std::shared_ptr<const v1::CityConfig>& city = *loaded;
  Require(city != nullptr);
  const std::string bytes = city->SerializeAsString();
  v1::CityConfig again;
  Require(again.ParseFromString(bytes) && again.SerializeAsString() == bytes);
  config::ApplyDefaults(again);
  Require(again.SerializeAsString() == bytes);
  auto offsets = config::CalendarOffsets(*city);
  Require(offsets.has_value());
  Require(core::Router::Compile(*city).has_value());
  return 0;
}

#pragma once
// The open311 adapter tests' fixture: a temp data directory, tests/support/open311_server.py,
// a city whose webhook_allow admits it, a "roads" department using the adapter (poll every
// 100 ms), sample work orders, and helpers to read the adapter's record files and wait for
// replies. Test thread only.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "adapters/open311/open311_adapter.h"
#include "tests/adapters/open311/open311_server.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus::open311::testing {

namespace fs = std::filesystem;
using dispatch::Delivery;
using dispatch::InboundReply;
using Outcome = Delivery::Outcome;
using server::testing::TempDir;
using server::testing::WaitFor;

constexpr const char* kKeyEnv = "CASEBUS_TEST_OPEN311_KEY";

inline std::string Describe(const Delivery& d) {
  const char* names[] = {"kDelivered", "kRetry", "kRejected"};
  return std::string(names[static_cast<int>(d.outcome)]) + " \"" + d.error +
         "\" retry_after_ms=" + std::to_string(d.retry_after_ms);
}

inline v1::CommandResult EngineSays(v1::Code code, std::string message = "") {
  v1::CommandResult r;
  r.set_code(code);
  r.set_message(std::move(message));
  return r;
}

inline v1::WorkOrder Order(std::string id = "42-1", std::string category = "200404") {
  v1::WorkOrder o;
  o.set_id(std::move(id));
  o.set_case_id(42);
  o.set_department("roads");
  o.set_category(std::move(category));
  o.mutable_place()->set_grid("330102001001001");
  o.set_description("下水道堵塞，污水外溢 & \"urgent\"");
  return o;
}

inline v1::WorkOrder LocatedOrder() {
  v1::WorkOrder o = Order();
  o.mutable_place()->set_lat(30.2741);
  o.mutable_place()->set_lon(120.1551);
  o.mutable_place()->set_has_coordinates(true);
  o.mutable_place()->set_address("金河路 1 号");
  return o;
}

class Open311AdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Open311Server>(
        dir_.path(), std::vector<std::string>{"--jurisdiction", "jinhe", "--slow-s", "2"});
    city_.add_webhook_allow(server_->Base());
    city_.mutable_delivery()->set_timeout_ms(600);
    ::setenv(kKeyEnv, kApiKey, 1);
    RegisterOpen311Adapter(registry_);
  }

  v1::Department Roads() const {
    v1::Department d;
    d.set_id("roads");
    auto* o = d.mutable_adapter()->mutable_open311();
    o->set_endpoint(server_->Endpoint());
    o->set_api_key_env(kKeyEnv);
    o->set_jurisdiction_id("jinhe");
    o->set_poll_interval_ms(100);
    auto* sc = o->add_service_codes();
    sc->set_category("200404");
    sc->set_service_code("drain-blocked");
    return d;
  }
  std::unique_ptr<dispatch::Adapter> Make(const v1::Department& d) {
    auto a = registry_.Create(d, {dir_.path(), &city_});
    EXPECT_TRUE(a) << a.error().ToString();
    return a ? std::move(*a) : nullptr;
  }
  std::unique_ptr<dispatch::Adapter> Make() { return Make(Roads()); }

  std::string RecordPath(const std::string& id = "42-1") const {
    return dir_.path() + "/open311/roads/" + id + ".json";
  }
  boost::json::object Record(const std::string& id = "42-1") const {
    std::ifstream in(RecordPath(id));
    std::stringstream ss;
    ss << in.rdbuf();
    boost::system::error_code ec;
    auto v = boost::json::parse(ss.str(), ec);
    EXPECT_FALSE(ec) << RecordPath(id) << ": " << ss.str();
    return v.is_object() ? v.as_object() : boost::json::object();
  }
  std::string RecordText(const std::string& key, const std::string& id = "42-1") const {
    boost::json::object r = Record(id);
    const auto* v = r.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : "";
  }
  bool RecordFlag(const std::string& key, const std::string& id = "42-1") const {
    boost::json::object r = Record(id);
    const auto* v = r.if_contains(key);
    return v && v->is_bool() && v->as_bool();
  }
  std::string RecordBytes(const std::string& id = "42-1") const {
    std::ifstream in(RecordPath(id));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Polls the adapter's replies until one arrives (or the limit passes).
  static std::vector<InboundReply> NextReplies(dispatch::Adapter& a, int limit_ms = 3000) {
    std::vector<InboundReply> got;
    WaitFor(
        [&] {
          got = a.PollReplies();
          return !got.empty();
        },
        std::chrono::milliseconds(limit_ms));
    return got;
  }
  // Waits until the server has answered `more` GETs of `path` beyond `from`.
  bool WaitForPolls(const std::string& path, int64_t more) {
    const int64_t from = server_->Gets(path);
    return WaitFor([&] { return server_->Gets(path) >= from + more; }, std::chrono::seconds(5));
  }
  std::string RequestPath(const std::string& id = "638344") const {
    return "/open311/v2/requests/" + id + ".json";
  }

  TempDir dir_;
  std::unique_ptr<Open311Server> server_;
  v1::CityConfig city_;
  dispatch::AdapterRegistry registry_;
};

}  // namespace casebus::open311::testing

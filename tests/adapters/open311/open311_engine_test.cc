// adapters/open311 with a real Engine (on disk): the sample city's drainage department
// forwards over Open311 to tests/support/open311_server.py. A dispatched case reaches the
// server as a service request and becomes ACCEPTED; the server's status_notes become a Note
// in the case history; closing it remotely resolves the case with open311 evidence. After a
// restart — even one that lost every Settle() — nothing is POSTed again and nothing applied
// twice; a server answering garbage changes nothing.

#include <boost/json.hpp>

#include "adapters/register_all.h"
#include "engine/server/engine.h"
#include "tests/adapters/open311/open311_fixture.h"

namespace casebus::open311::testing {
namespace {

using namespace casebus::server::testing;

class Open311EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Open311Server>(dir_.path());
    ::setenv(kKeyEnv, kApiKey, 1);
    auto city = std::make_shared<v1::CityConfig>(*SampleCity());
    city->add_webhook_allow(server_->Base());
    city->mutable_delivery()->set_timeout_ms(1000);
    city->mutable_delivery()->set_backoff_base_ms(50);
    city->mutable_delivery()->set_backoff_cap_ms(200);
    for (auto& d : *city->mutable_departments()) {
      if (d.id() != "drainage") continue;
      auto* o = d.mutable_adapter()->mutable_open311();  // replaces its spool
      o->set_endpoint(server_->Endpoint());
      o->set_api_key_env(kKeyEnv);
      o->set_poll_interval_ms(200);
      auto* sc = o->add_service_codes();
      sc->set_category(kDrainClog);
      sc->set_service_code("drain-blocked");
    }
    city_ = city;
    adapters::RegisterAllAdapters(registry_);
    Open();
  }
  void TearDown() override { Stop(); }

  void Open() {
    server::EngineOptions o;
    o.data_dir = dir_.path() + "/engine";
    fs::create_directories(o.data_dir);
    auto e = server::Engine::Open(city_, o, clock_, registry_);
    ASSERT_TRUE(e) << e.error().ToString();
    engine_ = std::move(*e);
    engine_->Start();
  }
  void Stop() {
    if (engine_) engine_->Stop();
    engine_.reset();  // the adapters (and their pollers) go with it
  }

  v1::CommandResult Ok(const v1::Command& c) {
    v1::Reply r = engine_->Call(Req({c}));
    EXPECT_EQ(r.results(0).code(), v1::OK) << c.request_id() << ": " << r.results(0).message();
    return r.results(0);
  }
  // Reports, registers and dispatches a blocked drain in grid n to drainage.
  v1::CommandResult DispatchDrain(int n) {
    const std::string s = std::to_string(n);
    const uint64_t id = Ok(Report("rep-" + s, Grid(n))).case_id();
    Ok(Register("reg-" + s, id));
    v1::Command dispatch = Dispatch("dis-" + s, id);
    dispatch.mutable_dispatch()->set_department("drainage");
    v1::CommandResult d = Ok(dispatch);
    EXPECT_EQ(d.department(), "drainage");
    return d;
  }
  v1::Case Show(uint64_t id) { return engine_->Call(ShowReq(id)).query().found(); }
  int Count(const v1::Case& c, v1::EventType type, const std::string& reason = "") {
    int n = 0;
    for (const auto& e : c.history())
      if (e.type() == type && (reason.empty() || e.reason() == reason)) ++n;
    return n;
  }
  std::string RecordPath(const std::string& work_order) const {
    return dir_.path() + "/engine/open311/drainage/" + work_order + ".json";
  }

  TempDir dir_;
  std::unique_ptr<Open311Server> server_;
  std::shared_ptr<const v1::CityConfig> city_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
  std::unique_ptr<server::Engine> engine_;
};

TEST_F(Open311EngineTest, ACaseIsForwardedAcceptedNotedAndResolvedByTheRemoteServer) {
  const v1::CommandResult d = DispatchDrain(0);
  const uint64_t id = d.case_id();
  ASSERT_TRUE(WaitFor([&] { return server_->Posts().size() == 1; })) << "the server got nothing";
  auto form = server_->Posts()[0];
  EXPECT_EQ(form["service_code"], "drain-blocked");
  EXPECT_EQ(form["attribute[casebus_work_order]"], d.work_order_id());

  ASSERT_TRUE(WaitFor([&] { return Show(id).state() == v1::ACCEPTED; }))
      << v1::CaseState_Name(Show(id).state());
  const v1::Case accepted = Show(id);
  EXPECT_EQ(accepted.history(accepted.history_size() - 1).actor(), "drainage");

  server_->Change("638344", {{"status_notes", "管网班组已到场 crew on site"}});
  ASSERT_TRUE(
      WaitFor([&] { return Count(Show(id), v1::EV_NOTE, "管网班组已到场 crew on site") == 1; }));

  server_->Change("638344", {{"status", "closed"}, {"status_notes", "已疏通 drain cleared"}});
  ASSERT_TRUE(WaitFor([&] { return Show(id).state() == v1::RESOLVED; }))
      << v1::CaseState_Name(Show(id).state());
  const v1::Case resolved = Show(id);
  const v1::CaseEvent& e = resolved.history(resolved.history_size() - 1);
  ASSERT_EQ(e.type(), v1::EV_RESOLVED);
  EXPECT_EQ(e.actor(), "drainage");
  ASSERT_EQ(e.evidence_size(), 1);
  EXPECT_EQ(e.evidence(0), "open311:" + server_->Endpoint() + "requests/638344");
  EXPECT_EQ(e.reason(), "已疏通 drain cleared");
  ASSERT_TRUE(WaitFor([&] {  // every reply settled and recorded
    std::ifstream in(RecordPath(d.work_order_id()));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find("\"done\":false") == std::string::npos &&
           text.find("\"resolve\"") != std::string::npos;
  }));

  // A restart that lost every Settle(): all three replies are offered again under their ids.
  Stop();
  {
    std::ifstream in(RecordPath(d.work_order_id()));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    boost::json::value v = boost::json::parse(text);
    for (auto& q : v.as_object()["replies"].as_array()) q.as_object()["done"] = false;
    std::ofstream(RecordPath(d.work_order_id()), std::ios::trunc) << boost::json::serialize(v);
  }
  Open();
  ASSERT_TRUE(WaitFor([&] {
    std::ifstream in(RecordPath(d.work_order_id()));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find("\"done\":false") == std::string::npos;
  })) << "the replies were not offered again";
  const v1::Case after = Show(id);
  EXPECT_EQ(after.state(), v1::RESOLVED);
  EXPECT_EQ(Count(after, v1::EV_ACCEPTED), 1);
  EXPECT_EQ(Count(after, v1::EV_NOTE), 1);
  EXPECT_EQ(Count(after, v1::EV_RESOLVED), 1);
  EXPECT_EQ(after.history_size(), resolved.history_size());
  // Nothing POSTed again, and a closed request is not polled any more.
  const int64_t polls = server_->Gets("/open311/v2/requests/638344.json");
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(server_->Posts().size(), 1u);
  EXPECT_EQ(server_->Gets("/open311/v2/requests/638344.json"), polls);
}

TEST_F(Open311EngineTest, GarbageFromTheServerChangesNothing) {
  const v1::CommandResult d = DispatchDrain(1);
  const uint64_t id = d.case_id();
  ASSERT_TRUE(WaitFor([&] { return Show(id).state() == v1::ACCEPTED; }));
  const int history = Show(id).history_size();
  // Unreadable answers first, then the change: a poll between the two would read the closed
  // status (this order was the other way round and failed now and then on a loaded machine).
  server_->Mode({{"get", "garbage"}});
  server_->Change("638344", {{"status", "closed"}, {"status_notes", "seen only once readable"}});
  for (const char* mode : {"garbage", "badstatus", "otherid", "wrongshape"}) {
    server_->Mode({{"get", mode}});
    const int64_t polls = server_->Gets("/open311/v2/requests/638344.json");
    ASSERT_TRUE(
        WaitFor([&] { return server_->Gets("/open311/v2/requests/638344.json") >= polls + 3; },
                std::chrono::seconds(15)));  // a loaded 2-core machine slows the polls
    const v1::Case c = Show(id);
    EXPECT_EQ(c.state(), v1::ACCEPTED) << mode;
    EXPECT_EQ(c.history_size(), history) << mode;
  }
  // Across a restart too, and then a readable answer goes through.
  Stop();
  Open();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(Show(id).history_size(), history);
  server_->Mode({{"get", "ok"}});
  ASSERT_TRUE(WaitFor([&] { return Show(id).state() == v1::RESOLVED; }));
  EXPECT_EQ(server_->Posts().size(), 1u);
}

}  // namespace
}  // namespace casebus::open311::testing

// adapters/open311, delivery: the open311 adapter, made through the AdapterRegistry and
// pointed at tests/support/open311_server.py on loopback. The server records what it was
// POSTed, so the test checks the request as a GeoReport v2 server sees it, the record kept
// before Delivered is answered, that a recorded order is never POSTed again, and how each of
// the server's answers (and misbehaviours) is classified.

#include "tests/adapters/open311/open311_fixture.h"

namespace casebus::open311::testing {
namespace {

TEST_F(Open311AdapterTest, PostsTheGeoReportFormAndRecordsTheRemoteId) {
  auto adapter = Make();
  ASSERT_TRUE(adapter);
  EXPECT_EQ(adapter->Endpoint(), "open311 " + server_->Endpoint());
  Delivery d = adapter->Deliver(LocatedOrder());
  ASSERT_EQ(d.outcome, Outcome::kDelivered) << Describe(d);

  auto posts = server_->Posts();
  ASSERT_EQ(posts.size(), 1u);
  auto& form = posts[0];
  EXPECT_EQ(form["(content-type)"], "application/x-www-form-urlencoded");
  EXPECT_EQ(form["api_key"], kApiKey);
  EXPECT_EQ(form["jurisdiction_id"], "jinhe");
  EXPECT_EQ(form["service_code"], "drain-blocked");  // the ServiceCode mapping
  EXPECT_EQ(form["lat"], "30.2741");
  EXPECT_EQ(form["long"], "120.1551");
  EXPECT_EQ(form["address_string"], "金河路 1 号");
  EXPECT_EQ(form["description"], "下水道堵塞，污水外溢 & \"urgent\"\n\ncasebus work order 42-1");
  EXPECT_EQ(form["attribute[casebus_work_order]"], "42-1");

  boost::json::object r = Record();
  EXPECT_EQ(r["work_order_id"].as_string(), "42-1");
  EXPECT_EQ(r["case_id"].as_int64(), 42);
  EXPECT_EQ(r["remote_id"].as_string(), "638344");
  EXPECT_FALSE(fs::exists(dir_.path() + "/open311/roads/.42-1.json.tmp"));
}

TEST_F(Open311AdapterTest, ARecordedOrderIsNeverPostedAgainNotEvenAfterARestart) {
  auto adapter = Make();
  ASSERT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);
  Delivery again = adapter->Deliver(LocatedOrder());
  EXPECT_EQ(again.outcome, Outcome::kDelivered) << Describe(again);
  EXPECT_EQ(server_->Posts().size(), 1u);
  adapter.reset();
  auto restarted = Make();
  EXPECT_EQ(restarted->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);
  EXPECT_EQ(server_->Posts().size(), 1u);
  // Another order is another request.
  EXPECT_EQ(restarted->Deliver(Order("43-1")).outcome, Outcome::kDelivered);
  EXPECT_EQ(server_->Posts().size(), 2u);
  EXPECT_EQ(Record("43-1")["remote_id"].as_string(), "638345");
}

TEST_F(Open311AdapterTest, AnUnmappedCategoryGoesAsItsOwnCodeAndAGridStandsInForTheAddress) {
  auto adapter = Make();
  Delivery d = adapter->Deliver(Order("44-1", "001"));
  ASSERT_EQ(d.outcome, Outcome::kDelivered) << Describe(d);
  auto form = server_->Posts().at(0);
  EXPECT_EQ(form["service_code"], "001");
  EXPECT_EQ(form.count("lat"), 0u);
  EXPECT_EQ(form["address_string"], "grid 330102001001001");
}

struct Misbehaviour {
  const char* mode;
  Outcome outcome;
  const char* says;
};

TEST_F(Open311AdapterTest, ClassifiesTheServersAnswers) {
  const Misbehaviour cases[] = {
      {"400", Outcome::kRejected, "lat/long out of the jurisdiction"},  // its error array
      {"500", Outcome::kRetry, "HTTP 500"},
      {"garbage", Outcome::kRetry, "not JSON"},
      {"noid", Outcome::kRetry, "neither a service_request_id nor a token"},
      {"huge", Outcome::kRetry, "larger than 1048576 bytes"},
      {"slow", Outcome::kRetry, "timed out"},
  };
  auto adapter = Make();
  for (const auto& c : cases) {
    server_->Mode({{"post", c.mode}});
    Delivery d = adapter->Deliver(LocatedOrder());
    EXPECT_EQ(d.outcome, c.outcome) << c.mode << ": " << Describe(d);
    EXPECT_NE(d.error.find(c.says), std::string::npos) << c.mode << ": " << Describe(d);
    if (std::string(c.mode) == "500") {
      EXPECT_EQ(d.retry_after_ms, 7000);
    }
    EXPECT_FALSE(fs::exists(RecordPath())) << c.mode << ": recorded without an id";
  }
  server_->Mode({{"post", "ok"}});
  EXPECT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);
  EXPECT_TRUE(fs::exists(RecordPath()));
}

TEST_F(Open311AdapterTest, AWrongApiKeyIsRejectedWithoutQuotingIt) {
  ::setenv(kKeyEnv, "not-the-key-4711", 1);
  auto adapter = Make();
  Delivery d = adapter->Deliver(LocatedOrder());
  EXPECT_EQ(d.outcome, Outcome::kRejected) << Describe(d);
  EXPECT_NE(d.error.find("HTTP 403"), std::string::npos) << Describe(d);
  EXPECT_NE(d.error.find("api_key"), std::string::npos) << Describe(d);
  EXPECT_EQ(d.error.find("not-the-key-4711"), std::string::npos) << Describe(d);
}

TEST_F(Open311AdapterTest, AnUnknownServiceCodeIsRejectedWithTheServersDescription) {
  auto adapter = Make();
  Delivery d = adapter->Deliver(Order("45-1", "209999"));
  EXPECT_EQ(d.outcome, Outcome::kRejected) << Describe(d);
  EXPECT_NE(d.error.find("Service code 209999 is invalid"), std::string::npos) << Describe(d);
}

TEST_F(Open311AdapterTest, NothingListeningIsRetried) {
  v1::Department d = Roads();
  const int port = casebus::testing::FreePort();
  d.mutable_adapter()->mutable_open311()->set_endpoint("http://127.0.0.1:" + std::to_string(port) +
                                                       "/v2/");
  city_.add_webhook_allow("http://127.0.0.1:" + std::to_string(port) + "/");
  auto adapter = Make(d);
  Delivery r = adapter->Deliver(LocatedOrder());
  EXPECT_EQ(r.outcome, Outcome::kRetry) << Describe(r);
  EXPECT_NE(r.error.find("connect"), std::string::npos) << Describe(r);
}

TEST_F(Open311AdapterTest, ANoticeIsKeptBesideTheRecordsAndNeverPosted) {
  auto adapter = Make();
  v1::Notice n;
  n.set_id("n42-2-reminder-0");
  n.set_case_id(42);
  n.set_department("roads");
  Delivery d = adapter->DeliverNotice(n);
  EXPECT_EQ(d.outcome, Outcome::kDelivered) << Describe(d);
  EXPECT_TRUE(fs::exists(dir_.path() + "/open311/roads/notices/n42-2-reminder-0.json"));
  EXPECT_TRUE(server_->Posts().empty());
  n.set_id("../escape");
  EXPECT_EQ(adapter->DeliverNotice(n).outcome, Outcome::kRejected);
  EXPECT_EQ(adapter->Deliver(Order("../../etc")).outcome, Outcome::kRejected);
  EXPECT_TRUE(server_->Posts().empty());
}

TEST_F(Open311AdapterTest, RefusesABadConfigAtCreation) {
  auto refused = [&](const v1::Department& d, const std::string& field, const std::string& says) {
    auto a = registry_.Create(d, {dir_.path(), &city_});
    ASSERT_FALSE(a) << says;
    EXPECT_EQ(a.error().field(), field) << a.error().ToString();
    EXPECT_NE(a.error().message().find(says), std::string::npos) << a.error().ToString();
    EXPECT_NE(a.error().message().find("department roads"), std::string::npos)
        << a.error().ToString();
  };
  v1::Department outside = Roads();
  outside.mutable_adapter()->mutable_open311()->set_endpoint("http://169.254.169.254/open311/");
  refused(outside, "endpoint", "webhook_allow");
  v1::Department no_slash = Roads();
  no_slash.mutable_adapter()->mutable_open311()->set_endpoint(server_->Endpoint() + "requests");
  refused(no_slash, "endpoint", "ending in");
  v1::Department unset = Roads();
  unset.mutable_adapter()->mutable_open311()->set_api_key_env("CASEBUS_TEST_OPEN311_UNSET");
  ::unsetenv("CASEBUS_TEST_OPEN311_UNSET");
  refused(unset, "api_key_env", "CASEBUS_TEST_OPEN311_UNSET");
  v1::Department both = Roads();
  both.mutable_adapter()->mutable_open311()->set_api_key_file("key");
  refused(both, "api_key_file", "exactly one");
  v1::Department missing = Roads();
  missing.mutable_adapter()->mutable_open311()->clear_api_key_env();
  missing.mutable_adapter()->mutable_open311()->set_api_key_file("absent.key");
  refused(missing, "api_key_file", "absent.key");
  // A key file (relative to the data directory) works, its trailing newline dropped.
  std::ofstream(dir_.path() + "/roads.key") << kApiKey << "\n";
  v1::Department file = Roads();
  file.mutable_adapter()->mutable_open311()->clear_api_key_env();
  file.mutable_adapter()->mutable_open311()->set_api_key_file("roads.key");
  auto adapter = Make(file);
  ASSERT_TRUE(adapter);
  EXPECT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);
  EXPECT_EQ(server_->Posts().at(0)["api_key"], kApiKey);
}

}  // namespace
}  // namespace casebus::open311::testing

// Webhook departments' replies through the callback server, with a real Engine on disk:
// a correctly signed Accept applies as the department; a redelivery gets the same result; bad,
// missing, expired signatures, malformed and oversized bodies, unknown paths and methods, and
// a reply for another department's case are refused with a reason and change nothing.

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <ctime>
#include <fstream>

#include "adapters/register_all.h"
#include "adapters/webhook/callback_server.h"
#include "adapters/webhook/signature.h"
#include "engine/server/engine.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using namespace casebus::server::testing;

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";  // test-only key

struct Answer {
  int status = 0;
  std::string body;
  std::string Field(const char* name) const {
    auto v = boost::json::parse(body).as_object();
    auto it = v.find(name);
    return it == v.end() ? "" : (it->value().is_string() ? std::string(it->value().as_string())
                                                         : boost::json::serialize(it->value()));
  }
};

Answer Post(int port, const std::string& target, const std::string& body,
            const std::vector<std::pair<std::string, std::string>>& headers,
            bhttp::verb verb = bhttp::verb::post) {
  net::io_context ioc;
  net::ip::tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  stream.connect(resolver.resolve("127.0.0.1", std::to_string(port)));
  bhttp::request<bhttp::string_body> req{verb, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  beast::error_code ec;
  bhttp::write(stream, req, ec);
  beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(stream, buf, res, ec);
  if (ec) return {0, ec.message()};
  return {static_cast<int>(res.result_int()), res.body()};
}

class CallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(std::string(dir_.path()) + "/drainage.key") << kSecret << "\n";
    auto city = std::make_shared<v1::CityConfig>(*SampleCity());
    city->add_webhook_allow("http://127.0.0.1:9/");
    city->mutable_webhook_callback()->set_listen(listen_);
    for (auto& d : *city->mutable_departments()) {
      if (d.id() != "drainage") continue;
      auto* w = d.mutable_adapter()->mutable_webhook();
      w->set_url("http://127.0.0.1:9/drainage");  // discard port: deliveries just retry
      w->set_secret_file("drainage.key");
    }
    adapters::RegisterAllAdapters(registry_);
    engine_ = StartedEngine(city, dir_.path(), clock_, registry_);
    ASSERT_NE(engine_, nullptr);
    auto server = webhook::CallbackServer::For(listen_);
    ASSERT_TRUE(server);
    port_ = (*server)->port();
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (engine_) engine_->Stop();
  }
  v1::CommandResult Ok(const v1::Command& c) {
    v1::Reply r = engine_->Call(Req({c}));
    EXPECT_EQ(r.results(0).code(), v1::OK) << c.request_id() << ": " << r.results(0).message();
    return r.results(0);
  }
  uint64_t DispatchTo(int n, const std::string& department) {
    const std::string s = std::to_string(n);
    const uint64_t id = Ok(Report("rep-" + s, Grid(n))).case_id();
    Ok(Register("reg-" + s, id));
    v1::Command d = Dispatch("dis-" + s, id);
    d.mutable_dispatch()->set_department(department);
    Ok(d);
    return id;
  }
  v1::Case Show(uint64_t id) { return engine_->Call(ShowReq(id)).query().found(); }
  // Headers signing `body` as message `id` at `ts` with the department's secret.
  static std::vector<std::pair<std::string, std::string>> Signed(const std::string& id, const std::string& body,
                                                                 int64_t ts = std::time(nullptr)) {
    auto secret = webhook::ParseSecret(kSecret);
    return {{"webhook-id", id},
            {"webhook-timestamp", std::to_string(ts)},
            {"webhook-signature", webhook::Sign(*secret, id, ts, body)}};
  }

  TempDir dir_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
  std::unique_ptr<server::Engine> engine_;
  const std::string listen_ = "127.0.0.1:0";
  int port_ = 0;
};

TEST_F(CallbackTest, SignedRepliesApplyAsTheDepartmentAndBadOnesChangeNothing) {
  const uint64_t mine = DispatchTo(0, "drainage");
  const uint64_t theirs = DispatchTo(1, "water-supply");
  const std::string path = "/v1/departments/drainage/replies";
  const std::string accept = R"({"request_id": "drain-acc-1", "actor": "somebody", "accept": {"case_id": ")" +
                             std::to_string(mine) + R"("}})";

  // Refused, each with a reason, before anything is applied.
  auto bad_sig = Signed("msg-1", accept);
  bad_sig[2].second = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  Answer a = Post(port_, path, accept, bad_sig);
  EXPECT_EQ(a.status, 401) << a.body;
  EXPECT_EQ(a.Field("field"), "webhook-signature") << a.body;
  a = Post(port_, path, accept, {});
  EXPECT_EQ(a.status, 401) << a.body;
  EXPECT_EQ(a.Field("field"), "webhook-id") << a.body;
  a = Post(port_, path, accept, Signed("msg-2", accept, std::time(nullptr) - 400));
  EXPECT_EQ(a.status, 401) << a.body;
  EXPECT_NE(a.Field("error").find("older"), std::string::npos) << a.body;
  a = Post(port_, path, accept + "tampered", Signed("msg-3", accept));
  EXPECT_EQ(a.status, 401) << a.body;
  const std::string junk = "this is not json";
  a = Post(port_, path, junk, Signed("msg-4", junk));
  EXPECT_EQ(a.status, 400) << a.body;
  EXPECT_EQ(a.Field("field"), "body");
  const std::string unknown = R"({"request_id": "x", "accept": {"case_id": "1"}, "colour": "blue"})";
  a = Post(port_, path, unknown, Signed("msg-5", unknown));
  EXPECT_EQ(a.status, 400) << a.body;
  const std::string huge = R"({"request_id": "x", "note": {"case_id": "1", "text": ")" + std::string(70'000, 'a') + "\"}}";
  a = Post(port_, path, huge, Signed("msg-6", huge));
  EXPECT_EQ(a.status, 413) << a.body;
  a = Post(port_, "/v1/departments/nobody/replies", accept, Signed("msg-7", accept));
  EXPECT_EQ(a.status, 404) << a.body;
  a = Post(port_, "/admin", accept, Signed("msg-8", accept));
  EXPECT_EQ(a.status, 404) << a.body;
  a = Post(port_, path, "", {}, bhttp::verb::get);
  EXPECT_EQ(a.status, 405) << a.body;
  EXPECT_EQ(Show(mine).state(), v1::DISPATCHED) << "a refused reply changed the case";

  // drainage answers for water-supply's case: the engine refuses it as if the case did not
  // exist (a department cannot probe other departments' ids).
  const std::string foreign = R"({"request_id": "drain-acc-theirs", "accept": {"case_id": ")" +
                              std::to_string(theirs) + R"("}})";
  a = Post(port_, path, foreign, Signed("msg-9", foreign));
  EXPECT_EQ(a.status, 404) << a.body;
  EXPECT_NE(a.body.find("does not exist"), std::string::npos) << a.body;
  EXPECT_EQ(Show(theirs).state(), v1::DISPATCHED);

  // Correctly signed: applied as drainage (not "somebody").
  a = Post(port_, path, accept, Signed("msg-10", accept));
  ASSERT_EQ(a.status, 200) << a.body;
  const v1::Case c = Show(mine);
  EXPECT_EQ(c.state(), v1::ACCEPTED);
  EXPECT_EQ(c.history(c.history_size() - 1).actor(), "drainage");
  // The department's redelivery (same id, new timestamp): the first result, applied once.
  a = Post(port_, path, accept, Signed("msg-10", accept, std::time(nullptr) + 1));
  EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.Field("duplicate"), "true") << a.body;
  EXPECT_EQ(Show(mine).history_size(), c.history_size());
}

}  // namespace
}  // namespace casebus

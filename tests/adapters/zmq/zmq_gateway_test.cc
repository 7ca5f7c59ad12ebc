// The zmq department gateway with a real Engine (on disk) and real CURVE DEALER clients on
// loopback: two departments each see only their own work orders; a client whose key is on no
// list gets nothing and changes nothing; a department's replies drive its case through accept
// and resolve (the operator verifies and closes); another department's reply for that case is
// refused; malformed frames get an error frame and change nothing.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <zmq.hpp>

#include "adapters/register_all.h"
#include "adapters/zmq/zmq_adapter.h"
#include "casebus/v1/gateway.pb.h"
#include "engine/server/engine.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus {
namespace {

using namespace casebus::server::testing;

// A department's gateway client: a CURVE DEALER.
class DeptClient {
 public:
  DeptClient(zmq::context_t& ctx, const std::string& endpoint, const std::string& server_public,
             const zmqgw::KeyPair& keys)
      : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::sndtimeo, 500);  // a refused client has no peer to send to
    socket_.set(zmq::sockopt::curve_serverkey, server_public);
    socket_.set(zmq::sockopt::curve_publickey, keys.public_key);
    socket_.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    socket_.connect(endpoint);
  }
  bool Send(const v1::GatewayFrame& f) { return SendRaw(f.SerializeAsString()); }
  // False when nothing took the message (no connection: a refused client).
  bool SendRaw(const std::string& bytes) {
    return socket_.send(zmq::buffer(bytes), zmq::send_flags::none).has_value();
  }
  void Hello() {
    v1::GatewayFrame f;
    f.mutable_hello()->set_client("test");
    Send(f);
  }
  std::optional<v1::GatewayFrame> Next(int timeout_ms = 3000) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0) return std::nullopt;
    zmq::message_t m;
    (void)socket_.recv(m, zmq::recv_flags::none);
    v1::GatewayFrame f;
    if (!f.ParseFromArray(m.data(), static_cast<int>(m.size()))) return std::nullopt;
    return f;
  }
  // The next frame of a kind, skipping others (work orders are acked as they pass).
  std::optional<v1::GatewayFrame> NextOf(v1::GatewayFrame::BodyCase kind, int timeout_ms = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      auto f = Next(200);
      if (!f) continue;
      if (f->has_work_order()) orders.push_back(f->work_order());
      if (f->body_case() == kind) return f;
    }
    return std::nullopt;
  }
  void Ack(const std::string& id) {
    v1::GatewayFrame f;
    f.mutable_ack()->set_id(id);
    Send(f);
  }
  v1::CommandResult Call(v1::Command c) {
    v1::GatewayFrame f;
    *f.mutable_command() = std::move(c);
    Send(f);
    auto r = NextOf(v1::GatewayFrame::kResult);
    EXPECT_TRUE(r.has_value()) << "no result frame";
    return r ? r->result() : v1::CommandResult();
  }
  std::vector<v1::WorkOrder> orders;

 private:
  zmq::socket_t socket_;
};

class ZmqGatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = zmqgw::NewKeyPair();
    ASSERT_TRUE(server);
    server_ = *server;
    drainage_ = *zmqgw::NewKeyPair();
    water_ = *zmqgw::NewKeyPair();
    stranger_ = *zmqgw::NewKeyPair();
    ::setenv("CASEBUS_TEST_GATEWAY_KEY", server_.secret_key.c_str(), 1);
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreeTcpPort());
    auto city = std::make_shared<v1::CityConfig>(*SampleCity());
    city->mutable_zmq_gateway()->set_endpoint(endpoint_);
    city->mutable_zmq_gateway()->set_secret_key_env("CASEBUS_TEST_GATEWAY_KEY");
    city->mutable_delivery()->set_timeout_ms(1000);
    city->mutable_delivery()->set_backoff_base_ms(50);
    city->mutable_delivery()->set_backoff_cap_ms(200);
    for (auto& d : *city->mutable_departments()) {
      if (d.id() == "drainage") d.mutable_adapter()->mutable_zmq()->add_client_keys(drainage_.public_key);
      if (d.id() == "water-supply") d.mutable_adapter()->mutable_zmq()->add_client_keys(water_.public_key);
    }
    adapters::RegisterAllAdapters(registry_);
    engine_ = StartedEngine(city, dir_.path(), clock_, registry_);
    ASSERT_NE(engine_, nullptr);
  }
  void TearDown() override {
    if (engine_) engine_->Stop();
  }
  static int FreeTcpPort() {
    zmq::context_t c;
    zmq::socket_t s(c, zmq::socket_type::router);
    s.bind("tcp://127.0.0.1:*");
    const std::string ep = s.get(zmq::sockopt::last_endpoint);
    return std::stoi(ep.substr(ep.rfind(':') + 1));
  }
  v1::CommandResult Ok(const v1::Command& c) {
    v1::Reply r = engine_->Call(Req({c}));
    EXPECT_EQ(r.results(0).code(), v1::OK) << c.request_id() << ": " << r.results(0).message();
    return r.results(0);
  }
  // Reports, registers and dispatches a case in grid n to `department`.
  v1::CommandResult DispatchTo(int n, const std::string& department) {
    const std::string s = std::to_string(n);
    const uint64_t id = Ok(Report("rep-" + s, Grid(n))).case_id();
    Ok(Register("reg-" + s, id));
    v1::Command d = Dispatch("dis-" + s, id);
    d.mutable_dispatch()->set_department(department);
    return Ok(d);
  }
  v1::Case Show(uint64_t id) { return engine_->Call(ShowReq(id)).query().found(); }

  TempDir dir_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
  std::unique_ptr<server::Engine> engine_;
  zmqgw::KeyPair server_, drainage_, water_, stranger_;
  std::string endpoint_;
  zmq::context_t ctx_;
};

TEST_F(ZmqGatewayTest, EachDepartmentSeesOnlyItsOwnOrdersAndDrivesItsCase) {
  DeptClient drainage(ctx_, endpoint_, server_.public_key, drainage_);
  DeptClient water(ctx_, endpoint_, server_.public_key, water_);
  DeptClient stranger(ctx_, endpoint_, server_.public_key, stranger_);
  drainage.Hello();
  water.Hello();
  stranger.Hello();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const v1::CommandResult d1 = DispatchTo(0, "drainage");
  const v1::CommandResult d2 = DispatchTo(1, "water-supply");

  auto o1 = drainage.NextOf(v1::GatewayFrame::kWorkOrder);
  ASSERT_TRUE(o1) << "drainage got no work order";
  EXPECT_EQ(o1->work_order().id(), d1.work_order_id());
  drainage.Ack(o1->work_order().id());
  auto o2 = water.NextOf(v1::GatewayFrame::kWorkOrder);
  ASSERT_TRUE(o2) << "water-supply got no work order";
  EXPECT_EQ(o2->work_order().id(), d2.work_order_id());
  water.Ack(o2->work_order().id());
  EXPECT_FALSE(stranger.Next(500).has_value()) << "a client on no list received something";
  ASSERT_TRUE(WaitFor([&] { return engine_->Call(StatusReq()).query().status().outbox_pending() == 0; }));
  // Neither saw the other's order (an unacked order would be pushed again: give it a moment).
  EXPECT_FALSE(drainage.Next(300).has_value());
  EXPECT_FALSE(water.Next(300).has_value());
  for (const auto& o : drainage.orders) EXPECT_EQ(o.department(), "drainage");
  for (const auto& o : water.orders) EXPECT_EQ(o.department(), "water-supply");

  // The stranger's command is never taken (its connection was refused by ZAP).
  v1::Command steal = Accept("stranger-accept", d1.case_id(), "drainage");
  v1::GatewayFrame f;
  *f.mutable_command() = steal;
  EXPECT_FALSE(stranger.Send(f)) << "the refused client has a connection";
  EXPECT_FALSE(stranger.Next(500).has_value());
  EXPECT_EQ(Show(d1.case_id()).state(), v1::DISPATCHED);

  // water-supply replies for drainage's case: refused by the core (its own cases only), as
  // if the case did not exist, so ids cannot be probed.
  v1::CommandResult foreign = water.Call(Accept("water-accept-1", d1.case_id(), "whatever"));
  EXPECT_EQ(foreign.code(), v1::NOT_FOUND) << foreign.message();
  EXPECT_NE(foreign.message().find("does not exist"), std::string::npos) << foreign.message();
  EXPECT_EQ(Show(d1.case_id()).state(), v1::DISPATCHED);

  // drainage drives its case: accept, resolve (the actor it writes does not matter).
  v1::CommandResult acc = drainage.Call(Accept("drain-accept-1", d1.case_id(), "someone-else"));
  EXPECT_EQ(acc.code(), v1::OK) << acc.message();
  EXPECT_EQ(acc.request_id(), "drain-accept-1");
  const v1::Case accepted = Show(d1.case_id());
  EXPECT_EQ(accepted.state(), v1::ACCEPTED);
  EXPECT_EQ(accepted.history(accepted.history_size() - 1).actor(), "drainage");
  v1::CommandResult res = drainage.Call(Resolve("drain-resolve-1", d1.case_id(), "drainage"));
  EXPECT_EQ(res.code(), v1::OK) << res.message();
  // The same reply again is a retry: the original result, applied once.
  v1::CommandResult again = drainage.Call(Resolve("drain-resolve-1", d1.case_id(), "drainage"));
  EXPECT_TRUE(again.duplicate());
  // The operator verifies and closes.
  Ok(Verify("op-verify-1", d1.case_id()));
  Ok(Close("op-close-1", d1.case_id()));
  EXPECT_EQ(Show(d1.case_id()).state(), v1::CLOSED);
}

TEST_F(ZmqGatewayTest, MalformedFramesGetAReasonAndChangeNothing) {
  DeptClient drainage(ctx_, endpoint_, server_.public_key, drainage_);
  drainage.Hello();
  const v1::CommandResult d1 = DispatchTo(0, "drainage");
  auto expect_error = [&](const std::string& bytes, const std::string& says) {
    drainage.SendRaw(bytes);
    auto e = drainage.NextOf(v1::GatewayFrame::kError);
    ASSERT_TRUE(e) << "no error frame for " << says;
    EXPECT_NE(e->error().reason().find(says), std::string::npos) << e->error().reason();
  };
  expect_error(std::string("\xff\xff\xff\xff garbage", 13), "not a GatewayFrame");
  expect_error("", "empty frame");
  v1::GatewayFrame unknown;
  unknown.mutable_hello()->set_client("x");
  std::string bytes = unknown.SerializeAsString();
  bytes += std::string("\xf8\x07\x01", 3);  // field 127, varint 1: unknown to this engine
  expect_error(bytes, "unknown field");
  v1::GatewayFrame no_id;
  no_id.mutable_command()->mutable_accept()->set_case_id(d1.case_id());
  expect_error(no_id.SerializeAsString(), "request_id");
  v1::GatewayFrame wrong_way;
  wrong_way.mutable_result()->set_code(v1::OK);
  expect_error(wrong_way.SerializeAsString(), "hello, ack or command");
  EXPECT_EQ(Show(d1.case_id()).state(), v1::DISPATCHED);
  // Still served afterwards.
  v1::CommandResult acc = drainage.Call(Accept("drain-accept-after", d1.case_id(), "drainage"));
  EXPECT_EQ(acc.code(), v1::OK) << acc.message();
}

TEST(ZmqKeys, KeyPairsAreZ85AndThePublicKeyDerivesFromTheSecret) {
  auto k = zmqgw::NewKeyPair();
  ASSERT_TRUE(k);
  EXPECT_EQ(k->public_key.size(), 40u);
  EXPECT_EQ(k->secret_key.size(), 40u);
  EXPECT_EQ(*zmqgw::PublicKeyOf(k->secret_key), k->public_key);
  EXPECT_FALSE(zmqgw::PublicKeyOf("short"));
}

}  // namespace
}  // namespace casebus

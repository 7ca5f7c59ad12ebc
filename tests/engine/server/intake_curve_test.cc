// The ZeroMQ intake as a CURVE server: real sockets on 127.0.0.1, real key pairs. Only the
// access file's client keys get through the handshake; each one acts as its principal, under
// the same policy as the HTTP API; a client cannot claim a principal; a reload that drops a
// key shuts that client out.

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "adapters/register_all.h"
#include "engine/auth/access.h"
#include "engine/server/intake.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus::server {
namespace {

using namespace casebus::server::testing;

struct KeyPair {
  std::string pub, secret;
};
KeyPair NewKeys() {
  char pub[41], secret[41];
  EXPECT_EQ(zmq_curve_keypair(pub, secret), 0);
  return {pub, secret};
}

class IntakeCurveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    adapters::RegisterAllAdapters(registry_);
    server_ = NewKeys();
    operator_ = NewKeys();
    department_ = NewKeys();
    stranger_ = NewKeys();
    std::ofstream(dir_.path() + "/intake.key") << server_.secret << "\n";
    WriteAccess(true);
    auto loaded = auth::Access::LoadFile(dir_.path() + "/access.yaml", *SampleCity());
    ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
    access_ = *loaded;

    EngineOptions options;
    options.data_dir = dir_.path() + "/data";
    options.run_dispatcher = false;
    options.sync = false;
    auto e = Engine::Open(SampleCity(), options, clock_, registry_);
    ASSERT_TRUE(e.has_value()) << e.error().ToString();
    engine_ = std::move(*e);
    engine_->Start();
    intake_ = std::make_unique<Intake>(*engine_, SampleCity()->intake());
    ASSERT_TRUE(intake_->EnableCurve([this] {
                  std::lock_guard lock(mu_);
                  return access_;
                }).ok());
    auto bound = intake_->Bind("tcp://127.0.0.1:*");
    ASSERT_TRUE(bound.has_value()) << bound.error().ToString();
    endpoint_ = *bound;
    thread_ = std::thread([this] { intake_->Run(stop_); });
  }

  void TearDown() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    intake_.reset();
    engine_.reset();
  }

  void WriteAccess(bool with_operator) {
    std::ofstream out(dir_.path() + "/access.yaml");
    out << "curve_secret_key_file: intake.key\ncurve_clients:\n";
    if (with_operator) out << "  - {name: gw-ops, role: operator, public_key: \"" << operator_.pub << "\"}\n";
    out << "  - {name: gw-water, role: department, departments: [water-supply], public_key: \"" << department_.pub
        << "\"}\n";
  }

  zmq::socket_t Client(const KeyPair& keys) {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvtimeo, 3000);
    s.set(zmq::sockopt::curve_serverkey, server_.pub);
    s.set(zmq::sockopt::curve_publickey, keys.pub);
    s.set(zmq::sockopt::curve_secretkey, keys.secret);
    s.connect(endpoint_);
    return s;
  }

  // nullopt: no reply within the timeout (a refused handshake never delivers anything).
  std::optional<v1::Reply> Exchange(zmq::socket_t& s, const v1::Request& r) {
    s.send(zmq::buffer(r.SerializeAsString()), zmq::send_flags::dontwait);
    zmq::message_t m;
    if (!s.recv(m)) return std::nullopt;
    v1::Reply reply;
    EXPECT_TRUE(reply.ParseFromArray(m.data(), static_cast<int>(m.size())));
    return reply;
  }

  TempDir dir_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
  KeyPair server_, operator_, department_, stranger_;
  std::mutex mu_;
  std::shared_ptr<const auth::Access> access_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Intake> intake_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  zmq::context_t ctx_{1};
};

TEST_F(IntakeCurveTest, AllowedKeysActAsTheirPrincipals) {
  zmq::socket_t ops = Client(operator_);
  auto r = Exchange(ops, Req({Report("curve-1", Grid(1))}));
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->results_size(), 1) << r->DebugString();
  ASSERT_EQ(r->results(0).code(), v1::OK) << r->results(0).message();
  const uint64_t id = r->results(0).case_id();
  // The journal names the key's principal as the actor, whatever the frame said.
  v1::Request show = ShowReq(id);
  auto shown = Exchange(ops, show);
  ASSERT_TRUE(shown.has_value());
  ASSERT_EQ(shown->query().code(), v1::OK) << shown->query().message();
  EXPECT_EQ(shown->query().found().history(0).actor(), "gw-ops");
  // An operator may not close; the department may not read a case that is not its own.
  v1::Command close = Close("curve-close", id);
  r = Exchange(ops, Req({close}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->results(0).code(), v1::PERMISSION_DENIED) << r->results(0).message();
  zmq::socket_t water = Client(department_);
  auto foreign = Exchange(water, show);
  ASSERT_TRUE(foreign.has_value());
  EXPECT_EQ(foreign->query().code(), v1::NOT_FOUND);
  // Dispatched to water-supply, it is the department's to accept.
  v1::Command reg = Register("curve-reg", id), dis = Dispatch("curve-dis", id);
  dis.mutable_dispatch()->set_department("water-supply");
  r = Exchange(ops, Req({reg, dis}));
  ASSERT_TRUE(r.has_value());
  for (const auto& res : r->results()) ASSERT_EQ(res.code(), v1::OK) << res.message();
  r = Exchange(water, Req({Accept("curve-acc", id, "ignored-actor")}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->results(0).code(), v1::OK) << r->results(0).message();
}

TEST_F(IntakeCurveTest, UnknownKeysNeverGetThrough) {
  zmq::socket_t s = Client(stranger_);
  EXPECT_FALSE(Exchange(s, Req({Report("stranger-1", Grid(2))})).has_value());
  // Nothing of it reached the engine.
  v1::Reply status = engine_->Call(StatusReq());
  EXPECT_EQ(status.query().status().cases(), 0u);
}

TEST_F(IntakeCurveTest, AClientCannotClaimAPrincipal) {
  zmq::socket_t water = Client(department_);
  v1::Command c = Report("claim-1", Grid(3));
  c.mutable_caller()->set_name("gw-ops");
  c.mutable_caller()->set_role(v1::DISPATCHER);
  auto r = Exchange(water, Req({c}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error().code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(r->error().field(), "commands[0].caller");
}

TEST_F(IntakeCurveTest, AReloadThatDropsAKeyShutsItsClientOut) {
  zmq::socket_t ops = Client(operator_);
  auto r = Exchange(ops, Req({Report("reload-1", Grid(4))}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->results(0).code(), v1::OK);
  WriteAccess(false);
  auto reloaded = auth::Access::LoadFile(dir_.path() + "/access.yaml", *SampleCity());
  ASSERT_TRUE(reloaded.has_value()) << reloaded.error().ToString();
  {
    std::lock_guard lock(mu_);
    access_ = *reloaded;
  }
  // The open connection's frames are refused; a new handshake fails.
  r = Exchange(ops, Req({Report("reload-2", Grid(5))}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error().code(), v1::PERMISSION_DENIED);
  zmq::socket_t again = Client(operator_);
  EXPECT_FALSE(Exchange(again, Req({Report("reload-3", Grid(6))})).has_value());
}

}  // namespace
}  // namespace casebus::server

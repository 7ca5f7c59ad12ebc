// engine/server Intake over real ZeroMQ on loopback: Run() on its own thread in front of a
// started Engine, a DEALER (or REQ) client in the test. Hostile frames get an error Reply and
// the server goes on answering.

#include "engine/server/intake.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "adapters/register_all.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus::server {
namespace {

using namespace casebus::server::testing;

// Field 99, varint 1: a tag no casebus.v1 message has.
const std::string kUnknownField99("\x98\x06\x01", 3);

class IntakeTest : public ::testing::Test {
 protected:
  IntakeTest() { adapters::RegisterAllAdapters(registry_); }
  ~IntakeTest() override { StopServer(); }

  void StartServer(const std::function<void(v1::IntakeLimits&)>& edit = [](v1::IntakeLimits&) {}) {
    auto city = SampleCityWith(edit);
    EngineOptions options;
    options.data_dir = dir_.path();
    options.run_dispatcher = false;
    auto e = Engine::Open(city, options, clock_, registry_);
    ASSERT_TRUE(e.has_value()) << e.error().ToString();
    engine_ = std::move(*e);
    engine_->Start();
    intake_ = std::make_unique<Intake>(*engine_, city->intake());
    auto bound = intake_->Bind("tcp://127.0.0.1:*");
    ASSERT_TRUE(bound.has_value()) << bound.error().ToString();
    endpoint_ = *bound;
    thread_ = std::thread([this] { intake_->Run(stop_); });
    client_ = Connect(zmq::socket_type::dealer);
  }

  void StopServer() {
    client_.close();
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    intake_.reset();
    engine_.reset();
  }

  zmq::socket_t Connect(zmq::socket_type type) {
    zmq::socket_t s(ctx_, type);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvtimeo, 5000);
    s.connect(endpoint_);
    return s;
  }

  void SendBytes(const std::string& bytes) { client_.send(zmq::buffer(bytes), zmq::send_flags::none); }
  void Send(const v1::Request& r) { SendBytes(r.SerializeAsString()); }

  // The next reply on the DEALER: exactly one frame holding a Reply.
  std::optional<v1::Reply> Receive() {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(client_, std::back_inserter(parts))) {
      ADD_FAILURE() << "no reply within 5 s";
      return std::nullopt;
    }
    EXPECT_EQ(parts.size(), 1u);
    v1::Reply r;
    EXPECT_TRUE(r.ParseFromArray(parts.back().data(), static_cast<int>(parts.back().size())));
    EXPECT_EQ(r.version(), 1u);
    return r;
  }
  v1::Reply Exchange(const v1::Request& r) {
    Send(r);
    return Receive().value_or(v1::Reply());
  }
  v1::Reply ExchangeBytes(const std::string& bytes) {
    SendBytes(bytes);
    return Receive().value_or(v1::Reply());
  }

  // A round trip that must succeed: the server is still serving.
  void ExpectServing(const std::string& rid, int grid) {
    v1::Reply r = Exchange(Req({Report(rid, Grid(grid))}));
    ASSERT_EQ(r.results_size(), 1) << r.DebugString();
    EXPECT_EQ(r.results(0).code(), v1::OK) << r.results(0).message();
    EXPECT_FALSE(r.has_error());
  }

  TempDir dir_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Intake> intake_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  zmq::context_t ctx_{1};
  zmq::socket_t client_;
};

TEST_F(IntakeTest, ValidRequestGetsOkResults) {
  StartServer();
  EXPECT_EQ(endpoint_.rfind("tcp://127.0.0.1:", 0), 0u) << endpoint_;
  v1::Reply r = Exchange(Req({Report("z1", Grid(0)), Register("z2", 1)}));
  ASSERT_EQ(r.results_size(), 2) << r.DebugString();
  EXPECT_FALSE(r.has_error());
  EXPECT_EQ(r.results(0).code(), v1::OK) << r.results(0).message();
  EXPECT_EQ(r.results(0).request_id(), "z1");
  EXPECT_EQ(r.results(0).case_id(), 1u);
  EXPECT_EQ(r.results(1).code(), v1::OK) << r.results(1).message();
  v1::Reply shown = Exchange(ShowReq(1));
  EXPECT_EQ(shown.query().code(), v1::OK);
  EXPECT_EQ(shown.query().found().state(), v1::REGISTERED);
}

TEST_F(IntakeTest, ReqClientGetsItsReplyThroughTheEnvelope) {
  StartServer();
  zmq::socket_t req = Connect(zmq::socket_type::req);
  req.send(zmq::buffer(Req({Report("req-1", Grid(0))}).SerializeAsString()), zmq::send_flags::none);
  zmq::message_t msg;
  ASSERT_TRUE(req.recv(msg, zmq::recv_flags::none)) << "no reply within 5 s";
  EXPECT_FALSE(msg.more());
  v1::Reply r;
  ASSERT_TRUE(r.ParseFromArray(msg.data(), static_cast<int>(msg.size())));
  ASSERT_EQ(r.results_size(), 1);
  EXPECT_EQ(r.results(0).code(), v1::OK);
  // REQ's strict send/recv cycle works for a refusal too.
  req.send(zmq::str_buffer("\x0f"), zmq::send_flags::none);
  ASSERT_TRUE(req.recv(msg, zmq::recv_flags::none));
  ASSERT_TRUE(r.ParseFromArray(msg.data(), static_cast<int>(msg.size())));
  EXPECT_EQ(r.error().code(), v1::INVALID_ARGUMENT);
}

TEST_F(IntakeTest, OversizedFrameIsTooLargeAndTheServerGoesOn) {
  StartServer([](v1::IntakeLimits& l) { l.set_max_frame_bytes(4096); });
  v1::Command note = Cmd("n1");
  note.mutable_note()->set_case_id(1);
  note.mutable_note()->set_text(std::string(5000, 'x'));
  v1::Reply r = Exchange(Req({note}));
  EXPECT_EQ(r.error().code(), v1::TOO_LARGE) << r.DebugString();
  EXPECT_NE(r.error().message().find("4096"), std::string::npos) << r.error().message();
  EXPECT_EQ(r.results_size(), 0);
  ExpectServing("after-big", 0);
}

TEST_F(IntakeTest, GarbageBytesAreInvalidArgument) {
  StartServer();
  for (const std::string& junk :
       {std::string("\x0f"), std::string(11, '\xff'), std::string("\x12\x10" "abc"),
        std::string("\x08\x01\x12\x05\x0a\x03", 6)}) {
    v1::Reply r = ExchangeBytes(junk);
    EXPECT_EQ(r.error().code(), v1::INVALID_ARGUMENT) << r.DebugString();
    EXPECT_EQ(r.results_size(), 0);
  }
  ExpectServing("after-junk", 0);
}

TEST_F(IntakeTest, OtherVersionsAreRefused) {
  StartServer();
  for (uint32_t version : {0u, 2u}) {
    v1::Request req = Req({Report("v", Grid(0))});
    req.set_version(version);
    v1::Reply r = Exchange(req);
    EXPECT_EQ(r.error().code(), v1::UNSUPPORTED_VERSION) << r.DebugString();
    EXPECT_EQ(r.error().field(), "version");
    EXPECT_EQ(r.results_size(), 0);
  }
  // Nothing was applied: the same request id is new at version 1.
  v1::Reply ok = Exchange(Req({Report("v", Grid(0))}));
  EXPECT_EQ(ok.results(0).code(), v1::OK);
  EXPECT_FALSE(ok.results(0).duplicate());
}

TEST_F(IntakeTest, UnknownFieldInACommandIsNamed) {
  StartServer();
  v1::Command cmd;
  ASSERT_TRUE(cmd.ParseFromString(Report("u1", Grid(0)).SerializeAsString() + kUnknownField99));
  v1::Request req = Req({Report("u0", Grid(1)), cmd});
  v1::Reply r = Exchange(req);
  EXPECT_EQ(r.error().code(), v1::INVALID_ARGUMENT) << r.DebugString();
  EXPECT_EQ(r.error().field(), "commands[1]");
  EXPECT_NE(r.error().message().find("99"), std::string::npos) << r.error().message();
  EXPECT_EQ(r.results_size(), 0);
  // The whole frame was refused, its valid command too.
  EXPECT_EQ(Exchange(ShowReq(1)).query().code(), v1::NOT_FOUND);
}

TEST_F(IntakeTest, UnknownFieldDeepInsideIsNamed) {
  StartServer();
  v1::Command cmd = Report("u2", Grid(0));
  v1::Place place;
  ASSERT_TRUE(place.ParseFromString(cmd.report().place().SerializeAsString() + kUnknownField99));
  *cmd.mutable_report()->mutable_place() = place;
  v1::Reply r = Exchange(Req({cmd}));
  EXPECT_EQ(r.error().code(), v1::INVALID_ARGUMENT) << r.DebugString();
  EXPECT_EQ(r.error().field(), "commands[0].report.place");
}

TEST_F(IntakeTest, UnknownFieldOnTheRequestIsRefused) {
  StartServer();
  v1::Reply r = ExchangeBytes(Req({Report("u3", Grid(0))}).SerializeAsString() + kUnknownField99);
  EXPECT_EQ(r.error().code(), v1::INVALID_ARGUMENT) << r.DebugString();
  EXPECT_NE(r.error().message().find("unknown field number 99"), std::string::npos)
      << r.error().message();
}

TEST_F(IntakeTest, EmptyRequestIsInvalid) {
  StartServer();
  v1::Request empty;
  empty.set_version(1);
  v1::Reply r = Exchange(empty);
  EXPECT_EQ(r.error().code(), v1::INVALID_ARGUMENT) << r.DebugString();
}

TEST_F(IntakeTest, TooManyCommandsInOneFrameIsTooLarge) {
  StartServer([](v1::IntakeLimits& l) { l.set_max_commands_per_frame(10); });
  v1::Request req = Req({});
  for (int i = 0; i < 11; ++i) *req.add_commands() = Report("m" + std::to_string(i), Grid(i));
  v1::Reply r = Exchange(req);
  EXPECT_EQ(r.error().code(), v1::TOO_LARGE) << r.DebugString();
  EXPECT_EQ(r.error().field(), "commands");
  req.mutable_commands()->RemoveLast();
  r = Exchange(req);
  ASSERT_EQ(r.results_size(), 10) << r.DebugString();
  for (const auto& x : r.results()) EXPECT_EQ(x.code(), v1::OK) << x.message();
}

TEST_F(IntakeTest, MultiFrameMessageThatIsNotAReqEnvelopeIsRefused) {
  StartServer();
  const std::string payload = Req({Report("mf", Grid(0))}).SerializeAsString();
  for (int frames : {2, 3}) {
    std::vector<zmq::const_buffer> parts;
    const std::string lead = "not-empty";
    for (int i = 0; i + 1 < frames; ++i) parts.push_back(zmq::buffer(lead));
    parts.push_back(zmq::buffer(payload));
    ASSERT_TRUE(zmq::send_multipart(client_, parts));
    v1::Reply r = Receive().value_or(v1::Reply());
    EXPECT_EQ(r.error().code(), v1::INVALID_ARGUMENT) << frames << " frames: " << r.DebugString();
    EXPECT_NE(r.error().message().find("frames"), std::string::npos) << r.error().message();
  }
  ExpectServing("after-frames", 1);
  EXPECT_EQ(Exchange(ShowReq(2)).query().code(), v1::NOT_FOUND);  // "mf" was never applied
}

TEST_F(IntakeTest, BatchFrameGetsEveryResultInOrder) {
  StartServer();
  v1::Request req = Req({});
  for (int i = 0; i < 50; ++i) *req.add_commands() = Report("b" + std::to_string(i), Grid(i));
  v1::Reply r = Exchange(req);
  ASSERT_EQ(r.results_size(), 50) << r.DebugString();
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(r.results(i).request_id(), "b" + std::to_string(i));
    EXPECT_EQ(r.results(i).code(), v1::OK) << r.results(i).message();
    EXPECT_EQ(r.results(i).case_id(), static_cast<uint64_t>(i + 1));
  }
}

TEST_F(IntakeTest, FloodPastTheQueueGetsBusyNeverSilence) {
  StartServer([](v1::IntakeLimits& l) {
    l.set_queue_capacity(8);
    l.set_max_batch(1);
  });
  constexpr int kN = 200;
  for (int i = 0; i < kN; ++i) Send(Req({Report("f" + std::to_string(i), Grid(i))}));
  std::map<std::string, v1::Code> codes;
  for (int i = 0; i < kN; ++i) {
    auto r = Receive();
    ASSERT_TRUE(r.has_value()) << "reply " << i << " of " << kN << " missing";
    ASSERT_EQ(r->results_size(), 1) << r->DebugString();
    const auto& x = r->results(0);
    EXPECT_TRUE(x.code() == v1::OK || x.code() == v1::BUSY) << x.DebugString();
    EXPECT_TRUE(codes.emplace(x.request_id(), x.code()).second) << "two replies for " << x.request_id();
  }
  EXPECT_EQ(codes.size(), static_cast<size_t>(kN));
  int busy = 0;
  for (const auto& [rid, code] : codes) busy += code == v1::BUSY;
  EXPECT_GT(busy, 0) << "a queue of 8 took " << kN << " frames sent at once";
  EXPECT_LT(busy, kN);
  // BUSY means "retry with the same request_id": each retry is applied now, exactly once.
  for (const auto& [rid, code] : codes) {
    if (code != v1::BUSY) continue;
    v1::Reply again = Exchange(Req({Report(rid, Grid(std::stoi(rid.substr(1))))}));
    ASSERT_EQ(again.results_size(), 1);
    EXPECT_EQ(again.results(0).code(), v1::OK) << rid << ": " << again.results(0).message();
    EXPECT_FALSE(again.results(0).duplicate()) << rid;
  }
  ExpectServing("after-flood", kN + 1);
}

TEST_F(IntakeTest, FrameLargerThanTheWholeQueueIsNotBusyForever) {
  StartServer([](v1::IntakeLimits& l) { l.set_queue_capacity(8); });  // 1,000 per frame allowed
  v1::Request req = Req({});
  for (int i = 0; i < 9; ++i) *req.add_commands() = Report("q" + std::to_string(i), Grid(i));
  for (int attempt = 0; attempt < 3; ++attempt) {
    v1::Reply r = Exchange(req);  // an idle server: nothing else is queued
    const bool busy = r.results_size() > 0 && r.results(0).code() == v1::BUSY;
    EXPECT_FALSE(busy) << "attempt " << attempt << ": BUSY although the queue is empty";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST_F(IntakeTest, StopEndsRunPromptly) {
  StartServer();
  ExpectServing("before-stop", 0);
  const auto t0 = std::chrono::steady_clock::now();
  stop_ = true;
  thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_TRUE(engine_->stopping());  // Run stopped the engine behind it
  // What was acknowledged is on disk: a new engine on the same directory has the case.
  intake_.reset();
  engine_.reset();
  EngineOptions options;
  options.data_dir = dir_.path();
  auto e = Engine::Open(SampleCity(), options, clock_, registry_);
  ASSERT_TRUE(e.has_value()) << e.error().ToString();
  (*e)->Start();
  EXPECT_EQ((*e)->Call(ShowReq(1)).query().found().state(), v1::REPORTED);
}

}  // namespace
}  // namespace casebus::server

// kill -9 of the engine during delivery (issue 4). A real `casebus serve` whose 45
// departments post to tests/support/flaky_webhook.py (seeded: 200s, 500s, resets, drops after
// processing) takes report → register → dispatch from concurrent ZeroMQ clients and is
// SIGKILLed at random moments, 20 times. Clients retry every unanswered command with the same
// request_id, so every dispatch that was committed is eventually acknowledged with its work
// order id.
//
// Afterwards, from the receiver's log: every acknowledged work order was answered 200 at
// least once, at its department's URL; nothing else arrived (a duplicate is only ever a
// redelivery of an acknowledged id); every copy of one id is byte-identical and correctly
// signed; and the engine's outbox drains to 0.

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "adapters/webhook/signature.h"
#include "engine/cli/client.h"
#include "engine/config/loader.h"
#include "tests/integration/server_process.h"
#include "tests/integration/webhook_city.h"

namespace casebus {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::ServerProcess;

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";  // test-only key
constexpr const char* kSample = CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml";

std::string Decode64(const std::string& in) {
  std::string out;
  int val = 0, bits = -8;
  for (unsigned char c : in) {
    const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* p = std::strchr(table, c);
    if (!p || !c) break;
    val = (val << 6) | static_cast<int>(p - table);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

struct Dispatched {
  uint64_t case_id = 0;
  std::string department, work_order;
};

class DeliveryKill9Test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/casebus-dkill9-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ + "/secret") << kSecret << "\n";
    auto cfg = config::LoadCityConfigFile(kSample);
    ASSERT_TRUE(cfg) << cfg.error().message();
    for (const auto& c : (*cfg)->categories())
      if (c.has_limits() || c.conditions_size() > 0) categories_.push_back(c.code());
    for (const auto& g : (*cfg)->grids()) grids_.push_back(g.code());
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreePort());
  }
  void TearDown() override {
    if (receiver_) receiver_->Terminate();
    if (!HasFailure()) fs::remove_all(dir_);
    else std::fprintf(stderr, "kept %s for inspection\n", dir_.c_str());
  }

  std::unique_ptr<ServerProcess> NewServer() {
    return std::make_unique<ServerProcess>(
        CASEBUS_BIN,
        std::vector<std::string>{"serve", "--config", dir_ + "/city.yaml", "--data", dir_ + "/data",
                                 "--endpoint", endpoint_, "--endpoint-file", dir_ + "/endpoint", "--http", "127.0.0.1:0"},
        dir_ + "/server.log");
  }

  // report → register → dispatch for case after case, retrying each unanswered command with
  // its request id until it is acknowledged.
  void ClientLoop(int k) {
    auto client = std::make_unique<cli::Client>(endpoint_);
    while (!stop_creating_.load()) {
      const uint64_t n = next_.fetch_add(1);
      if (n >= categories_.size() * grids_.size()) return;
      const std::string rid = "c" + std::to_string(k) + "-" + std::to_string(n);
      Dispatched d;
      for (int step = 0; step < 3;) {
        v1::Request req;
        req.set_version(1);
        v1::Command* c = req.add_commands();
        c->set_request_id(rid + "-" + std::to_string(step));
        c->set_actor("dkill9");
        if (step == 0) {
          auto* r = c->mutable_report();
          r->set_category(categories_[n % categories_.size()]);
          r->mutable_place()->set_grid(grids_[(n / categories_.size()) % grids_.size()]);
          r->set_source(v1::INSPECTOR);
          r->set_description(rid);
        } else if (step == 1) {
          c->mutable_register_()->set_case_id(d.case_id);
        } else {
          c->mutable_dispatch()->set_case_id(d.case_id);
        }
        auto reply = client->Call(req, std::chrono::milliseconds(1500));
        if (!reply) {
          client = std::make_unique<cli::Client>(endpoint_);
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        ASSERT_EQ(reply->results_size(), 1);
        const auto& r = reply->results(0);
        if (r.code() == v1::BUSY || r.code() == v1::UNAVAILABLE) continue;
        ASSERT_EQ(r.code(), v1::OK) << rid << " step " << step << ": " << r.message();
        ASSERT_FALSE(r.merged()) << rid;
        if (step == 0) d.case_id = r.case_id();
        if (step == 2) d.department = r.department(), d.work_order = r.work_order_id();
        ++step;
      }
      std::lock_guard lock(mu_);
      dispatched_.push_back(d);
    }
  }

  uint64_t Pending(cli::Client& client) {
    v1::Request status;
    status.set_version(1);
    status.mutable_query()->mutable_status();
    auto st = client.Call(status, std::chrono::milliseconds(3000));
    return st ? st->query().status().outbox_pending() : ~0ull;
  }

  std::string dir_, endpoint_;
  std::vector<std::string> categories_, grids_;
  std::unique_ptr<ServerProcess> receiver_;
  std::atomic<bool> stop_creating_{false};
  std::atomic<uint64_t> next_{0};
  std::mutex mu_;
  std::vector<Dispatched> dispatched_;
};

TEST_F(DeliveryKill9Test, NoWorkOrderIsLostAndDuplicatesAreRedeliveries) {
  receiver_ = std::make_unique<ServerProcess>(
      "/usr/bin/python3",
      std::vector<std::string>{CASEBUS_SOURCE_DIR "/tests/support/flaky_webhook.py", "--port-file",
                               dir_ + "/port", "--log", dir_ + "/requests.jsonl", "--seed", "99",
                               "--poison-every", "2147483647", "--slow-s", "0.7"},
      dir_ + "/receiver.log");
  ASSERT_TRUE(receiver_->Start(dir_ + "/port"));
  int port = 0;
  std::ifstream(dir_ + "/port") >> port;
  ASSERT_GT(port, 0);
  std::ofstream(dir_ + "/city.yaml") << testing::WebhookCityYaml(
      kSample, port, dir_ + "/secret",
      "delivery:\n  backoff_base_ms: 20\n  backoff_cap_ms: 400\n  timeout_ms: 500\n"
      "  breaker_failures: 5\n  breaker_cooldown_ms: 300\n  breaker_cooldown_cap_ms: 1000\n");

  const char* env = std::getenv("CASEBUS_KILL9_CYCLES");
  const int cycles = env ? std::atoi(env) : 20;
  std::mt19937 rng(static_cast<unsigned>(std::random_device{}()));
  const unsigned seed = rng();
  std::printf("delivery kill9: %d cycles, seed %u\n", cycles, seed);
  rng.seed(seed);
  std::vector<std::thread> clients;
  for (int k = 0; k < 3; ++k) clients.emplace_back([this, k] { ClientLoop(k); });
  for (int cycle = 0; cycle < cycles; ++cycle) {
    auto server = NewServer();
    ASSERT_TRUE(server->Start(dir_ + "/endpoint")) << "cycle " << cycle << ": server did not start";
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(300, 1500)(rng)));
    server->Kill();
  }
  auto server = NewServer();
  ASSERT_TRUE(server->Start(dir_ + "/endpoint"));
  stop_creating_.store(true);
  for (auto& t : clients) t.join();
  cli::Client client(endpoint_);
  // The backlog drains at the receiver's pace (slow answers, resets, 429s, and the breaker's
  // cooldowns after them), and its size follows how many cases the cycles above got in, which
  // grows with the engine's speed and shrinks with the machine's load. So wait while it keeps
  // shrinking: a lane that stops moving for a minute fails the test, a slow one does not (a
  // fixed two minutes once failed with 35 orders still moving through the breaker's cycles).
  using Clock = std::chrono::steady_clock;
  const auto give_up = Clock::now() + std::chrono::minutes(5);
  auto progressed = Clock::now();
  uint64_t pending = Pending(client), least = pending;
  while (pending != 0 && Clock::now() < give_up && Clock::now() - progressed < std::chrono::seconds(60)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    pending = Pending(client);
    if (pending < least) {
      least = pending;
      progressed = Clock::now();
    }
  }
  EXPECT_EQ(pending, 0u) << "the outbox did not drain (" << pending << " left; the last of it went out "
                         << std::chrono::duration<double>(Clock::now() - progressed).count() << " s ago)";
  EXPECT_EQ(server->Terminate(), 0);
  receiver_->Terminate();
  receiver_.reset();

  std::map<std::string, std::string> department_of;  // acknowledged work order → department
  for (const auto& d : dispatched_) {
    ASSERT_FALSE(d.work_order.empty());
    ASSERT_TRUE(department_of.emplace(d.work_order, d.department).second) << d.work_order << " twice";
  }
  std::vector<webhook::Secret> secrets;
  secrets.push_back(*webhook::ParseSecret(kSecret));
  webhook::Verifier verifier(std::move(secrets));
  std::map<std::string, std::vector<std::string>> copies;  // id → complete bodies
  std::set<std::string> answered_ok;
  int strangers = 0, wrong_path = 0, bad_signature = 0, requests = 0;
  std::ifstream log(dir_ + "/requests.jsonl");
  for (std::string line; std::getline(log, line); ++requests) {
    json::object o = json::parse(line).as_object();
    const std::string id(o.at("id").as_string());
    auto known = department_of.find(id);
    if (known == department_of.end()) {
      if (++strangers <= 3) ADD_FAILURE() << "received " << id << ", which no acknowledged dispatch issued";
      continue;
    }
    if (std::string(o.at("path").as_string()) != "/" + known->second && ++wrong_path <= 3)
      ADD_FAILURE() << id << " went to " << o.at("path").as_string() << ", not /" << known->second;
    if (!o.at("body_complete").as_bool()) continue;
    const std::string body = Decode64(std::string(o.at("body").as_string()));
    Status st = verifier.Check(id, std::string(o.at("ts").as_string()), std::string(o.at("sig").as_string()),
                               body, static_cast<int64_t>(o.at("t").to_number<double>()));
    if (!st.ok() && ++bad_signature <= 3) ADD_FAILURE() << id << ": " << st.message();
    copies[id].push_back(body);
    if (o.at("action").as_string() == "ok") answered_ok.insert(id);
  }
  int lost = 0, differing = 0, redelivered = 0;
  for (const auto& [id, dept] : department_of)
    if (!answered_ok.count(id) && ++lost <= 3) ADD_FAILURE() << id << " (" << dept << ") was never answered 200";
  for (const auto& [id, bodies] : copies) {
    redelivered += bodies.size() > 1;
    for (const auto& b : bodies)
      if (b != bodies.front() && ++differing <= 3) ADD_FAILURE() << id << ": copies differ";
  }
  std::printf("delivery kill9: %zu work orders acknowledged, %d requests received, %d ids delivered "
              "more than once\n", department_of.size(), requests, redelivered);
  EXPECT_GT(department_of.size(), 100u) << "too little happened for the test to mean anything";
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(strangers, 0);
  EXPECT_EQ(wrong_path, 0);
  EXPECT_EQ(bad_signature, 0);
  EXPECT_EQ(differing, 0);
}

}  // namespace
}  // namespace casebus

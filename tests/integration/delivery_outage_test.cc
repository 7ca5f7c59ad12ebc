// A department endpoint down for 2 minutes of real time (issue 4). A real `casebus serve`
// delivers to tests/support/flaky_webhook.py (answering 200 to everything); the receiver is
// stopped, cases keep being dispatched for 2 minutes, then it comes back on the same port.
//
// Checked: during the outage the backlog grows on disk while each department's in-memory
// window stays within Dispatcher::kWindow, the breakers open (and report it in status), and
// the server's resident memory stays flat — its growth is printed and bounded; after the
// receiver returns the backlog drains to 0 and every acknowledged work order was answered
// 200, none dead-lettered.

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

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
constexpr size_t kWindow = 256;  // dispatch::Dispatcher::kWindow

int64_t RssKb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

class DeliveryOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/casebus-outage-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ + "/secret") << kSecret << "\n";
    auto cfg = config::LoadCityConfigFile(kSample);
    ASSERT_TRUE(cfg) << cfg.error().message();
    for (const auto& c : (*cfg)->categories())
      if (c.has_limits() || c.conditions_size() > 0) categories_.push_back(c.code());
    for (const auto& g : (*cfg)->grids()) grids_.push_back(g.code());
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreePort());
    port_ = testing::FreePort();
  }
  void TearDown() override {
    if (receiver_) receiver_->Terminate();
    if (!HasFailure()) fs::remove_all(dir_);
    else std::fprintf(stderr, "kept %s for inspection\n", dir_.c_str());
  }

  bool StartReceiver() {
    fs::remove(dir_ + "/port");
    receiver_ = std::make_unique<ServerProcess>(
        "/usr/bin/python3",
        std::vector<std::string>{CASEBUS_SOURCE_DIR "/tests/support/flaky_webhook.py", "--port",
                                 std::to_string(port_), "--port-file", dir_ + "/port", "--log",
                                 dir_ + "/requests.jsonl", "--all-ok", "--poison-every", "2147483647"},
        dir_ + "/receiver.log");
    return receiver_->Start(dir_ + "/port");
  }

  // Dispatches case after case (report, register, dispatch) until told to stop.
  void ClientLoop(int k) {
    cli::Client client(endpoint_);
    for (uint64_t i = 0; !stop_.load(); ++i) {
      const uint64_t n = next_.fetch_add(1);
      const std::string rid = "o" + std::to_string(k) + "-" + std::to_string(n);
      uint64_t case_id = 0;
      for (int step = 0; step < 3 && !stop_.load();) {
        v1::Request req;
        req.set_version(1);
        v1::Command* c = req.add_commands();
        c->set_request_id(rid + "-" + std::to_string(step));
        c->set_actor("outage");
        if (step == 0) {
          auto* r = c->mutable_report();
          r->set_category(categories_[n % categories_.size()]);
          r->mutable_place()->set_grid(grids_[(n / categories_.size()) % grids_.size()]);
          r->set_source(v1::HOTLINE);
          r->set_description(rid);
        } else if (step == 1) {
          c->mutable_register_()->set_case_id(case_id);
        } else {
          c->mutable_dispatch()->set_case_id(case_id);
        }
        auto reply = client.Call(req, std::chrono::milliseconds(3000));
        ASSERT_TRUE(reply) << "the server stopped answering during the outage";
        const auto& r = reply->results(0);
        if (r.code() == v1::BUSY) continue;
        ASSERT_EQ(r.code(), v1::OK) << rid << ": " << r.message();
        if (step == 0) case_id = r.case_id();
        if (step == 2) {
          std::lock_guard lock(mu_);
          acked_.insert(r.work_order_id());
        }
        ++step;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(8));
    }
  }

  v1::StatusReply Status(cli::Client& client) {
    v1::Request status;
    status.set_version(1);
    status.mutable_query()->mutable_status();
    auto st = client.Call(status, std::chrono::milliseconds(5000));
    EXPECT_TRUE(st);
    return st ? st->query().status() : v1::StatusReply();
  }

  std::string dir_, endpoint_;
  int port_ = 0;
  std::vector<std::string> categories_, grids_;
  std::unique_ptr<ServerProcess> receiver_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> next_{0};
  std::mutex mu_;
  std::set<std::string> acked_;
};

TEST_F(DeliveryOutageTest, TwoMinutesDownLosesNothingAndHoldsNoBacklogInMemory) {
  const char* env = std::getenv("CASEBUS_OUTAGE_SECONDS");
  const int outage_s = env ? std::atoi(env) : 120;
  ASSERT_TRUE(StartReceiver());
  std::ofstream(dir_ + "/city.yaml") << testing::WebhookCityYaml(
      kSample, port_, dir_ + "/secret",
      "delivery:\n  backoff_base_ms: 100\n  backoff_cap_ms: 2000\n  timeout_ms: 1000\n"
      "  breaker_failures: 3\n  breaker_cooldown_ms: 2000\n  breaker_cooldown_cap_ms: 8000\n");
  ServerProcess server(CASEBUS_BIN,
                       {"serve", "--config", dir_ + "/city.yaml", "--data", dir_ + "/data", "--endpoint",
                        endpoint_, "--endpoint-file", dir_ + "/endpoint", "--http", "127.0.0.1:0"},
                       dir_ + "/server.log");
  ASSERT_TRUE(server.Start(dir_ + "/endpoint"));
  std::vector<std::thread> clients;
  for (int k = 0; k < 2; ++k) clients.emplace_back([this, k] { ClientLoop(k); });
  cli::Client client(endpoint_);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // deliveries flowing

  receiver_->Terminate();  // the outage
  receiver_.reset();
  const auto outage_start = std::chrono::steady_clock::now();
  int64_t rss_first = -1, rss_last = -1, rss_max = 0;
  uint64_t max_pending = 0, max_in_memory = 0, open_breakers = 0;
  uint64_t pending_first = 0;
  std::printf("   t  pending  in memory (largest lane)  open breakers   RSS MB\n");
  for (int t = 0; t <= outage_s; t += 10) {
    std::this_thread::sleep_until(outage_start + std::chrono::seconds(t));
    const v1::StatusReply s = Status(client);
    uint64_t in_memory = 0, largest = 0, open = 0;
    for (const auto& l : s.delivery()) {
      in_memory += l.in_memory();
      largest = std::max<uint64_t>(largest, l.in_memory());
      EXPECT_LE(l.in_memory(), kWindow) << l.department() << " holds more than its window";
      open += l.breaker() != "closed";
    }
    const int64_t rss = RssKb(server.pid());
    if (t == 20) rss_first = rss, pending_first = s.outbox_pending();
    rss_last = rss;
    rss_max = std::max(rss_max, rss);
    max_pending = std::max<uint64_t>(max_pending, s.outbox_pending());
    max_in_memory = std::max(max_in_memory, in_memory);
    open_breakers = std::max(open_breakers, open);
    std::printf("%4d  %7llu  %9llu (%3llu)  %13llu  %7.1f\n", t,
                static_cast<unsigned long long>(s.outbox_pending()), static_cast<unsigned long long>(in_memory),
                static_cast<unsigned long long>(largest), static_cast<unsigned long long>(open),
                static_cast<double>(rss) / 1024);
    EXPECT_EQ(s.dead_letters(), 0u);
  }
  ASSERT_TRUE(StartReceiver());  // back, on the same port
  const auto back = std::chrono::steady_clock::now();
  stop_.store(true);
  for (auto& t : clients) t.join();
  uint64_t pending = 0;
  while ((pending = Status(client).outbox_pending()) > 0 &&
         std::chrono::steady_clock::now() - back < std::chrono::seconds(180))
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  const double drain_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - back).count();
  const v1::StatusReply end = Status(client);
  EXPECT_EQ(server.Terminate(), 0);
  receiver_->Terminate();
  receiver_.reset();

  std::printf("outage %d s: backlog up to %llu items (%llu at 20 s), at most %llu in memory; "
              "RSS %.1f MB at 20 s, %.1f MB at the end, %.1f MB peak; drained in %.1f s\n",
              outage_s, static_cast<unsigned long long>(max_pending), static_cast<unsigned long long>(pending_first),
              static_cast<unsigned long long>(max_in_memory), static_cast<double>(rss_first) / 1024,
              static_cast<double>(rss_last) / 1024, static_cast<double>(rss_max) / 1024, drain_s);
  EXPECT_EQ(pending, 0u) << "the backlog did not drain within 3 minutes";
  EXPECT_EQ(end.dead_letters(), 0u);
  EXPECT_GT(open_breakers, 0u) << "no breaker ever opened";
  EXPECT_GT(max_pending, 4 * kWindow) << "the backlog never outgrew the windows: the test proves nothing";
  // The backlog is on disk: the windows are bounded by the lanes, not by the backlog.
  EXPECT_LE(max_in_memory, kWindow * 45);
  // Resident memory over the outage: the cases created meanwhile (~3 KB each) and RocksDB's
  // memtables (bounded by their write buffers) may grow it; a backlog in RAM would add its
  // items on top. Bound the growth generously and print it.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Under the sanitizers (deploy/run.sh sanitize) the server's RSS also holds their own
  // memory: ASan's quarantine of freed blocks (256 MB by default) and shadow, TSan's shadow and
  // allocator. They grew it by 291 and 239 MB; that is theirs, not a backlog's. The in-memory
  // count above is the check that holds in every build.
  std::printf("RSS growth not bounded under a sanitizer (it keeps memory of its own)\n");
#else
  EXPECT_LT(rss_last - rss_first, 192 * 1024) << "RSS grew by " << (rss_last - rss_first) / 1024 << " MB";
#endif

  std::set<std::string> ok;
  std::ifstream log(dir_ + "/requests.jsonl");
  for (std::string line; std::getline(log, line);) {
    json::object o = json::parse(line).as_object();
    if (o.at("action").as_string() == "ok") ok.insert(std::string(o.at("id").as_string()));
  }
  int lost = 0;
  for (const auto& id : acked_)
    if (!ok.count(id) && ++lost <= 3) ADD_FAILURE() << id << " was never delivered";
  EXPECT_EQ(lost, 0) << "of " << acked_.size() << " acknowledged work orders";
}

}  // namespace
}  // namespace casebus

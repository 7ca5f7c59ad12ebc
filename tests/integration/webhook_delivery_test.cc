// Webhook delivery against a flaky receiver (issue 4): the Dispatcher with a real Store on
// disk and real webhook adapters POSTing to tests/support/flaky_webhook.py on loopback, whose
// seeded script answers 200, 500, 503 + Retry-After, 429, slower than the timeout, resets
// mid-body, processes and drops, and refuses "poison" ids with 400; a burst of 503s trips the
// breakers. 10,000 work orders over 8 departments (8 endpoints, 4 delivery workers).
//
// Checked afterwards, from the receiver's log and the dispatcher's attempt records:
//   - every order but the poison ones was answered 200 at least once, and was acknowledged;
//   - every request carries a valid Standard Webhooks signature over the bytes received;
//   - all complete copies of one id are byte-identical;
//   - every retry waited within the backoff bounds (or for the Retry-After it was given);
//   - while a breaker is open nothing goes to its endpoint but one probe per cool-down;
//   - the dead letters are exactly the poison orders, each with its 400.

#include <gtest/gtest.h>
#include <signal.h>
#include <zlib.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "adapters/webhook/signature.h"
#include "adapters/webhook/webhook_adapter.h"
#include "engine/base/clock.h"
#include "engine/config/loader.h"
#include "engine/dispatch/dispatcher.h"
#include "engine/store/store.h"
#include "tests/integration/server_process.h"

namespace casebus {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr int kOrders = 10'000;
constexpr int kDepartments = 8;
constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";  // test-only key

std::string Decode64(const std::string& in) {
  std::string out;
  int val = 0, bits = -8;
  for (unsigned char c : in) {
    int d;
    if (c >= 'A' && c <= 'Z') d = c - 'A';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
    else if (c >= '0' && c <= '9') d = c - '0' + 52;
    else if (c == '+') d = 62;
    else if (c == '/') d = 63;
    else break;
    val = (val << 6) | d;
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

struct LoggedRequest {
  int64_t n;
  double t;
  std::string path, id, ts, sig, body, action;
  bool complete;
};

std::vector<LoggedRequest> ReadLog(const fs::path& path) {
  std::vector<LoggedRequest> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    json::object o = json::parse(line).as_object();
    out.push_back({o.at("n").as_int64(), o.at("t").to_number<double>(),
                   std::string(o.at("path").as_string()), std::string(o.at("id").as_string()),
                   std::string(o.at("ts").as_string()), std::string(o.at("sig").as_string()),
                   Decode64(std::string(o.at("body").as_string())),
                   std::string(o.at("action").as_string()), o.at("body_complete").as_bool()});
  }
  return out;
}

bool Poison(const std::string& id, int every) {
  return crc32(0, reinterpret_cast<const Bytef*>(id.data()), static_cast<uInt>(id.size())) % every == 0;
}

class WebhookDeliveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("casebus-webhook-" + std::to_string(getpid()) + "-" + std::to_string(rand()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "secret") << kSecret << "\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  bool StartReceiver(std::vector<std::string> extra) {
    std::vector<std::string> args = {std::string(CASEBUS_SOURCE_DIR) + "/tests/support/flaky_webhook.py",
                                     "--port-file", (dir_ / "port").string(), "--log",
                                     (dir_ / "requests.jsonl").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    receiver_ = std::make_unique<testing::ServerProcess>("/usr/bin/python3", args,
                                                         (dir_ / "receiver.log").string());
    if (!receiver_->Start((dir_ / "port").string())) return false;
    std::ifstream(dir_ / "port") >> port_;
    return port_ > 0;
  }

  v1::CityConfig City(const v1::DeliveryPolicy& policy) {
    v1::CityConfig city;
    city.add_webhook_allow("http://127.0.0.1:" + std::to_string(port_) + "/");
    *city.mutable_delivery() = policy;
    for (int d = 0; d < kDepartments; ++d) {
      v1::Department* dept = city.add_departments();
      dept->set_id("dept-" + std::to_string(d));
      auto* w = dept->mutable_adapter()->mutable_webhook();
      w->set_url("http://127.0.0.1:" + std::to_string(port_) + "/d" + std::to_string(d) + "/orders");
      w->set_secret_file((dir_ / "secret").string());
    }
    return city;
  }

  fs::path dir_;
  std::unique_ptr<testing::ServerProcess> receiver_;
  int port_ = 0;
};

TEST_F(WebhookDeliveryTest, TenThousandOrdersThroughAFlakyReceiver) {
  constexpr int kPoisonEvery = 97;
  ASSERT_TRUE(StartReceiver({"--seed", "4242", "--poison-every", std::to_string(kPoisonEvery),
                             "--slow-s", "0.6", "--retry-after", "1", "--outage-from", "3000",
                             "--outage-count", "120"}));
  v1::DeliveryPolicy policy;
  policy.set_backoff_base_ms(20);
  policy.set_backoff_cap_ms(400);
  policy.set_timeout_ms(300);
  policy.set_breaker_failures(4);
  policy.set_breaker_cooldown_ms(300);
  policy.set_breaker_cooldown_cap_ms(1'200);
  policy.set_max_attempts(1'000);
  policy.set_max_retry_after_ms(1'500);
  policy.set_workers(4);
  config::ApplyDeliveryDefaults(policy);
  const v1::CityConfig city = City(policy);

  auto store = store::Store::Open((dir_ / "db").string(), {.sync = false});
  ASSERT_TRUE(store) << store.error().message();
  dispatch::AdapterRegistry registry;
  webhook::RegisterWebhookAdapter(registry);
  std::map<std::string, std::unique_ptr<dispatch::Adapter>> adapters;
  for (const auto& d : city.departments()) {
    auto a = registry.Create(d, {dir_.string(), &city});
    ASSERT_TRUE(a) << a.error().message();
    adapters[d.id()] = std::move(*a);
  }

  std::mutex mu;
  std::vector<dispatch::AttemptRecord> attempts;
  std::set<std::string> acknowledged;
  std::map<std::string, v1::DeadLetter> dead;
  dispatch::DispatcherHooks hooks;
  hooks.load = [&](const std::string& dept, const std::string& after, size_t max,
                   std::vector<dispatch::OutboxEntry>& out) {
    return (*store)->LoadOutbox(dept, after, max, [&](std::string_view k, std::string_view v) {
      dispatch::OutboxEntry e;
      e.key = k;
      e.item.ParseFromArray(v.data(), static_cast<int>(v.size()));
      out.push_back(std::move(e));
    });
  };
  hooks.on_delivered = [&](const std::vector<std::string>& keys) { (void)(*store)->MarkDelivered(keys); };
  hooks.on_dead = [&](const std::string& key, const v1::DeadLetter& l) {
    std::lock_guard lock(mu);
    dead[dispatch::Dispatcher::IdOf(l.item())] = l;
    return (*store)->MoveToDeadLetters(key, dispatch::Dispatcher::IdOf(l.item()), l.SerializeAsString());
  };
  // The dispatcher's finishes in the order it made them (both hooks run under its lock): each
  // attempt (index into `attempts`) and each closing of a breaker (-1 - endpoint's number).
  std::vector<int64_t> finishes;
  std::map<std::string, int64_t> endpoint_number;
  hooks.on_attempt = [&](const dispatch::AttemptRecord& r) {
    std::lock_guard lock(mu);
    finishes.push_back(static_cast<int64_t>(attempts.size()));
    attempts.push_back(r);
    if (r.result.ok()) acknowledged.insert(r.id);
  };
  hooks.log = [&](const std::string& line) {
    // "dispatch: breaker for <endpoint> closed: <id> went through"
    const std::string prefix = "dispatch: breaker for ";
    const size_t closed = line.find(" closed: ");
    if (line.rfind(prefix, 0) != 0 || closed == std::string::npos) return;
    std::lock_guard lock(mu);
    const std::string endpoint = line.substr(prefix.size(), closed - prefix.size());
    auto [it, added] = endpoint_number.try_emplace(endpoint, static_cast<int64_t>(endpoint_number.size()));
    finishes.push_back(-1 - it->second);
  };
  // Wall time that never steps: every check below compares instants the dispatcher took from
  // its clock, which a step of the wall clock (NTP, a VM's host) would skew. What the
  // dispatcher does when the wall clock steps is not what this test is about.
  class SteadyWallClock final : public Clock {
   public:
    Millis Now() const override {
      return start_ + std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - steady_).count();
    }

   private:
    const Millis start_ = SystemClock().Now();
    const std::chrono::steady_clock::time_point steady_ = std::chrono::steady_clock::now();
  } clock;
  dispatch::Dispatcher dispatcher(std::move(adapters), hooks, policy, clock, /*seed=*/7);
  dispatcher.Start();

  // Commit and enqueue the orders in batches of 500, the way the engine does after each
  // group commit.
  const int64_t issued = clock.Now();
  uint64_t seq = 1;
  std::set<std::string> poison;
  for (int i = 0; i < kOrders; i += 500) {
    std::vector<std::pair<std::string, std::string>> rows;
    std::vector<dispatch::OutboxEntry> entries;
    for (int j = i; j < i + 500; ++j) {
      v1::OutboxItem item;
      v1::WorkOrder* w = item.mutable_work_order();
      w->set_id(std::to_string(j + 1) + "-1");
      w->set_case_id(static_cast<uint64_t>(j + 1));
      w->set_department("dept-" + std::to_string(j % kDepartments));
      w->set_issued_at_ms(issued);
      w->set_category("0101");
      w->set_description("上水井盖破损，需更换 #" + std::to_string(j));
      if (Poison(w->id(), kPoisonEvery)) poison.insert(w->id());
      const std::string key = store::Store::OutboxKey(w->department(), seq++);
      rows.emplace_back(key, item.SerializeAsString());
      entries.push_back({key, std::move(item)});
    }
    ASSERT_TRUE((*store)->Commit({}, rows).ok());
    dispatcher.Enqueue(std::move(entries));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(8);
  while (dispatcher.pending() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  dispatcher.Stop();
  ASSERT_EQ(dispatcher.pending(), 0u) << "orders still undelivered after 8 minutes";
  receiver_->Terminate();

  // The receiver's view.
  const std::vector<LoggedRequest> log = ReadLog(dir_ / "requests.jsonl");
  std::map<std::string, std::vector<const LoggedRequest*>> by_id;
  std::map<std::string, int> actions;
  for (const auto& r : log) {
    by_id[r.id].push_back(&r);
    ++actions[r.action];
  }
  std::string summary;
  for (const auto& [a, n] : actions) summary += " " + a + "=" + std::to_string(n);
  std::printf("receiver: %zu requests for %zu ids:%s\n", log.size(), by_id.size(), summary.c_str());
  for (const char* a : {"ok", "500", "503ra", "429", "slow", "reset", "drop", "400", "503"})
    EXPECT_GT(actions[a], 0) << "the script never chose " << a << ": the test lost its teeth";
  ASSERT_EQ(by_id.size(), static_cast<size_t>(kOrders));
  std::vector<webhook::Secret> secrets;
  secrets.push_back(*webhook::ParseSecret(kSecret));
  webhook::Verifier verifier(std::move(secrets));
  int bad_signatures = 0, differing_copies = 0, never_ok = 0;
  for (const auto& [id, copies] : by_id) {
    const std::string* first_body = nullptr;
    bool ok = false;
    for (const LoggedRequest* r : copies) {
      ok |= r->action == "ok";
      if (!r->complete) continue;
      Status st = verifier.Check(id, r->ts, r->sig, r->body, static_cast<int64_t>(r->t));
      if (!st.ok() && ++bad_signatures <= 3) ADD_FAILURE() << id << ": " << st.message();
      if (!first_body) first_body = &r->body;
      else if (*first_body != r->body && ++differing_copies <= 3)
        ADD_FAILURE() << id << ": copies differ";
    }
    if (!poison.count(id) && !ok && ++never_ok <= 3) ADD_FAILURE() << id << " was never answered 200";
  }
  EXPECT_EQ(bad_signatures, 0);
  EXPECT_EQ(differing_copies, 0);
  EXPECT_EQ(never_ok, 0);

  // The dispatcher's view: acknowledged = everything but the poison; dead = the poison.
  EXPECT_EQ(acknowledged.size() + poison.size(), static_cast<size_t>(kOrders));
  std::set<std::string> dead_ids;
  for (const auto& [id, l] : dead) {
    dead_ids.insert(id);
    EXPECT_NE(l.reason().find("HTTP 400"), std::string::npos) << id << ": " << l.reason();
  }
  EXPECT_EQ(dead_ids, poison) << "only non-retryable orders may reach the dead letters";
  size_t stored_dead = 0;
  ASSERT_TRUE((*store)->ForEachDeadLetter([&](std::string_view, std::string_view) { return ++stored_dead, true; }).ok());
  EXPECT_EQ(stored_dead, poison.size());
  size_t left = 0;
  ASSERT_TRUE((*store)->ForEachOutbox([&](std::string_view, std::string_view) { return ++left, true; }).ok());
  EXPECT_EQ(left, 0u) << "delivered rows must leave the outbox";

  // Backoff bounds, per item in time order.
  std::map<std::string, std::vector<const dispatch::AttemptRecord*>> by_item;
  for (const auto& r : attempts) by_item[r.id].push_back(&r);
  int retries = 0, probes = 0, bound_violations = 0, early = 0, breaker_violations = 0;
  for (auto& [id, list] : by_item) {
    std::sort(list.begin(), list.end(), [](auto* a, auto* b) { return a->at_ms < b->at_ms; });
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& r = *list[i];
      if (r.result.outcome != dispatch::Delivery::Outcome::kRetry) continue;
      ++retries;
      const int64_t finished = r.at_ms + r.took_ms;
      const int64_t wait = r.next_try_ms - finished;
      const int64_t ra = r.result.retry_after_ms < 0 ? -1 : std::min<int64_t>(r.result.retry_after_ms, policy.max_retry_after_ms());
      const bool within = ra >= 0 ? wait >= ra && wait <= std::max(ra, r.backoff_bound_ms)
                                  : wait >= 0 && wait < r.backoff_bound_ms;
      if (!within && ++bound_violations <= 3)
        ADD_FAILURE() << id << " attempt " << r.attempt << ": waited " << wait << " ms, bound "
                      << r.backoff_bound_ms << ", Retry-After " << ra;
      const int expected_bound = static_cast<int>(std::min<int64_t>(
          policy.backoff_cap_ms(), static_cast<int64_t>(policy.backoff_base_ms()) << std::min(30, r.attempt)));
      if (r.backoff_bound_ms > expected_bound && ++bound_violations <= 3)
        ADD_FAILURE() << id << ": bound " << r.backoff_bound_ms << " above min(cap, base·2^n) = " << expected_bound;
      if (i + 1 < list.size() && list[i + 1]->at_ms < r.next_try_ms && ++early <= 3)
        ADD_FAILURE() << id << ": retried at " << list[i + 1]->at_ms << ", before " << r.next_try_ms;
    }
  }
  // After a failed probe, the next attempt to this endpoint is a probe, at least half the
  // first cool-down later; probes never overlap. Unless the breaker closed in between: an
  // answer (delivered or refused) to an attempt begun before the probe failed shows the
  // endpoint is up (Dispatcher::Finish), and normal attempts may follow at once. Read in the
  // order the dispatcher finished attempts: a normal attempt begun after a failed probe needs a
  // closing of that endpoint's breaker between the probe's finish and its own.
  std::map<std::string, const dispatch::AttemptRecord*> failed_probe;  // by endpoint, awaiting
  std::map<int64_t, std::string> endpoint_of;
  for (const auto& [endpoint, n] : endpoint_number) endpoint_of[n] = endpoint;
  for (const int64_t f : finishes) {
    if (f < 0) {
      failed_probe.erase(endpoint_of[-1 - f]);
      continue;
    }
    const dispatch::AttemptRecord& r = attempts[static_cast<size_t>(f)];
    if (r.probe) ++probes;
    auto open = failed_probe.find(r.endpoint);
    if (open != failed_probe.end()) {
      const int64_t failed_at = open->second->at_ms + open->second->took_ms;
      if (r.at_ms >= failed_at) {  // begun after the probe failed (else it was in flight)
        if ((!r.probe || r.at_ms < failed_at + policy.breaker_cooldown_ms() / 2) && ++breaker_violations <= 3)
          ADD_FAILURE() << r.endpoint << ": after a failed probe at " << failed_at << " came "
                        << (r.probe ? "a probe" : "a normal attempt") << " at " << r.at_ms;
        failed_probe.erase(open);
      }
    }
    if (r.probe && r.result.outcome == dispatch::Delivery::Outcome::kRetry) failed_probe[r.endpoint] = &r;
  }
  std::printf("dispatcher: %zu attempts, %d retries, %d probes, %zu dead letters\n",
              attempts.size(), retries, probes, dead.size());
  EXPECT_GT(probes, 0) << "the burst outage never opened a breaker";
  EXPECT_EQ(bound_violations, 0);
  EXPECT_EQ(early, 0);
  EXPECT_EQ(breaker_violations, 0);
}

}  // namespace
}  // namespace casebus

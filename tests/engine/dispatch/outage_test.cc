// A department endpoint down for 24 hours of virtual time (issue 4), with the default
// delivery policy, a real Store on disk and the Dispatcher driven by a ManualClock: orders
// keep coming all day; none is lost or dead-lettered (max age is 72 h); the endpoint sees a
// handful of probes, not a storm; no lane ever holds more than its window in memory while the
// backlog grows on disk; when the endpoint returns, the backlog drains in key order, each
// order delivered once.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>

#include "engine/base/clock.h"
#include "engine/config/loader.h"
#include "engine/dispatch/dispatcher.h"
#include "engine/store/store.h"

namespace casebus::dispatch {
namespace {

constexpr Millis kT0 = 1'793'000'000'000;  // 2026-10-26, a Monday

class FakeEndpoint final : public Adapter {
 public:
  explicit FakeEndpoint(std::string name) : name_(std::move(name)) {}
  Delivery Deliver(const v1::WorkOrder& o) override {
    ++attempts;
    if (down) return Delivery::Retry("connect: connection refused");
    delivered.push_back(o.id());
    return Delivery::Delivered();
  }
  Delivery DeliverNotice(const v1::Notice& n) override {
    v1::WorkOrder o;
    o.set_id(n.id());
    return Deliver(o);
  }
  std::string Endpoint() const override { return name_; }
  bool down = false;
  int attempts = 0;
  std::vector<std::string> delivered;

 private:
  std::string name_;
};

TEST(DispatcherOutage, TwentyFourHoursDownLosesNothingHoldsOnlyWindowsAndDrains) {
  char tmpl[] = "/tmp/casebus-outage-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  {
    auto store = store::Store::Open(dir, {.sync = false});
    ASSERT_TRUE(store) << store.error().message();
    v1::DeliveryPolicy policy;
    config::ApplyDeliveryDefaults(policy);
    policy.set_workers(0);  // inline: RunOnce delivers, deterministic
    ManualClock clock(kT0);
    auto roads = std::make_unique<FakeEndpoint>("webhook https://roads.example.gov/orders");
    auto parks = std::make_unique<FakeEndpoint>("webhook https://parks.example.gov/orders");
    FakeEndpoint* r = roads.get();
    FakeEndpoint* p = parks.get();
    std::map<std::string, std::unique_ptr<Adapter>> adapters;
    adapters["roads"] = std::move(roads);
    adapters["parks"] = std::move(parks);
    DispatcherHooks hooks;
    hooks.load = [&](const std::string& dept, const std::string& after, size_t max, std::vector<OutboxEntry>& out) {
      return (*store)->LoadOutbox(dept, after, max, [&](std::string_view k, std::string_view v) {
        OutboxEntry e;
        e.key = k;
        e.item.ParseFromArray(v.data(), static_cast<int>(v.size()));
        out.push_back(std::move(e));
      });
    };
    hooks.on_delivered = [&](const std::vector<std::string>& keys) { (void)(*store)->MarkDelivered(keys); };
    int dead = 0;
    hooks.on_dead = [&](const std::string& key, const v1::DeadLetter& l) {
      ++dead;
      return (*store)->MoveToDeadLetters(key, Dispatcher::IdOf(l.item()), l.SerializeAsString());
    };
    Dispatcher dispatcher(std::move(adapters), hooks, policy, clock, /*seed=*/11);

    uint64_t seq = 1;
    std::map<std::string, std::vector<std::string>> issued;  // department → ids in key order
    auto issue = [&](const std::string& dept, int n) {
      std::vector<std::pair<std::string, std::string>> rows;
      std::vector<OutboxEntry> entries;
      for (int i = 0; i < n; ++i) {
        v1::OutboxItem item;
        auto* w = item.mutable_work_order();
        w->set_id(std::to_string(seq) + "-1");
        w->set_case_id(seq);
        w->set_department(dept);
        w->set_issued_at_ms(clock.Now());
        const std::string key = store::Store::OutboxKey(dept, seq++);
        rows.emplace_back(key, item.SerializeAsString());
        entries.push_back({key, std::move(item)});
        issued[dept].push_back(w->id());
      }
      ASSERT_TRUE((*store)->Commit({}, rows).ok());
      dispatcher.Enqueue(std::move(entries));
    };

    // 5 minutes up, then 24 h down; orders every minute all along.
    r->down = p->down = false;
    for (int minute = 0; minute < 5; ++minute) {
      issue("roads", 5);
      issue("parks", 2);
      clock.Advance(kMinute);
      dispatcher.RunOnce();
    }
    ASSERT_EQ(dispatcher.pending(), 0u);
    r->down = p->down = true;
    const int attempts_before = r->attempts + p->attempts;
    uint64_t max_in_memory = 0;
    for (int minute = 0; minute < 24 * 60; ++minute) {
      issue("roads", 5);
      issue("parks", 2);
      for (int s = 0; s < 4; ++s) {  // 15 s steps: backoffs and cool-downs resolve finely
        clock.Advance(15'000);
        dispatcher.RunOnce();
      }
      for (const auto& lane : dispatcher.Lanes()) {
        max_in_memory = std::max<uint64_t>(max_in_memory, lane.in_memory());
        ASSERT_LE(lane.in_memory(), Dispatcher::kWindow) << lane.department() << " at minute " << minute;
      }
    }
    const int outage_attempts = r->attempts + p->attempts - attempts_before;
    const uint64_t backlog = dispatcher.pending();
    std::printf("24 h down: %llu orders waiting (on disk), at most %llu in memory per lane, "
                "%d attempts in all (breaker probes), %d dead letters\n",
                static_cast<unsigned long long>(backlog), static_cast<unsigned long long>(max_in_memory),
                outage_attempts, dead);
    EXPECT_EQ(backlog, 24u * 60u * 7u) << "every order issued during the outage is waiting";
    EXPECT_EQ(dead, 0) << "72 h max age: nothing may be given up after 24 h";
    // Breaker: after 5 failures, probes at cool-downs doubling from 30 s to the 10 min cap,
    // each jittered to ×0.5–1: between 24 h / 10 min = 144 and 24 h / 5 min = 288 probes per
    // endpoint (plus the first few), far from one per order or per backoff step.
    EXPECT_LT(outage_attempts, 2 * (288 + 20));
    EXPECT_GT(outage_attempts, 2 * 144) << "the breaker stopped probing";
    bool open_seen = false;
    for (const auto& lane : dispatcher.Lanes()) open_seen |= lane.breaker() == "open";
    EXPECT_TRUE(open_seen);

    // Back up: the backlog drains within a cool-down plus the time to deliver it.
    r->down = p->down = false;
    for (int step = 0; step < 200 && dispatcher.pending() > 0; ++step) {
      clock.Advance(15'000);
      dispatcher.RunOnce();
    }
    EXPECT_EQ(dispatcher.pending(), 0u);
    EXPECT_EQ(dead, 0);
    EXPECT_EQ(r->delivered, issued["roads"]) << "roads: lost, doubled or out of order";
    EXPECT_EQ(p->delivered, issued["parks"]) << "parks: lost, doubled or out of order";
    size_t left = 0;
    ASSERT_TRUE((*store)->ForEachOutbox([&](std::string_view, std::string_view) { return ++left, true; }).ok());
    EXPECT_EQ(left, 0u);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace casebus::dispatch

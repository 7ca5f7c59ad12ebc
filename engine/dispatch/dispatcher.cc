#include "engine/dispatch/dispatcher.h"

#include <pthread.h>

#include <chrono>

namespace casebus::dispatch {
namespace {
constexpr int64_t kBaseBackoffMs = 200;
constexpr int64_t kMaxBackoffMs = 60'000;
constexpr auto kPollInterval = std::chrono::milliseconds(100);

int64_t SteadyMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Dispatcher::Dispatcher(std::map<std::string, std::unique_ptr<Adapter>> adapters,
                       DispatcherHooks hooks)
    : adapters_(std::move(adapters)), hooks_(std::move(hooks)) {}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "casebus-dispatch");
    Loop();
  });
}

void Dispatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

const std::string& Dispatcher::IdOf(const v1::OutboxItem& item) {
  return item.has_notice() ? item.notice().id() : item.work_order().id();
}

const std::string& Dispatcher::DepartmentOf(const v1::OutboxItem& item) {
  return item.has_notice() ? item.notice().department() : item.work_order().department();
}

void Dispatcher::Enqueue(std::vector<v1::OutboxItem> items) {
  if (items.empty()) return;
  {
    std::lock_guard lock(mu_);
    pending_ += items.size();
    for (auto& o : items) incoming_.push_back(std::move(o));
  }
  cv_.notify_one();
}

uint64_t Dispatcher::pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}
uint64_t Dispatcher::delivered() const {
  std::lock_guard lock(mu_);
  return delivered_;
}

void Dispatcher::Settle(const std::string& department, const std::string& token,
                        const v1::CommandResult& result) {
  {
    std::lock_guard lock(mu_);
    settlements_.push_back({department, token, result});
  }
  cv_.notify_one();
}

void Dispatcher::RunOnce(int64_t now) {
  std::vector<v1::OutboxItem> batch;
  std::vector<Settlement> settled;
  {
    std::lock_guard lock(mu_);
    batch.swap(incoming_);
    settled.swap(settlements_);
  }
  for (const auto& s : settled)
    if (auto a = adapters_.find(s.department); a != adapters_.end()) a->second->Settle(s.token, s.result);
  for (auto& o : batch) lanes_[DepartmentOf(o)].queue.push_back(std::move(o));
  std::vector<std::string> done;
  for (auto& [dept, lane] : lanes_) {
    auto adapter = adapters_.find(dept);
    while (!lane.queue.empty() && lane.next_try_ms <= now) {
      const v1::OutboxItem& item = lane.queue.front();
      Status st = adapter == adapters_.end()
                      ? Status::NotFound("department " + dept + " has no adapter")
                  : item.has_notice() ? adapter->second->DeliverNotice(item.notice())
                                      : adapter->second->Deliver(item.work_order());
      if (!st.ok()) {
        ++lane.attempts;
        lane.last_error = st.message();
        // Full jitter: uniform in [0, min(cap, base·2^attempts)).
        int64_t cap = std::min(kMaxBackoffMs, kBaseBackoffMs << std::min(lane.attempts, 16));
        rng_ ^= rng_ << 13, rng_ ^= rng_ >> 7, rng_ ^= rng_ << 17;
        lane.next_try_ms = now + static_cast<int64_t>(rng_ % static_cast<uint64_t>(cap)) + 1;
        break;
      }
      lane.attempts = 0;
      done.push_back(IdOf(lane.queue.front()));
      lane.queue.pop_front();
    }
  }
  if (!done.empty()) {
    if (hooks_.on_delivered) hooks_.on_delivered(done);
    std::lock_guard lock(mu_);
    pending_ -= done.size();
    delivered_ += done.size();
  }
  std::vector<InboundReply> replies;
  for (auto& [dept, adapter] : adapters_) {
    for (auto& r : adapter->PollReplies()) {
      r.department = dept;
      replies.push_back(std::move(r));
    }
  }
  if (!replies.empty() && hooks_.on_replies) hooks_.on_replies(std::move(replies));
}

void Dispatcher::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kPollInterval,
                   [this] { return stop_ || !incoming_.empty() || !settlements_.empty(); });
      if (stop_) return;
    }
    RunOnce(SteadyMs());
  }
}

}  // namespace casebus::dispatch

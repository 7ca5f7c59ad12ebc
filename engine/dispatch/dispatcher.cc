#include "engine/dispatch/dispatcher.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace casebus::dispatch {
namespace {

constexpr int64_t kPollIntervalMs = 100;  // replies are collected at least this often
constexpr size_t kMaxHistory = 100;       // attempts kept per item (the dead letter's record)

const char* BreakerName(int state) {
  switch (state) {
    case 1: return "open";
    case 2: return "half-open";
    default: return "closed";
  }
}

}  // namespace

Dispatcher::Dispatcher(std::map<std::string, std::unique_ptr<Adapter>> adapters,
                       DispatcherHooks hooks, const v1::DeliveryPolicy& policy,
                       const Clock& clock, uint64_t seed)
    : adapters_(std::move(adapters)),
      hooks_(std::move(hooks)),
      policy_(policy),
      clock_(clock),
      rng_(seed) {
  std::lock_guard lock(mu_);
  for (const auto& [dept, adapter] : adapters_) LaneFor(dept);
}

Dispatcher::~Dispatcher() { Stop(); }

Dispatcher::Lane& Dispatcher::LaneFor(const std::string& department) {
  auto [it, added] = lanes_.try_emplace(department);
  Lane& lane = it->second;
  if (added) {
    lane.department = department;
    auto a = adapters_.find(department);
    lane.adapter = a == adapters_.end() ? nullptr : a->second.get();
    lane.endpoint = lane.adapter ? lane.adapter->Endpoint() : "";
    if (lane.adapter) {
      Breaker& b = breakers_[lane.endpoint];
      if (b.cooldown_ms == 0) b.cooldown_ms = policy_.breaker_cooldown_ms();
      lane.breaker = &b;
    }
  }
  return lane;
}

void Dispatcher::SetBacklog(const std::map<std::string, uint64_t>& pending) {
  std::lock_guard lock(mu_);
  for (const auto& [dept, n] : pending) {
    LaneFor(dept).pending += static_cast<int64_t>(n);
    pending_ += static_cast<int64_t>(n);
  }
}

void Dispatcher::Start() {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  {
    std::lock_guard lock(work_mu_);
    work_stop_ = false;
  }
  for (uint32_t i = 0; i < policy_.workers(); ++i)
    workers_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "casebus-deliver");
      Work();
    });
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
  std::deque<Task> dropped;
  {
    std::lock_guard lock(work_mu_);
    work_stop_ = true;
    dropped.swap(tasks_);  // not started: they stay in the outbox for the next start
  }
  work_cv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  std::lock_guard lock(mu_);
  for (const Task& t : dropped) {
    t.lane->in_flight = false;
    if (t.probe) t.lane->breaker->probing = false;
  }
}

const std::string& Dispatcher::IdOf(const v1::OutboxItem& item) {
  return item.has_notice() ? item.notice().id() : item.work_order().id();
}

const std::string& Dispatcher::DepartmentOf(const v1::OutboxItem& item) {
  return item.has_notice() ? item.notice().department() : item.work_order().department();
}

int64_t Dispatcher::IssuedAt(const v1::OutboxItem& item) {
  return item.has_notice() ? item.notice().due_at_ms() : item.work_order().issued_at_ms();
}

void Dispatcher::Enqueue(std::vector<OutboxEntry> entries) {
  if (entries.empty()) return;
  {
    std::lock_guard lock(mu_);
    pending_ += static_cast<int64_t>(entries.size());
    for (auto& e : entries) {
      ++LaneFor(DepartmentOf(e.item)).pending;
      incoming_.push_back(std::move(e));
    }
  }
  cv_.notify_one();
}

void Dispatcher::Reload(const std::string& department, uint64_t added) {
  {
    std::lock_guard lock(mu_);
    Lane& lane = LaneFor(department);
    lane.pending += static_cast<int64_t>(added);
    pending_ += static_cast<int64_t>(added);
    // Rows may now sit before the cursor: read the lane from its first row again. What is in
    // the window is skipped by key when it is read again.
    lane.on_disk = true;
    lane.cursor.clear();
  }
  cv_.notify_one();
}

uint64_t Dispatcher::pending() const {
  std::lock_guard lock(mu_);
  return static_cast<uint64_t>(std::max<int64_t>(0, pending_));
}

uint64_t Dispatcher::delivered() const {
  std::lock_guard lock(mu_);
  return delivered_;
}

std::vector<v1::DeliveryLane> Dispatcher::Lanes() const {
  std::lock_guard lock(mu_);
  const int64_t now = clock_.Now();
  std::vector<v1::DeliveryLane> out;
  for (const auto& [dept, lane] : lanes_) {
    v1::DeliveryLane& l = out.emplace_back();
    l.set_department(dept);
    l.set_endpoint(lane.endpoint);
    l.set_pending(static_cast<uint64_t>(std::max<int64_t>(0, lane.pending)));
    if (!lane.window.empty()) l.set_lag_ms(std::max<int64_t>(0, now - IssuedAt(lane.window.front().item)));
    if (lane.breaker) {
      l.set_breaker(BreakerName(lane.breaker->state));
      if (lane.breaker->state == Breaker::kOpen) l.set_breaker_until_ms(lane.breaker->until_ms);
    }
    l.set_attempts(lane.tries);
    l.set_last_error(lane.last_error);
    l.set_delivered(lane.delivered);
    l.set_dead(lane.dead);
    l.set_in_memory(lane.window.size());
  }
  return out;
}

void Dispatcher::Settle(const std::string& department, const std::string& token,
                        const v1::CommandResult& result) {
  {
    std::lock_guard lock(mu_);
    settlements_.push_back({department, token, result});
  }
  cv_.notify_one();
}

int64_t Dispatcher::Jitter(int64_t bound) {
  if (bound <= 0) return 0;
  return static_cast<int64_t>(rng_() % static_cast<uint64_t>(bound));
}

void Dispatcher::Log(const std::string& line) {
  if (hooks_.log) hooks_.log(line);
}

void Dispatcher::Refill(Lane& lane) {
  if (!lane.window.empty() || !lane.on_disk || !hooks_.load) return;
  std::vector<OutboxEntry> rows;
  Status st = hooks_.load(lane.department, lane.cursor, kWindow, rows);
  if (!st.ok()) {
    lane.last_error = "reading the outbox: " + st.message();
    lane.next_try_ms = clock_.Now() + policy_.backoff_base_ms();  // then read again
    return;
  }
  lane.on_disk = rows.size() == kWindow;
  for (auto& r : rows) {
    lane.cursor = r.key;
    lane.window.push_back(std::move(r));
  }
}

bool Dispatcher::NextTask(Lane& lane, int64_t now, Task& task) {
  // Loops past heads it gives up on (no adapter, too old); a failed move to the dead letters
  // sets next_try_ms ahead, which ends the loop.
  for (;;) {
    if (lane.in_flight || lane.next_try_ms > now) return false;
    Refill(lane);
    if (lane.window.empty() || lane.next_try_ms > now) return false;
    const OutboxEntry& head = lane.window.front();
    if (!lane.adapter) {
      DeadLetter(lane, "department " + lane.department + " has no adapter", now);
      continue;
    }
    const int64_t max_age_ms = static_cast<int64_t>(policy_.max_age_hours() * 3'600'000.0);
    if (now - IssuedAt(head.item) > max_age_ms) {
      char hours[32];
      std::snprintf(hours, sizeof hours, "%g", policy_.max_age_hours());
      DeadLetter(lane, std::string("undelivered ") + hours +
                           " h after it was issued (max age); last error: " +
                           (lane.tries == 0 || lane.last_error.empty() ? "none" : lane.last_error),
                 now);
      continue;
    }
    Breaker& b = *lane.breaker;
    bool probe = false;
    if (b.state != Breaker::kClosed) {
      if (b.probing || now < b.until_ms) return false;
      b.state = Breaker::kHalfOpen;
      b.probing = true;
      probe = true;
      Log("dispatch: breaker for " + lane.endpoint + " is half-open; probing with " + IdOf(head.item));
    }
    lane.in_flight = true;
    task = Task{&lane, head, probe};
    return true;
  }
}

Delivery Dispatcher::Attempt(const Task& task) {
  const v1::OutboxItem& item = task.entry.item;
  return item.has_notice() ? task.lane->adapter->DeliverNotice(item.notice())
                           : task.lane->adapter->Deliver(item.work_order());
}

void Dispatcher::DeadLetter(Lane& lane, const std::string& reason, int64_t now) {
  const OutboxEntry& head = lane.window.front();
  v1::DeadLetter letter;
  *letter.mutable_item() = head.item;
  letter.set_department(lane.department);
  letter.set_endpoint(lane.endpoint);
  letter.set_reason(reason);
  for (const auto& a : lane.history) *letter.add_attempts() = a;
  letter.set_dead_at_ms(now);
  Status st = hooks_.on_dead ? hooks_.on_dead(head.key, letter) : Status::Ok();
  if (!st.ok()) {
    // Still in the outbox: keep it at the head and try again later.
    lane.last_error = "moving to the dead letters: " + st.message();
    lane.next_try_ms = now + std::max<int64_t>(1, policy_.backoff_base_ms());
    return;
  }
  Log("dispatch: " + IdOf(head.item) + " for " + lane.department + " is a dead letter: " + reason);
  lane.window.pop_front();
  lane.attempts = lane.tries = 0;
  lane.history.clear();
  lane.next_try_ms = 0;
  --lane.pending;
  --pending_;
  ++lane.dead;
}

void Dispatcher::Finish(const Done& d) {
  Lane& lane = *d.lane;
  lane.in_flight = false;
  if (lane.window.empty() || lane.window.front().key != d.key) return;  // cannot happen
  Breaker& b = *lane.breaker;
  if (d.probe) b.probing = false;
  const std::string id = IdOf(lane.window.front().item);
  ++lane.tries;
  AttemptRecord rec{lane.department, lane.endpoint, id, d.started_ms,
                    d.finished_ms - d.started_ms, lane.tries, d.probe, d.result, 0, 0};
  if (d.result.outcome != Delivery::Outcome::kRetry) {
    // The endpoint answered: it is up, whatever it thought of this item.
    if (b.state != Breaker::kClosed)
      Log("dispatch: breaker for " + lane.endpoint + " closed: " + id + " went through");
    b.state = Breaker::kClosed;
    b.failures = 0;
    b.cooldown_ms = policy_.breaker_cooldown_ms();
  }
  if (d.result.outcome == Delivery::Outcome::kDelivered) {
    if (hooks_.on_attempt) hooks_.on_attempt(rec);
    if (hooks_.on_delivered) hooks_.on_delivered({d.key});
    lane.window.pop_front();
    lane.attempts = lane.tries = 0;
    lane.history.clear();
    lane.next_try_ms = 0;
    lane.last_error.clear();
    --lane.pending;
    --pending_;
    ++lane.delivered;
    ++delivered_;
    return;
  }
  const int64_t now = d.finished_ms;
  lane.last_error = d.result.error;
  if (lane.history.size() < kMaxHistory) {
    v1::DeliveryAttempt& a = lane.history.emplace_back();
    a.set_at_ms(d.started_ms);
    a.set_error(d.result.error);
  }
  if (d.result.outcome == Delivery::Outcome::kRejected) {
    if (hooks_.on_attempt) hooks_.on_attempt(rec);
    DeadLetter(lane, "refused by " + lane.endpoint + ": " + d.result.error, now);
    return;
  }
  // kRetry: the endpoint's failure, and the item's unless the breaker was already open.
  if (d.probe) {
    b.cooldown_ms = std::min<int64_t>(b.cooldown_ms * 2, policy_.breaker_cooldown_cap_ms());
    b.state = Breaker::kOpen;
    b.until_ms = now + b.cooldown_ms / 2 + Jitter(b.cooldown_ms - b.cooldown_ms / 2 + 1);
    Log("dispatch: breaker for " + lane.endpoint + " stays open: the probe failed (" +
        d.result.error + ")");
  } else {
    ++lane.attempts;
    if (b.state == Breaker::kClosed && ++b.failures >= static_cast<int>(policy_.breaker_failures())) {
      b.state = Breaker::kOpen;
      b.until_ms = now + b.cooldown_ms / 2 + Jitter(b.cooldown_ms - b.cooldown_ms / 2 + 1);
      Log("dispatch: breaker for " + lane.endpoint + " opened after " + std::to_string(b.failures) +
          " consecutive failures (last: " + d.result.error + ")");
    }
  }
  const int shift = std::min(lane.attempts, 30);
  const int64_t bound = std::min<int64_t>(policy_.backoff_cap_ms(),
                                          static_cast<int64_t>(policy_.backoff_base_ms()) << shift);
  int64_t wait = Jitter(bound);
  if (d.result.retry_after_ms >= 0)
    wait = std::max<int64_t>(wait, std::min<int64_t>(d.result.retry_after_ms, policy_.max_retry_after_ms()));
  lane.next_try_ms = now + wait;
  rec.next_try_ms = lane.next_try_ms;
  rec.backoff_bound_ms = bound;
  if (hooks_.on_attempt) hooks_.on_attempt(rec);
  if (lane.attempts >= static_cast<int>(policy_.max_attempts()))
    DeadLetter(lane, "undelivered after " + std::to_string(lane.attempts) +
                         " attempts (max attempts); last error: " + d.result.error,
               now);
}

void Dispatcher::RunOnce() { Round(/*poll_always=*/true); }

void Dispatcher::Round(bool poll_always) {
  std::vector<Settlement> settled;
  std::vector<Task> tasks;
  {
    std::lock_guard lock(mu_);
    settled.swap(settlements_);
    for (auto& e : incoming_) {
      Lane& lane = LaneFor(DepartmentOf(e.item));
      // Already read from disk (the lane read past it before this arrived), or behind rows
      // still on disk: the disk has it.
      if (!lane.cursor.empty() && e.key <= lane.cursor) continue;
      if (lane.on_disk || lane.window.size() >= kWindow) {
        lane.on_disk = true;
        continue;
      }
      lane.cursor = e.key;
      lane.window.push_back(std::move(e));
    }
    incoming_.clear();
    for (auto& d : done_) Finish(d);
    done_.clear();
    const int64_t now = clock_.Now();
    for (auto& [dept, lane] : lanes_) {
      Task t;
      if (NextTask(lane, now, t)) tasks.push_back(std::move(t));
    }
  }
  for (const auto& s : settled)
    if (auto a = adapters_.find(s.department); a != adapters_.end()) a->second->Settle(s.token, s.result);
  if (policy_.workers() == 0) {
    // Inline: deliver, finish, and go on while some lane can.
    while (!tasks.empty()) {
      std::vector<Done> results;
      for (const auto& t : tasks) {
        const int64_t start = clock_.Now();
        Delivery r = Attempt(t);
        results.push_back({t.lane, t.entry.key, t.probe, start, clock_.Now(), std::move(r)});
      }
      tasks.clear();
      std::lock_guard lock(mu_);
      for (const auto& d : results) Finish(d);
      const int64_t now = clock_.Now();
      for (auto& [dept, lane] : lanes_) {
        Task t;
        if (NextTask(lane, now, t)) tasks.push_back(std::move(t));
      }
    }
  } else if (!tasks.empty()) {
    {
      std::lock_guard lock(work_mu_);
      for (auto& t : tasks) tasks_.push_back(std::move(t));
    }
    work_cv_.notify_all();
  }
  // Replies are polled on the real clock: a virtual one may stand still.
  const int64_t steady = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
  if (!poll_always && steady - last_poll_ms_ < kPollIntervalMs) return;
  last_poll_ms_ = steady;
  std::vector<InboundReply> replies;
  for (auto& [dept, adapter] : adapters_) {
    for (auto& r : adapter->PollReplies()) {
      r.department = dept;
      replies.push_back(std::move(r));
    }
  }
  if (!replies.empty() && hooks_.on_replies) hooks_.on_replies(std::move(replies));
}

void Dispatcher::Work() {
  for (;;) {
    Task t;
    {
      std::unique_lock lock(work_mu_);
      work_cv_.wait(lock, [this] { return work_stop_ || !tasks_.empty(); });
      if (work_stop_) return;
      t = std::move(tasks_.front());
      tasks_.pop_front();
    }
    const int64_t start = clock_.Now();
    Delivery r = Attempt(t);
    {
      std::lock_guard lock(mu_);
      done_.push_back({t.lane, t.entry.key, t.probe, start, clock_.Now(), std::move(r)});
    }
    cv_.notify_one();
  }
}

int64_t Dispatcher::NextWakeMs(int64_t now) const {
  int64_t wake = now + kPollIntervalMs;
  for (const auto& [dept, lane] : lanes_) {
    if (lane.in_flight || (lane.window.empty() && !lane.on_disk)) continue;
    int64_t at = std::max(now, lane.next_try_ms);
    if (lane.breaker && lane.breaker->state != Breaker::kClosed) {
      if (lane.breaker->probing) continue;  // woken by the probe's result
      at = std::max(at, lane.breaker->until_ms);
    }
    wake = std::min(wake, at);
  }
  return wake;
}

void Dispatcher::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      const int64_t now = clock_.Now();
      const int64_t wait = std::max<int64_t>(0, NextWakeMs(now) - now);
      cv_.wait_for(lock, std::chrono::milliseconds(wait), [this] {
        return stop_ || !incoming_.empty() || !settlements_.empty() || !done_.empty();
      });
      if (stop_) return;
    }
    Round(/*poll_always=*/false);
  }
}

}  // namespace casebus::dispatch

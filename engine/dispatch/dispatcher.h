#pragma once
// Dispatcher: drains the outbox to the departments' adapters on its own thread.
//
// Operation: work orders arrive after their batch is committed (Enqueue) and, on start, from
// the outbox rows that survived a restart. Each department has a FIFO; the head is delivered
// until its adapter acknowledges it, then `on_delivered` removes it from the outbox. A failed
// delivery is retried with exponential backoff (full jitter, capped), so per-department order
// is kept and one department's outage delays only its own orders. Every poll interval it also
// collects department replies and hands them to `on_replies` (which submits them as commands).
// Limitations: the backlog of a department is held in memory; the adapters issue keeps it on
// disk with a circuit breaker and dead letters.

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "engine/base/clock.h"
#include "engine/dispatch/adapter.h"

namespace casebus::dispatch {

struct DispatcherHooks {
  std::function<void(const std::vector<std::string>& ids)> on_delivered;
  // Must eventually answer every reply through Dispatcher::Settle().
  std::function<void(std::vector<InboundReply>)> on_replies;
};

class Dispatcher {
 public:
  Dispatcher(std::map<std::string, std::unique_ptr<Adapter>> adapters, DispatcherHooks hooks);
  ~Dispatcher();
  void Start();
  void Stop();
  // Thread-safe. REQUIRES: the items are committed.
  void Enqueue(std::vector<v1::OutboxItem> items);
  static const std::string& IdOf(const v1::OutboxItem& item);
  static const std::string& DepartmentOf(const v1::OutboxItem& item);
  // Thread-safe: the engine's result for a reply handed to on_replies.
  void Settle(const std::string& department, const std::string& token,
              const v1::CommandResult& result);
  uint64_t pending() const;
  uint64_t delivered() const;
  // Runs one round on the caller's thread (tests, the demo). now: steady ms for backoff.
  void RunOnce(int64_t now_ms);

 private:
  struct Lane {
    std::deque<v1::OutboxItem> queue;
    int attempts = 0;
    int64_t next_try_ms = 0;
    std::string last_error;
  };
  void Loop();

  std::map<std::string, std::unique_ptr<Adapter>> adapters_;
  DispatcherHooks hooks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::OutboxItem> incoming_;
  struct Settlement {
    std::string department, token;
    v1::CommandResult result;
  };
  std::vector<Settlement> settlements_;
  std::map<std::string, Lane> lanes_;  // dispatch thread only
  uint64_t pending_ = 0, delivered_ = 0;
  bool stop_ = false;
  std::thread thread_;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;
};

}  // namespace casebus::dispatch

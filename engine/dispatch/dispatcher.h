#pragma once
// Dispatcher: delivers the outbox to the departments' adapters, at least once.
//
// Operation. Each department has a lane: a window of its oldest undelivered outbox rows, at
// most kWindow in memory; the rest stay on disk and are read a window at a time, so a long
// outage costs disk, not memory. A lane delivers its head, one item at a time, so a case's
// items reach a department in the order they were made. Deliveries of different lanes run on
// a pool of workers: a slow endpoint holds one worker, not the other departments.
//   - A failed attempt (Delivery::kRetry) is retried after a full-jitter backoff, uniform in
//     [0, min(cap, base·2^attempts)), or after the endpoint's Retry-After when that is longer
//     (cut to max_retry_after_ms).
//   - Each endpoint (Adapter::Endpoint()) has a circuit breaker: after breaker_failures
//     consecutive failures it opens and its lanes wait; after a cool-down, jittered to
//     ×0.5–1, one probe goes; success closes it, failure reopens it with the cool-down doubled
//     (up to a cap). Attempts made while the breaker is open (the probes) do not count toward
//     an item's max_attempts: the endpoint failed, not the item.
//   - An item the endpoint refused for good (kRejected), or past max_attempts, or undelivered
//     max_age after it was issued, moves to the dead letters (on_dead: one synced batch with
//     the outbox row's deletion) with every attempt and the reason.
// Every poll interval it also collects department replies and hands them to on_replies.
//
// Threads: one dispatch thread schedules; `workers` threads deliver. With workers = 0 nothing
// runs on its own: RunOnce() delivers inline (tests drive it with a ManualClock).
// Time: the Clock (wall ms) drives backoff, cool-downs and ages.

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/base/clock.h"
#include "engine/dispatch/adapter.h"

namespace casebus::dispatch {

// One outbox row: its store key and the item.
struct OutboxEntry {
  std::string key;
  v1::OutboxItem item;
};

// One delivery attempt, as the dispatcher saw it (tests, logs, metrics).
struct AttemptRecord {
  std::string department, endpoint, id;
  int64_t at_ms = 0;         // when the attempt started
  int64_t took_ms = 0;
  int attempt = 0;           // this item's attempts so far, this one included
  bool probe = false;        // a half-open breaker's probe
  Delivery result;
  int64_t next_try_ms = 0;   // kRetry: the lane's next attempt, at the earliest
  int64_t backoff_bound_ms = 0;  // kRetry: the full-jitter bound the wait was drawn under
};

struct DispatcherHooks {
  // Appends up to `max` outbox rows of `department` with keys after `after` ("": from its
  // first), in key order.
  std::function<Status(const std::string& department, const std::string& after, size_t max,
                       std::vector<OutboxEntry>& out)>
      load;
  // Delivered rows, to delete. Called before the lane reads the disk again.
  std::function<void(const std::vector<std::string>& keys)> on_delivered;
  // Moves the row to the dead letters. Until it returns OK the item stays at its lane's head.
  std::function<Status(const std::string& key, const v1::DeadLetter& letter)> on_dead;
  // Must eventually answer every reply through Dispatcher::Settle().
  std::function<void(std::vector<InboundReply>)> on_replies;
  std::function<void(const std::string& line)> log;  // breaker changes, dead letters
  std::function<void(const AttemptRecord&)> on_attempt;
};

class Dispatcher {
 public:
  static constexpr size_t kWindow = 256;  // outbox rows per lane held in memory

  // REQUIRES: every policy field set (config::ApplyDeliveryDefaults), workers 0 or more.
  Dispatcher(std::map<std::string, std::unique_ptr<Adapter>> adapters, DispatcherHooks hooks,
             const v1::DeliveryPolicy& policy, const Clock& clock, uint64_t seed = 0x5eed);
  ~Dispatcher();
  // What each department had in the outbox when the engine opened (their rows are read from
  // disk as the lanes need them). REQUIRES: before Start() and before the first Enqueue().
  void SetBacklog(const std::map<std::string, uint64_t>& pending);
  void Start();
  void Stop();
  // Thread-safe. REQUIRES: the rows are committed, and come in the order of their keys.
  void Enqueue(std::vector<OutboxEntry> entries);
  // Thread-safe: `added` rows were committed to the department out of key order (an
  // operator's dead-letter retry); the lane reads its rows from the disk again.
  void Reload(const std::string& department, uint64_t added);
  static const std::string& IdOf(const v1::OutboxItem& item);
  static const std::string& DepartmentOf(const v1::OutboxItem& item);
  static int64_t IssuedAt(const v1::OutboxItem& item);
  // Thread-safe: the engine's result for a reply handed to on_replies.
  void Settle(const std::string& department, const std::string& token,
              const v1::CommandResult& result);
  uint64_t pending() const;
  uint64_t delivered() const;
  // Thread-safe snapshot, one row per lane, by department.
  std::vector<v1::DeliveryLane> Lanes() const;
  // One scheduling round on the caller's thread. With workers = 0 it delivers inline until
  // every lane waits (backoff, breaker, empty); otherwise it hands deliveries to the workers.
  void RunOnce();

 private:
  struct Breaker {
    enum State { kClosed, kOpen, kHalfOpen } state = kClosed;
    int failures = 0;        // consecutive
    int64_t until_ms = 0;    // kOpen: no probe before this
    int64_t cooldown_ms = 0; // the next cool-down's bound
    bool probing = false;
  };
  struct Lane {
    std::string department;
    Adapter* adapter = nullptr;
    Breaker* breaker = nullptr;
    std::string endpoint;
    std::deque<OutboxEntry> window;
    bool on_disk = true;  // rows after `cursor` may be on disk and not in the window
    std::string cursor;   // the largest key taken into the window
    bool in_flight = false;
    int attempts = 0;     // counted failed attempts of the head
    int tries = 0;        // every attempt of the head, probes included
    std::vector<v1::DeliveryAttempt> history;  // of the head
    int64_t next_try_ms = 0;
    std::string last_error;
    // Counted when rows are enqueued (or found at open), uncounted when delivered or dead: a
    // row read from disk may be delivered before its Enqueue is counted, so briefly negative.
    int64_t pending = 0;
    uint64_t delivered = 0, dead = 0;
  };
  struct Task {
    Lane* lane;
    OutboxEntry entry;  // a copy: the lane's window may move while the worker runs
    bool probe;
  };
  struct Done {
    Lane* lane;
    std::string key;
    bool probe;
    int64_t started_ms, finished_ms;
    Delivery result;
  };
  struct Settlement {
    std::string department, token;
    v1::CommandResult result;
  };

  // RunOnce's work; replies are polled every kPollIntervalMs unless poll_always.
  void Round(bool poll_always);
  Lane& LaneFor(const std::string& department);  // REQUIRES: mu_
  // Takes rows into the lane's window from disk when it ran dry. REQUIRES: mu_.
  void Refill(Lane& lane);
  // The lane's next delivery, if it may go now; marks it in flight. REQUIRES: mu_.
  bool NextTask(Lane& lane, int64_t now, Task& task);
  void Finish(const Done& done);  // REQUIRES: mu_
  void DeadLetter(Lane& lane, const std::string& reason, int64_t now);  // REQUIRES: mu_
  static Delivery Attempt(const Task& task);
  int64_t Jitter(int64_t bound);  // uniform [0, bound); REQUIRES: mu_
  void Log(const std::string& line);
  void Loop();
  void Work();
  int64_t NextWakeMs(int64_t now) const;  // REQUIRES: mu_

  std::map<std::string, std::unique_ptr<Adapter>> adapters_;
  DispatcherHooks hooks_;
  v1::DeliveryPolicy policy_;
  const Clock& clock_;
  std::mt19937_64 rng_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Lane> lanes_;
  std::map<std::string, Breaker> breakers_;  // by endpoint
  std::vector<OutboxEntry> incoming_;
  std::vector<Settlement> settlements_;
  std::vector<Done> done_;
  int64_t pending_ = 0;  // as Lane::pending
  uint64_t delivered_ = 0;
  bool stop_ = false;
  int64_t last_poll_ms_ = 0;  // RunOnce's caller only

  std::mutex work_mu_;
  std::condition_variable work_cv_;
  std::deque<Task> tasks_;
  bool work_stop_ = false;
  std::thread thread_;
  std::vector<std::thread> workers_;
};

}  // namespace casebus::dispatch

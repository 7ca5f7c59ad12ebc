#pragma once
// Escalation: the ladder of each stage and the timer queue that fires it.
//
// EscalationLadder — the config's steps per stage, ordered by fraction, and who each step
// notifies for a given case. Immutable; any thread.
// TimerQueue — the next due step of every running stage clock, ordered by instant. Owned by
// the CaseMachine (shard thread). A tick pops only what is due, so its cost grows with what
// fires, not with the number of open cases; each case holds at most one entry per stage.

#include <absl/container/btree_set.h>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "casebus/v1/case.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/base/clock.h"

namespace casebus::core {

class EscalationLadder {
 public:
  explicit EscalationLadder(const v1::CityConfig& config);
  // The stage's steps, ascending by fraction.
  const std::vector<v1::EscalationStep>& Steps(v1::Stage stage) const;
  // The department a step notifies about case c ("" when nobody is configured).
  std::string Target(const v1::EscalationStep& step, const v1::Case& c) const;

 private:
  std::vector<v1::EscalationStep> accept_, handle_, verify_, none_;
  std::unordered_map<std::string, std::string> district_centers_;
  std::string leadership_;
};

struct TimerKey {
  Millis at;
  uint64_t case_id;
  v1::Stage stage;
  auto operator<=>(const TimerKey&) const = default;
};

class TimerQueue {
 public:
  void Add(const TimerKey& k) { keys_.insert(k); }
  bool Remove(const TimerKey& k) { return keys_.erase(k) > 0; }
  bool Due(Millis now) const { return !keys_.empty() && keys_.begin()->at <= now; }
  TimerKey PopFirst() {
    TimerKey k = *keys_.begin();
    keys_.erase(keys_.begin());
    return k;
  }
  // 0 when empty.
  Millis NextAt() const { return keys_.empty() ? 0 : keys_.begin()->at; }
  size_t size() const { return keys_.size(); }
  std::vector<TimerKey> All() const { return {keys_.begin(), keys_.end()}; }
  // f(key) for every key in due order; stops at the first false.
  template <typename F>
  bool ForEach(F&& f) const {
    for (const TimerKey& k : keys_)
      if (!f(k)) return false;
    return true;
  }

 private:
  // A B-tree: a few cache lines per lookup instead of a node per key (std::set), which the
  // insert and erase of every clock change paid for.
  absl::btree_set<TimerKey> keys_;
};

}  // namespace casebus::core

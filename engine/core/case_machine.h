#pragma once
// CaseMachine: the lifecycle rules of DESIGN.md's loop. Execute(command, now) decides whether
// a command is legal in the case's current state, turns it into events, applies them and
// returns the effects (the result for the submitter, the journal record to make durable, the
// work orders to put in the outbox). Replay() applies journaled events on recovery.
//
// Pure: no I/O and no clock; time comes in as `now`. Owned by one shard thread; not
// thread-safe. Invariants: every case's fields equal the fold of its history; request ids map
// to the result of the command that first used them, for at least the config's
// intake.request_id_window_hours.
//
// Memory: a case's live fields stay a v1::Case; its history (read only by people and tests)
// is kept encoded, a few dozen bytes per event, and decoded by CaseWithHistory. A case restored
// from a checkpoint stays as the checkpoint's bytes (the machine keeps them) until it is first
// used: a restart pays for the cases' indexes, not for a parsed copy of every case.

#include <array>
#include <functional>
#include <string_view>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <unordered_map>

#include <absl/container/flat_hash_map.h>
#include <vector>

#include "casebus/v1/case.pb.h"
#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"
#include "casebus/v1/journal.pb.h"
#include "casebus/v1/work_order.pb.h"
#include "engine/base/clock.h"
#include "engine/base/status.h"
#include "engine/core/deduper.h"
#include "engine/core/escalation.h"
#include "engine/core/ledger.h"
#include "engine/core/metrics_answer.h"
#include "engine/core/request_table.h"
#include "engine/core/router.h"
#include "engine/core/working_calendar.h"

namespace casebus::core {

struct Effects {
  v1::CommandResult result;
  v1::JournalRecord record;  // has events only when the command changed state
  std::vector<v1::WorkOrder> work_orders;
  std::vector<v1::Notice> notices;  // escalation notices to deliver
  bool Changed() const { return record.events_size() > 0; }
};

class CaseMachine {
 public:
  // offsets: the city zone's UTC offset changes (engine/config CalendarOffsets); empty means
  // the calendar's fixed utc_offset_minutes.
  static Result<std::unique_ptr<CaseMachine>> Create(std::shared_ptr<const v1::CityConfig> config,
                                                     std::vector<OffsetChange> offsets = {});

  Effects Execute(const v1::Command& command, Millis now);
  // Takes a reloaded config: categories and limits, routes, holidays and work windows, the
  // escalation ladder, metrics policy, names, new grids. Refused (with every reason, nothing
  // changed) when it would strand what is running: an open case's department, category or
  // grid gone; departments or their adapters, the intake limits, the dedup policy or the time
  // zone changed (those need a restart). Rules apply to what happens from now on; deadlines
  // already set stay.
  Status Reconfigure(std::shared_ptr<const v1::CityConfig> next);
  void Replay(const v1::JournalRecord& record);
  // For replaying a long stretch of journal (recovery): between the two calls, Replay folds
  // events into the cases and remembers request ids, and nothing else. What the cases imply —
  // the ledger, the timers, the duplicate index, the per-state counts — is taken out for each
  // case as the replay first touches it, and put back for all of them by EndBulkReplay, once
  // per case instead of once per event, on two threads (as a restore builds them); request
  // ids are indexed there too (RequestTable::Defer). The result
  // is the machine Replay alone makes. Nothing but Replay and Prefetch may be called between
  // the two; EndBulkReplay then BeginBulkReplay again gives a consistent machine mid-way.
  // A journal record read for a bulk replay, with the part of its replay that needs no
  // machine done beforehand by Prepare, on another thread: each event's history entry,
  // encoded. Replay(PreparedRecord&) takes the reported cases out of the record (no copy).
  struct PreparedRecord {
    v1::JournalRecord record;
    std::vector<std::string> history;  // by event
    bool prepared = false;             // false: Replay encodes the history itself
  };
  static void Prepare(PreparedRecord& p);
  // The same from the bytes p.record was parsed from, without serializing the events again.
  static void Prepare(PreparedRecord& p, std::string_view bytes);
  void Replay(PreparedRecord& p);
  void BeginBulkReplay();
  void EndBulkReplay();
  bool bulk_replaying() const { return bulk_; }
  // For a caller about to replay several records in a row: asks memory now for what
  // Replay(record) will touch first (its request id's slot, its cases' slots), so that a few
  // records later the replay finds them in the cache instead of waiting on each miss.
  void Prefetch(const v1::JournalRecord& record) const;
  // The machine's state as bytes (checkpoint.cc has the layout): every case with its history,
  // the remembered request ids, the counters no case holds. Timers, the duplicate index, the
  // ledger and the per-state counts are not written: restoring rebuilds them from the cases,
  // as applying their events built them, so a checkpoint restores under a reloaded config the
  // way the journal replays under it. `sink` gets the bytes in pieces of about 1 MiB.
  void WriteCheckpoint(const std::function<void(std::string_view)>& sink) const;
  // Restores WriteCheckpoint's bytes into a machine fresh from Create(). Corruption, naming
  // what and the byte offset, when they are not a whole checkpoint; the machine is then half
  // filled and must be thrown away. Two helper threads of its own (joined before it returns)
  // parse the cases and schedule their timers, and restore the request ids, while the calling
  // thread rebuilds the ledger and the duplicate index behind the parser.
  // The cases stay as `bytes` until first used, so the machine keeps them: `owner` (a mapped
  // file, say) must keep them alive and unchanged while the machine lives; without an owner
  // the machine keeps a copy.
  Status RestoreCheckpoint(std::string_view bytes, std::shared_ptr<const void> owner = nullptr);
  // Restored cases not yet used; ParseRestored(n) parses up to n of them (in id order) and
  // returns how many are left, for an idle shard to bring memory to its steady shape a slice
  // at a time instead of on the first query that scans every case.
  size_t restored_unparsed() const { return unparsed_; }
  size_t ParseRestored(size_t n);
  // Fires every ladder step due by `now`, in due order (after downtime: all of them, each
  // once). One Effects (journal record + notice) per step.
  std::vector<Effects> FireDue(Millis now);
  // The instant of the next due step; 0 when none is scheduled.
  Millis NextDueAt() const { return timers_.NextAt(); }
  size_t scheduled_timers() const { return timers_.size(); }
  // Timer entries added (true) and removed (false) since the last call, in order: the store
  // writes them as `due` rows in the same batch as the events that caused them.
  std::vector<std::pair<TimerKey, bool>> TakeTimerChanges() { return std::exchange(timer_changes_, {}); }
  // Every scheduled entry, in due order (recovery cross-checks the durable `due` rows).
  std::vector<TimerKey> ScheduledTimers() const { return timers_.All(); }
  size_t scheduled_timer_count() const { return timers_.size(); }
  // f(key) for each of them in due order, without copying them out; stops at the first false.
  template <typename F>
  bool ForEachScheduledTimer(F&& f) const {
    return timers_.ForEach(std::forward<F>(f));
  }
  v1::QueryResult Answer(const v1::Query& query, Millis now) const;
  // Ledger counters grouped by q.group_by over [from, to], with rates, index and ranks.
  v1::QueryResult AnswerMetrics(const v1::Metrics& q, Millis now) const;

  // The case's fields, without its history (history_size() is 0); nullptr when unknown.
  const v1::Case* Find(uint64_t id) const;
  // The case with its history decoded; nullopt when unknown.
  std::optional<v1::Case> CaseWithHistory(uint64_t id) const;
  size_t case_count() const { return cases_.size(); }
  // Calls f(case) for every case, history not included, in no particular order.
  template <typename F>
  void ForEachCase(F&& f) const {
    ScanFields([&f](uint64_t, const v1::Case& c) { f(c); });
  }
  // Encoded history bytes held for a case (memory accounting).
  size_t HistoryBytes(uint64_t id) const;
  size_t remembered_requests() const { return requests_.size(); }
  const v1::CityConfig& config() const { return *config_; }
  // The maintained closure counters (ledger.h).
  const Ledger& ledger() const { return ledger_; }
  // Ledger buckets changed since the last call (written with the batch that changed them).
  std::vector<Ledger::Bucket> TakeLedgerChanges() { return ledger_.TakeDirty(); }
  // A ledger counted afresh from every case's current fields: what the maintained one must
  // equal (`casebus ledger rebuild --verify`).
  Ledger Recount() const;
  const WorkingCalendar& calendar() const { return calendar_; }
  uint64_t next_case_id() const { return next_case_id_; }
  // The zone's UTC offset changes the machine was created with (for a fresh one like it).
  const std::vector<OffsetChange>& offsets() const { return offsets_; }

 private:
  // A case: its live fields and its history, encoded as Case field 34 entries (so parsing the
  // bytes into a Case appends to its history).
  //
  // A restored case starts as views into the checkpoint (backing_): `packed` its serialized
  // fields, `packed_history` its history. Fields() parses the fields and copies the history out
  // on first use, and the views are dropped: the checkpoint is let go when no view is left.
  struct Stored {
    mutable std::unique_ptr<v1::Case> parsed;  // null while `packed` holds the fields
    mutable std::string_view packed;
    mutable std::string history;
    mutable std::string_view packed_history;  // the history while `history` is empty
    // The ledger keys of the case's current contribution: the next event's lookups start
    // from them (a key whose name is unchanged needs no hashing).
    std::array<Ledger::KeyId, kDims> ledger_keys{};
    std::string_view History() const { return history.empty() ? packed_history : std::string_view(history); }
  };
  // The case's fields, parsed from its checkpoint bytes first when it was restored and not
  // used since (the pointer stays valid for the machine's life).
  const v1::Case& Fields(const Stored& s) const {
    if (!s.parsed) Unpack(s);
    return *s.parsed;
  }
  v1::Case& MutableFields(Stored& s) {
    if (!s.parsed) Unpack(s);
    return *s.parsed;
  }
  void Unpack(const Stored& s) const;
  // f(id, fields) for every case in id order; a case still packed is parsed into a scratch
  // message for the call (the reference is valid only during it), not kept.
  template <typename F>
  void ScanFields(F&& f) const {
    v1::Case scratch;
    cases_.ForEach([&](uint64_t id, const Stored& s) {
      if (s.parsed) return f(id, static_cast<const v1::Case&>(*s.parsed));
      (void)scratch.ParseFromArray(s.packed.data(), static_cast<int>(s.packed.size()));
      f(id, static_cast<const v1::Case&>(scratch));
    });
  }
  // Every case, indexed by its id: ids are handed out in order from 1 (next_case_id_), so a
  // case is found by two array indexings, with no hashing and no node per case. Chunks never
  // move, so references to cases stay valid as the table grows. Iterates in id order.
  class CaseTable {
   public:
    Stored* find(uint64_t id) {
      if (id >= capacity()) return nullptr;
      Slot& s = chunks_[id >> kShift][id & kMask];
      return s.present ? &s.stored : nullptr;
    }
    const Stored* find(uint64_t id) const { return const_cast<CaseTable*>(this)->find(id); }
    void Prefetch(uint64_t id) const {
      if (id < capacity()) __builtin_prefetch(&chunks_[id >> kShift][id & kMask]);
    }
    Stored& at(uint64_t id) { return *find(id); }  // the case must exist
    const Stored& at(uint64_t id) const { return *find(id); }
    // The case's slot, made present (and the table grown) when it was not.
    Stored& operator[](uint64_t id);
    size_t size() const { return size_; }
    template <typename F>  // f(id, const Stored&) for every case, in id order
    void ForEach(F&& f) const {
      for (size_t c = 0; c < chunks_.size(); ++c)
        for (size_t i = 0; i < kChunk; ++i)
          if (chunks_[c][i].present) f(static_cast<uint64_t>((c << kShift) | i), chunks_[c][i].stored);
    }

   private:
    static constexpr size_t kShift = 12, kChunk = size_t{1} << kShift, kMask = kChunk - 1;
    struct Slot {
      Stored stored;
      bool present = false;
    };
    uint64_t capacity() const { return static_cast<uint64_t>(chunks_.size()) << kShift; }
    std::vector<std::unique_ptr<Slot[]>> chunks_;
    size_t size_ = 0;
  };
  // Appends e's history entry: `encoded` (EncodeHistoryEntry's, made beforehand), or made here.
  static void AppendHistory(Stored& s, const v1::CaseEvent& e, std::string_view encoded = {});
  static void EncodeHistoryEntry(const v1::CaseEvent& e, std::string& out);
  static void EncodeHistoryEntry(std::string_view serialized_event, std::string& out);
  // A case's share of the counts the cases imply: its ledger contribution, its per-state count,
  // its open supervision (the caller adds its timers, NextKeys, and its entry in the duplicate
  // index). CountOut takes out all of that, timers and duplicate entry too.
  void CountIn(Stored& s, const v1::Case& c);
  void CountOut(Stored& s, const v1::Case& c);
  // Replay of one event between BeginBulkReplay and EndBulkReplay, with its history entry
  // when prepared; `take`: the event's reported case, the caller's to give.
  void ReplayBulk(const v1::CaseEvent& e, std::string_view history, v1::Case* take);
  void ReplayBulk(v1::CaseEvent& e, std::string_view history);
  void Remember(const v1::JournalRecord& record);
  // Forgets request ids remembered longer ago than the window, as of `now`.
  void ForgetOldRequests(Millis now);
  int32_t DepartmentIndex(const std::string& id);
  using Events = std::vector<v1::CaseEvent>;

  CaseMachine(std::shared_ptr<const v1::CityConfig> config, Router router,
              std::vector<OffsetChange> offsets);

  Status Decide(const v1::Command& cmd, Millis now, Events& out, uint64_t& result_case);
  Status DecideReport(const v1::Command& cmd, Millis now, Events& out, uint64_t& result_case);
  Status DecideDispatch(const v1::Case& c, const v1::Dispatch& d, const std::string& actor,
                        Millis now, Events& out);
  Status DecideVerify(const v1::Case& c, const v1::Verify& v, Millis now, Events& out);
  Status DecideMerge(const v1::Merge& m, Events& out);
  Status DecideExtension(const v1::Case& c, const v1::Command& cmd, Millis now, Events& out);
  // Departments act only on their own cases and only as a department would.
  Status AuthorizeDepartment(const v1::Command& cmd, const v1::Case* c) const;

  // history: the event's entry when encoded beforehand; take: as ReplayBulk's.
  void Apply(const v1::CaseEvent& e, std::string_view history = {}, v1::Case* take = nullptr);
  // Apply, keeping the timer queue in step with the case's clocks.
  void ApplyScheduled(const v1::CaseEvent& e);
  // Sets each event's stage clocks and deadlines from the clock rules (case_clocks.cc).
  void AttachClocks(Events& events, Millis now) const;
  std::array<std::optional<TimerKey>, 4> NextKeys(const v1::Case& c) const;
  v1::Notice MakeNotice(const v1::Case& c, const v1::CaseEvent& e) const;
  v1::WorkOrder MakeWorkOrder(const v1::Case& c, Millis issued_at, std::string reason) const;
  // The stage limits in force for the case's category, condition and urgency (cached).
  const v1::StageLimits& LimitsFor(const v1::Case& c, v1::StageLimits& scratch) const;
  const v1::StageLimits& ComputeLimits(const v1::Case& c, v1::StageLimits& scratch) const;

  std::shared_ptr<const v1::CityConfig> config_;
  Router router_;
  WorkingCalendar calendar_;
  EscalationLadder ladder_;
  TimerQueue timers_;
  Ledger ledger_;
  std::array<int64_t, 16> by_state_{};  // cases per CaseState number
  UnitNames unit_names_;  // for metrics answers
  uint64_t escalations_ = 0;       // EV_ESCALATED applied
  int64_t supervisions_open_ = 0;  // cases with supervision_open
  std::vector<std::pair<TimerKey, bool>> timer_changes_;
  bool replaying_ = false;  // Replay(): the due rows exist already
  bool bulk_ = false;       // between BeginBulkReplay and EndBulkReplay
  std::vector<bool> counted_out_;  // by case id: its share is out until EndBulkReplay
  std::vector<uint64_t> touched_;  // the case ids counted_out_ holds, in the order touched
  Deduper deduper_;
  absl::flat_hash_map<std::string, const v1::Category*> categories_;
  // LimitsFor's results by "category\x1fcondition" + U|N; cleared by Reconfigure.
  mutable absl::flat_hash_map<std::string, std::unique_ptr<v1::StageLimits>> limits_cache_;
  absl::flat_hash_map<std::string, const v1::Department*> departments_;
  absl::flat_hash_map<std::string, bool> grids_;
  CaseTable cases_;
  // What a retry with the same request_id gets back. The work order, when the command issued
  // one, is "<work_order_case>-<work_order_n>" for the department departments_by_index_[dept].
  RequestTable requests_;
  Millis request_window_ms_ = 0;
  std::vector<OffsetChange> offsets_;  // the zone's offsets, for a reloaded calendar
  // Configs replaced by Reconfigure, kept alive: lookups made before a reload may still hold
  // pointers into them.
  std::vector<std::shared_ptr<const v1::CityConfig>> retired_configs_;
  std::vector<std::string> departments_by_index_;  // RequestEntry::department → id
  absl::flat_hash_map<std::string, int32_t> department_index_;
  uint64_t next_case_id_ = 1;
  // What restored cases' views point into (the checkpoint), and how many are still packed.
  // Let go when the last packed case is parsed (Unpack).
  mutable std::shared_ptr<const void> backing_;
  mutable size_t unparsed_ = 0;
  uint64_t parse_cursor_ = 1;  // ParseRestored goes on from here
};

// 64-bit FNV-1a: stable across builds, so hashes kept in the journal stay comparable.
uint64_t PayloadHash(std::string_view bytes);
// The case state for people: "dispatched".
std::string StateName(v1::CaseState s);

}  // namespace casebus::core

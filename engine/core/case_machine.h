#pragma once
// CaseMachine: the lifecycle rules of DESIGN.md's loop. Execute(command, now) decides whether
// a command is legal in the case's current state, turns it into events, applies them and
// returns the effects (the result for the submitter, the journal record to make durable, the
// work orders to put in the outbox). Replay() applies journaled events on recovery.
//
// Pure: no I/O and no clock; time comes in as `now`. Owned by one shard thread; not
// thread-safe. Invariants: every case's fields equal the fold of its history; request ids map
// to the result of the command that first used them.

#include <array>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <unordered_map>
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
  void Replay(const v1::JournalRecord& record);
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
  v1::QueryResult Answer(const v1::Query& query, Millis now) const;

  const v1::Case* Find(uint64_t id) const;
  const std::unordered_map<uint64_t, v1::Case>& cases() const { return cases_; }
  const v1::CityConfig& config() const { return *config_; }
  const WorkingCalendar& calendar() const { return calendar_; }
  uint64_t next_case_id() const { return next_case_id_; }

 private:
  // What a retry with the same request_id gets back.
  struct RequestEntry {
    uint64_t payload_hash;
    uint64_t case_id;
    bool merged;
    std::string department, work_order_id;  // set when the command issued a work order
  };
  void Remember(const v1::JournalRecord& record);
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

  void Apply(const v1::CaseEvent& e);
  // Apply, keeping the timer queue in step with the case's clocks.
  void ApplyScheduled(const v1::CaseEvent& e);
  // Sets each event's stage clocks and deadlines from the clock rules (case_clocks.cc).
  void AttachClocks(Events& events, Millis now) const;
  std::array<std::optional<TimerKey>, 4> NextKeys(const v1::Case& c) const;
  v1::Notice MakeNotice(const v1::Case& c, const v1::CaseEvent& e) const;
  v1::WorkOrder MakeWorkOrder(const v1::Case& c, std::string reason) const;
  const v1::StageLimits& LimitsFor(const v1::Case& c, v1::StageLimits& scratch) const;

  std::shared_ptr<const v1::CityConfig> config_;
  Router router_;
  WorkingCalendar calendar_;
  EscalationLadder ladder_;
  TimerQueue timers_;
  Ledger ledger_;
  uint64_t escalations_ = 0;       // EV_ESCALATED applied
  int64_t supervisions_open_ = 0;  // cases with supervision_open
  std::vector<std::pair<TimerKey, bool>> timer_changes_;
  bool replaying_ = false;  // Replay(): the due rows exist already
  Deduper deduper_;
  std::unordered_map<std::string, const v1::Category*> categories_;
  std::unordered_map<std::string, const v1::Department*> departments_;
  std::unordered_map<std::string, bool> grids_;
  std::unordered_map<uint64_t, v1::Case> cases_;
  std::unordered_map<std::string, RequestEntry> requests_;
  uint64_t next_case_id_ = 1;
};

// 64-bit FNV-1a: stable across builds, so hashes kept in the journal stay comparable.
uint64_t PayloadHash(std::string_view bytes);
// The case state for people: "dispatched".
std::string StateName(v1::CaseState s);

}  // namespace casebus::core

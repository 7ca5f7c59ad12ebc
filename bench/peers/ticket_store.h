#pragma once
// TicketStore: casebus's lifecycle commands applied to a PostgreSQL ticket store
// (ticket_schema.h) the way a database-backed case system applies them, one transaction per
// command, synchronous_commit=on, statements prepared once per connection and sent one at a
// time as an application's data layer sends them (Style kApp, the default):
//
//   report    BEGIN; duplicate lookup (indexed SELECT: an open case of the category within
//             the dedup radius and window); no duplicate: INSERT the case … RETURNING id;
//             INSERT the history row (on the original when a duplicate); COMMIT
//   dispatch  BEGIN; SELECT … FOR UPDATE; route in app code (core::Router, excluding the
//             department that returned it); UPDATE status, dept, deadline (kept across
//             re-dispatch, like casebus's bundled handle deadline); INSERT history; COMMIT
//   others    BEGIN; UPDATE status … WHERE id = $1 AND status = ANY(legal from-states)
//             RETURNING id (no row: illegal, ROLLBACK); INSERT history; COMMIT
//
// Style kTuned is the same transaction in one round trip, as a careful hand-written data layer
// would send it: the whole command is one statement (data-modifying CTEs: the guarded UPDATE or
// the duplicate lookup + INSERT, and the history INSERT) run as its own transaction; dispatch
// reads the case first (no lock) and its write is guarded by the status it read.
//
// The legal transitions are casebus's (core::CaseMachine); a failed verification sends the
// case back to 'dispatched' (rework). Deadlines come from the category's handle limit on the
// city's working calendar (core::WorkingCalendar), as a ticket system's SLA calendar does.
//
// Thread safety: none; one TicketStore (and its connection) per client thread. The Router and
// the calendar are shared read-only and must outlive it.

#include <cstdint>
#include <string>
#include <unordered_map>

#include "bench/peers/pg_connection.h"
#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/core/router.h"
#include "engine/core/working_calendar.h"

namespace casebus::bench {

struct CityRules {
  const v1::CityConfig* config = nullptr;
  const core::Router* router = nullptr;
  const core::WorkingCalendar* calendar = nullptr;
};

class TicketStore {
 public:
  enum class Style {
    kApp,    // BEGIN; one statement at a time; COMMIT (4–5 round trips per command)
    kTuned,  // one statement per command (2 round trips for dispatch)
  };
  enum class Outcome {
    kCommitted,  // the command's transaction committed
    kMerged,     // a report that joined an open case (a history row on it, no new case)
    kRefused,    // illegal in the case's status, or no route: rolled back
  };
  struct Applied {
    Outcome outcome = Outcome::kRefused;
    uint64_t case_id = 0;  // the new case (report) or the changed one
  };

  // Connects, sets synchronous_commit for the session (on, unless `synchronous_commit` is false:
  // a reference point only, a commit then returns before its WAL flush) and prepares the
  // statements.
  static Result<TicketStore> Open(const std::string& conninfo, const CityRules& rules,
                                  Style style = Style::kApp, bool synchronous_commit = true);

  // Applies one lifecycle command. An error Status means the connection or the server failed
  // (the benchmark stops); an illegal command is Outcome::kRefused, not an error.
  Result<Applied> Apply(const v1::Command& cmd);

 private:
  TicketStore(PgConnection db, const CityRules& rules, Style style);
  Status PrepareAll();
  Result<Applied> Report(const v1::Command& cmd);
  Result<Applied> ReportTuned(const v1::Command& cmd);
  Result<Applied> Dispatch(const v1::Command& cmd);
  // The department and deadline (ms, "" when the category has no handle limit) for the case
  // in `row` (lock_case/read_case columns); false when no route matches.
  bool Route(const v1::Command& cmd, PGresult* row, std::string& dept, std::string& deadline) const;
  // kind: the history row's kind; to: the new status; from: a text[] literal of legal states.
  Result<Applied> Transition(const v1::Command& cmd, uint64_t id, const char* kind, const char* to,
                             const char* from, const std::string& detail);
  Result<Applied> Rollback(uint64_t id);
  Status AddHistory(const std::string& id, const char* kind, const v1::Command& cmd,
                    const std::string& detail);

  PgConnection db_;
  CityRules rules_;
  Style style_;
  double dedup_radius_m_, dedup_window_hours_, dlat_, dlon_;  // dlat_/dlon_: radius in degrees
  std::unordered_map<std::string, const v1::TimeLimit*> handle_limit_;  // by category code
};

}  // namespace casebus::bench

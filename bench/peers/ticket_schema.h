#pragma once
// The ticket store's schema, as a database-backed case system keeps it (FixMyStreet's
// `problem` + `comment`, Znuny's `ticket` + `ticket_history`, Zammad's `tickets` + `histories`):
// one row per case, updated in place, and an append-only history table.
//
//   cases(id bigserial PK, category, grid, lat, lon, source smallint, status text, dept,
//         created_at, deadline, payload jsonb)
//   case_events(id bigserial PK, case_id → cases, at, kind, actor, request_id, detail)
//
// Indexes a ticket system needs: the primary keys, (status, deadline) for the overdue list,
// (dept, status) for a department's queue, created_at for reports by period, case_events
// (case_id) for a case's history, and a partial (category, lat) index over open cases for the
// duplicate lookup at report time.
//
// Thread safety: free functions over the caller's connection.

#include <cstdint>
#include <string>
#include <vector>

#include "bench/peers/pg_connection.h"
#include "casebus/v1/config.pb.h"

namespace casebus::bench {

// The statuses a case leaves the open set with (core::IsOpen's complement).
inline constexpr const char* kClosedStatusList = "('closed','rejected','voided','merged')";

// Drops and re-creates both tables; indexes only when `with_indexes` (a bulk load builds them
// after the rows are in).
Status CreateSchema(PgConnection& db, bool with_indexes);
Status CreateIndexes(PgConnection& db);
// Empties both tables and restarts the ids, then CHECKPOINT (every run starts alike).
Status ResetTables(PgConnection& db);

// What the generated history draws from: the city's leaf categories, its grids and its
// departments (DOMAIN's even spread over departments, as BASELINES §4 Q1/Q2).
struct HistoryDraw {
  std::vector<std::string> categories, grids, departments;
  double lat = 0, lon = 0;  // a point of the city; rows scatter ±0.05° around it
};
HistoryDraw DrawFromConfig(const v1::CityConfig& config);

// INSERT … SELECT generate_series: n cases created in time order over the 12 months of 2026
// (session time zone), about 60 % closed, the rest spread over the open statuses, departments
// and categories uniform, a ~200-byte jsonb payload.
Status LoadHistory(PgConnection& db, const HistoryDraw& draw, uint64_t n);

// BASELINES §4 query (c): closure rate per department for March 2026.
inline constexpr const char* kClosureQuery =
    "SELECT dept, count(*) FILTER (WHERE status = 'closed')::float / count(*) AS closure_rate, "
    "count(*) FROM cases WHERE created_at >= '2026-03-01' AND created_at < '2026-04-01' "
    "GROUP BY dept ORDER BY dept";

}  // namespace casebus::bench

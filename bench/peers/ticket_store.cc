#include "bench/peers/ticket_store.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <cmath>
#include <cstdlib>

#include "bench/peers/ticket_schema.h"

// CASEBUS_RETURN_IF_ERROR for functions that return a Result.
#define RETURN_ERR_IF_ERROR(expr)   \
  do {                              \
    ::casebus::Status _st = (expr); \
    if (!_st.ok()) return Err(_st); \
  } while (0)

namespace casebus::bench {
namespace {

constexpr const char* kOpenStates =
    "{reported,registered,dispatched,accepted,returned,suspended,resolved,verified}";

struct Statement {
  const char* name;
  std::string sql;
};

// The duplicate lookup, parameters $1 category, $2 lat, $3 lon, $4/$5 the radius in degrees
// of latitude/longitude (the index range), $6 radius in metres, $7 window in hours. The
// distance is core::DistanceMetres's spherical formula.
std::string DuplicateLookup() {
  return std::string(
             "SELECT id FROM (SELECT id, created_at, 2 * 6371008.8 * asin(sqrt("
             "power(sin(radians(lat - $2::float8) / 2), 2) + cos(radians($2::float8)) * "
             "cos(radians(lat)) * power(sin(radians(lon - $3::float8) / 2), 2))) AS d "
             "FROM cases WHERE category = $1::text AND status NOT IN ") +
         kClosedStatusList +
         " AND lat BETWEEN $2::float8 - $4::float8 AND $2::float8 + $4::float8"
         " AND lon BETWEEN $3::float8 - $5::float8 AND $3::float8 + $5::float8"
         " AND created_at >= now() - $7::float8 * interval '1 hour') AS near"
         " WHERE d <= $6::float8 ORDER BY d, created_at, id LIMIT 1";
}

std::vector<Statement> Statements() {
  const std::string history = "INSERT INTO case_events (case_id, kind, actor, request_id, detail) ";
  return {
      // Style kApp.
      {"dup_near", DuplicateLookup()},
      {"dup_grid",
       std::string("SELECT id FROM cases WHERE category = $1 AND grid = $2 AND status NOT IN ") +
           kClosedStatusList +
           " AND created_at >= now() - $3::float8 * interval '1 hour' "
           "ORDER BY created_at, id LIMIT 1"},
      {"insert_case",
       "INSERT INTO cases (category, grid, lat, lon, source, status, payload) "
       "VALUES ($1, $2, $3, $4, $5, 'reported', $6::jsonb) RETURNING id"},
      {"insert_event", history + "VALUES ($1, $2, $3, $4, $5)"},
      {"lock_case",
       "SELECT status, category, grid, source, coalesce(dept, '') FROM cases "
       "WHERE id = $1 FOR UPDATE"},
      {"dispatch_case",
       "UPDATE cases SET status = 'dispatched', dept = $2, "
       "deadline = coalesce(deadline, to_timestamp($3::float8 / 1000)) WHERE id = $1"},
      {"transition",
       "UPDATE cases SET status = $2 WHERE id = $1 AND status = ANY($3::text[]) RETURNING id"},
      // Style kTuned: one statement per command. $8 grid, $9 source, $10 payload, $11 actor,
      // $12 request id, $13 the absorbed report's source.
      {"t_report",
       "WITH dup AS (" + DuplicateLookup() +
           "), ins AS (INSERT INTO cases (category, grid, lat, lon, source, status, payload) "
           "SELECT $1::text, $8::text, $2::float8, $3::float8, $9::smallint, 'reported', "
           "$10::jsonb WHERE NOT EXISTS (SELECT 1 FROM dup) RETURNING id), ev AS (" +
           history +
           "SELECT id, 'reported', $11::text, $12::text, '' FROM ins UNION ALL "
           "SELECT id, 'absorbed', $11::text, $12::text, $13::text FROM dup "
           "RETURNING case_id, kind) SELECT case_id, kind FROM ev"},
      {"read_case",
       "SELECT status, category, grid, source, coalesce(dept, '') FROM cases WHERE id = $1"},
      {"t_dispatch",
       "WITH u AS (UPDATE cases SET status = 'dispatched', dept = $2::text, "
       "deadline = coalesce(deadline, to_timestamp($3::float8 / 1000)) "
       "WHERE id = $1::bigint AND status = $4::text RETURNING id) " +
           history +
           "SELECT id, 'dispatched', $5::text, $6::text, $2::text FROM u RETURNING case_id"},
      {"t_transition",
       "WITH u AS (UPDATE cases SET status = $2::text WHERE id = $1::bigint "
       "AND status = ANY($3::text[]) RETURNING id) " +
           history + "SELECT id, $4::text, $5::text, $6::text, $7::text FROM u RETURNING case_id"},
  };
}

Millis WallNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

uint64_t Id(const char* text) { return std::strtoull(text, nullptr, 10); }

}  // namespace

TicketStore::TicketStore(PgConnection db, const CityRules& rules, Style style)
    : db_(std::move(db)), rules_(rules), style_(style) {
  const auto& dedup = rules.config->dedup();
  dedup_radius_m_ = dedup.radius_m() > 0 ? dedup.radius_m() : 50;
  dedup_window_hours_ = dedup.window_hours() > 0 ? dedup.window_hours() : 24;
  const double ref_lat = rules.config->grids_size() ? rules.config->grids(0).lat() : 0;
  dlat_ = dedup_radius_m_ / 111'195.0 * 1.01;  // degrees per metre on the sphere, 1 % slack
  dlon_ = dlat_ / std::max(0.01, std::cos(ref_lat * M_PI / 180.0));
  for (const auto& c : rules.config->categories()) {
    const v1::TimeLimit* limit = nullptr;
    if (c.limits().handle().value() > 0)
      limit = &c.limits().handle();
    else if (c.conditions_size() > 0 && c.conditions(0).limits().handle().value() > 0)
      limit = &c.conditions(0).limits().handle();
    handle_limit_[c.code()] = limit;
  }
}

Result<TicketStore> TicketStore::Open(const std::string& conninfo, const CityRules& rules,
                                      Style style, bool synchronous_commit) {
  auto db = PgConnection::Open(conninfo);
  if (!db) return Err(db.error());
  TicketStore store(std::move(*db), rules, style);
  RETURN_ERR_IF_ERROR(store.db_.Exec(synchronous_commit ? "SET synchronous_commit = on"
                                                        : "SET synchronous_commit = off"));
  RETURN_ERR_IF_ERROR(store.PrepareAll());
  return store;
}

Status TicketStore::PrepareAll() {
  for (const auto& s : Statements()) CASEBUS_RETURN_IF_ERROR(db_.Prepare(s.name, s.sql.c_str()));
  return Status::Ok();
}

Result<TicketStore::Applied> TicketStore::Apply(const v1::Command& cmd) {
  using C = v1::Command;
  switch (cmd.body_case()) {
    case C::kReport:
      return style_ == Style::kTuned && cmd.report().place().has_coordinates() ? ReportTuned(cmd)
                                                                               : Report(cmd);
    case C::kDispatch:
      return Dispatch(cmd);
    case C::kRegister:
      return Transition(cmd, cmd.register_().case_id(), "registered", "registered", "{reported}",
                        "");
    case C::kReject:
      return Transition(cmd, cmd.reject().case_id(), "rejected", "rejected", "{reported}",
                        cmd.reject().reason());
    case C::kAccept:
      return Transition(cmd, cmd.accept().case_id(), "accepted", "accepted", "{dispatched}", "");
    case C::kReturn:
      return Transition(cmd, cmd.return_().case_id(), "returned", "returned",
                        "{dispatched,accepted}", cmd.return_().reason());
    case C::kResolve: {
      const auto& r = cmd.resolve();
      return Transition(cmd, r.case_id(), "resolved", "resolved", "{accepted}",
                        r.evidence_size() ? r.evidence(0) : r.note());
    }
    case C::kVerify: {
      const auto& v = cmd.verify();
      if (v.passed()) return Transition(cmd, v.case_id(), "verified", "verified", "{resolved}", "");
      return Transition(cmd, v.case_id(), "rework", "dispatched", "{resolved}", v.reason());
    }
    case C::kClose:
      return Transition(cmd, cmd.close().case_id(), "closed", "closed", "{verified}", "");
    case C::kVoid:
      return Transition(cmd, cmd.void_().case_id(), "voided", "voided", kOpenStates,
                        cmd.void_().reason());
    default:
      return Err(Status::InvalidArgument("the ticket store does not model command " +
                                         std::to_string(static_cast<int>(cmd.body_case()))));
  }
}

Status TicketStore::AddHistory(const std::string& id, const char* kind, const v1::Command& cmd,
                               const std::string& detail) {
  auto r = db_.ExecPrepared("insert_event", {id.c_str(), kind, cmd.actor().c_str(),
                                             cmd.request_id().c_str(), detail.c_str()});
  return r ? Status::Ok() : r.error();
}

Result<TicketStore::Applied> TicketStore::Rollback(uint64_t id) {
  RETURN_ERR_IF_ERROR(db_.Exec("ROLLBACK"));
  return Applied{Outcome::kRefused, id};
}

Result<TicketStore::Applied> TicketStore::Report(const v1::Command& cmd) {
  const v1::Report& r = cmd.report();
  const v1::Place& p = r.place();
  const std::string lat = Num(p.lat()), lon = Num(p.lon()), window = Num(dedup_window_hours_);
  RETURN_ERR_IF_ERROR(db_.Exec("BEGIN"));
  Result<PgResult> dup =
      p.has_coordinates()
          ? db_.ExecPrepared("dup_near",
                             {r.category().c_str(), lat.c_str(), lon.c_str(), Num(dlat_).c_str(),
                              Num(dlon_).c_str(), Num(dedup_radius_m_).c_str(), window.c_str()})
          : db_.ExecPrepared("dup_grid", {r.category().c_str(), p.grid().c_str(), window.c_str()});
  if (!dup) return Err(dup.error());
  if (PQntuples(dup->get()) > 0) {
    const std::string original = PQgetvalue(dup->get(), 0, 0);
    RETURN_ERR_IF_ERROR(AddHistory(original, "absorbed", cmd, v1::Source_Name(r.source())));
    RETURN_ERR_IF_ERROR(db_.Exec("COMMIT"));
    return Applied{Outcome::kMerged, Id(original.c_str())};
  }
  std::string payload;
  if (!google::protobuf::util::MessageToJsonString(r, &payload).ok())
    return Err(Status::Internal("report → JSON failed"));
  const std::string source = std::to_string(static_cast<int>(r.source()));
  auto inserted = db_.ExecPrepared(
      "insert_case",
      {r.category().c_str(), p.grid().c_str(), p.has_coordinates() ? lat.c_str() : nullptr,
       p.has_coordinates() ? lon.c_str() : nullptr, source.c_str(), payload.c_str()});
  if (!inserted) return Err(inserted.error());
  const std::string id = PQgetvalue(inserted->get(), 0, 0);
  RETURN_ERR_IF_ERROR(AddHistory(id, "reported", cmd, ""));
  RETURN_ERR_IF_ERROR(db_.Exec("COMMIT"));
  return Applied{Outcome::kCommitted, Id(id.c_str())};
}

Result<TicketStore::Applied> TicketStore::ReportTuned(const v1::Command& cmd) {
  const v1::Report& r = cmd.report();
  std::string payload;
  if (!google::protobuf::util::MessageToJsonString(r, &payload).ok())
    return Err(Status::Internal("report → JSON failed"));
  const std::string source = std::to_string(static_cast<int>(r.source()));
  auto row = db_.ExecPrepared(
      "t_report",
      {r.category().c_str(), Num(r.place().lat()).c_str(), Num(r.place().lon()).c_str(),
       Num(dlat_).c_str(), Num(dlon_).c_str(), Num(dedup_radius_m_).c_str(),
       Num(dedup_window_hours_).c_str(), r.place().grid().c_str(), source.c_str(), payload.c_str(),
       cmd.actor().c_str(), cmd.request_id().c_str(), v1::Source_Name(r.source()).c_str()});
  if (!row) return Err(row.error());
  if (PQntuples(row->get()) != 1) return Err(Status::Internal("t_report wrote no history row"));
  const bool merged = std::string_view(PQgetvalue(row->get(), 0, 1)) == "absorbed";
  return Applied{merged ? Outcome::kMerged : Outcome::kCommitted, Id(PQgetvalue(row->get(), 0, 0))};
}

bool TicketStore::Route(const v1::Command& cmd, PGresult* row, std::string& dept,
                        std::string& deadline) const {
  v1::Case c;
  c.set_category(PQgetvalue(row, 0, 1));
  c.mutable_place()->set_grid(PQgetvalue(row, 0, 2));
  c.set_source(static_cast<v1::Source>(std::atoi(PQgetvalue(row, 0, 3))));
  dept = cmd.dispatch().department();
  if (dept.empty()) {
    const bool returned = std::string_view(PQgetvalue(row, 0, 0)) == "returned";
    auto route = rules_.router->Route(c, returned ? PQgetvalue(row, 0, 4) : "");
    if (!route) return false;
    dept = route->department();
  }
  const auto limit = handle_limit_.find(c.category());
  deadline = limit != handle_limit_.end() && limit->second != nullptr
                 ? std::to_string(rules_.calendar->Add(WallNow(), *limit->second))
                 : "";
  return true;
}

Result<TicketStore::Applied> TicketStore::Dispatch(const v1::Command& cmd) {
  const uint64_t case_id = cmd.dispatch().case_id();
  const std::string id = std::to_string(case_id);
  const bool tuned = style_ == Style::kTuned;
  if (!tuned) RETURN_ERR_IF_ERROR(db_.Exec("BEGIN"));
  auto row = db_.ExecPrepared(tuned ? "read_case" : "lock_case", {id.c_str()});
  if (!row) return Err(row.error());
  const std::string status = PQntuples(row->get()) ? PQgetvalue(row->get(), 0, 0) : "";
  std::string dept, deadline;
  if ((status != "registered" && status != "returned") || !Route(cmd, row->get(), dept, deadline))
    return tuned ? Result<Applied>(Applied{Outcome::kRefused, case_id}) : Rollback(case_id);
  const char* deadline_param = deadline.empty() ? nullptr : deadline.c_str();
  if (tuned) {
    auto written =
        db_.ExecPrepared("t_dispatch", {id.c_str(), dept.c_str(), deadline_param, status.c_str(),
                                        cmd.actor().c_str(), cmd.request_id().c_str()});
    if (!written) return Err(written.error());
    return Applied{PQntuples(written->get()) ? Outcome::kCommitted : Outcome::kRefused, case_id};
  }
  auto updated = db_.ExecPrepared("dispatch_case", {id.c_str(), dept.c_str(), deadline_param});
  if (!updated) return Err(updated.error());
  RETURN_ERR_IF_ERROR(AddHistory(id, "dispatched", cmd, dept));
  RETURN_ERR_IF_ERROR(db_.Exec("COMMIT"));
  return Applied{Outcome::kCommitted, case_id};
}

Result<TicketStore::Applied> TicketStore::Transition(const v1::Command& cmd, uint64_t case_id,
                                                     const char* kind, const char* to,
                                                     const char* from, const std::string& detail) {
  const std::string id = std::to_string(case_id);
  if (style_ == Style::kTuned) {
    auto written =
        db_.ExecPrepared("t_transition", {id.c_str(), to, from, kind, cmd.actor().c_str(),
                                          cmd.request_id().c_str(), detail.c_str()});
    if (!written) return Err(written.error());
    return Applied{PQntuples(written->get()) ? Outcome::kCommitted : Outcome::kRefused, case_id};
  }
  RETURN_ERR_IF_ERROR(db_.Exec("BEGIN"));
  auto updated = db_.ExecPrepared("transition", {id.c_str(), to, from});
  if (!updated) return Err(updated.error());
  if (PQntuples(updated->get()) == 0) return Rollback(case_id);
  RETURN_ERR_IF_ERROR(AddHistory(id, kind, cmd, detail));
  RETURN_ERR_IF_ERROR(db_.Exec("COMMIT"));
  return Applied{Outcome::kCommitted, case_id};
}

}  // namespace casebus::bench

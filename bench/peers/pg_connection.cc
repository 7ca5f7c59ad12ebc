#include "bench/peers/pg_connection.h"

#include <vector>

namespace casebus::bench {

Result<PgConnection> PgConnection::Open(const std::string& conninfo) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (c == nullptr) return Err(Status::Unavailable("libpq: out of memory"));
  PgConnection conn(c);
  if (PQstatus(c) != CONNECTION_OK)
    return Err(Status::Unavailable("cannot connect (" + conninfo + "): " + PQerrorMessage(c)));
  return conn;
}

Result<PgResult> PgConnection::Check(PGresult* r, const char* what) {
  PgResult result(r);
  const ExecStatusType st = result ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return result;
  std::string msg = std::string(what) + ": ";
  msg += result ? PQresultErrorMessage(r) : PQerrorMessage(conn_.get());
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  return Err(Status::IOError(msg));
}

Status PgConnection::Exec(const std::string& sql) {
  auto r = Check(PQexec(conn_.get(), sql.c_str()), sql.substr(0, 60).c_str());
  return r ? Status::Ok() : r.error();
}

Result<PgResult> PgConnection::Query(const std::string& sql) {
  return Check(PQexec(conn_.get(), sql.c_str()), sql.substr(0, 60).c_str());
}

Result<PgResult> PgConnection::QueryParams(const std::string& sql,
                                           std::initializer_list<const char*> params) {
  std::vector<const char*> values(params);
  return Check(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0),
               sql.substr(0, 60).c_str());
}

Status PgConnection::Prepare(const char* name, const char* sql) {
  auto r = Check(PQprepare(conn_.get(), name, sql, 0, nullptr), name);
  return r ? Status::Ok() : r.error();
}

Result<PgResult> PgConnection::ExecPrepared(const char* name,
                                            std::initializer_list<const char*> params) {
  std::vector<const char*> values(params);
  return Check(PQexecPrepared(conn_.get(), name, static_cast<int>(values.size()), values.data(),
                              nullptr, nullptr, 0),
               name);
}

Result<std::string> PgConnection::Scalar(const std::string& sql) {
  auto r = Query(sql);
  if (!r) return Err(r.error());
  if (PQntuples(r->get()) == 0) return std::string();
  return std::string(PQgetvalue(r->get(), 0, 0));
}

}  // namespace casebus::bench

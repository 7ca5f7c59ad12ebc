#pragma once
// PgConnection: one libpq connection with the few calls the peer benchmarks make, errors as
// Status values. Owns the PGconn; results are PgResult (PQclear on destruction).
// Thread safety: none; one connection per thread, as libpq requires.

#include <libpq-fe.h>

#include <initializer_list>
#include <memory>
#include <string>

#include "engine/base/status.h"

namespace casebus::bench {

struct PgResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultFree>;

class PgConnection {
 public:
  // conninfo: a libpq connection string ("host=127.0.0.1 port=5433 user=postgres dbname=peers").
  static Result<PgConnection> Open(const std::string& conninfo);

  // Simple-protocol execution of one or more statements (DDL, BEGIN, COMMIT, SET).
  Status Exec(const std::string& sql);
  // Simple-protocol query returning rows.
  Result<PgResult> Query(const std::string& sql);
  // Extended protocol with text parameters, unprepared (for one-off statements).
  Result<PgResult> QueryParams(const std::string& sql, std::initializer_list<const char*> params);

  Status Prepare(const char* name, const char* sql);
  // REQUIRES: `name` was prepared on this connection. A null parameter is SQL NULL.
  Result<PgResult> ExecPrepared(const char* name, std::initializer_list<const char*> params);

  // The first column of the first row of `sql`, as text ("" when there is no row).
  Result<std::string> Scalar(const std::string& sql);

  PGconn* raw() { return conn_.get(); }

 private:
  struct Close {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  explicit PgConnection(PGconn* c) : conn_(c) {}
  Result<PgResult> Check(PGresult* r, const char* what);

  std::unique_ptr<PGconn, Close> conn_;
};

}  // namespace casebus::bench

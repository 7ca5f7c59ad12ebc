#include "bench/peers/ticket_schema.h"

namespace casebus::bench {
namespace {

constexpr const char* kTables = R"sql(
DROP TABLE IF EXISTS case_events;
DROP TABLE IF EXISTS cases;
CREATE TABLE cases (
  id         bigserial PRIMARY KEY,
  category   text NOT NULL,
  grid       text NOT NULL,
  lat        double precision,
  lon        double precision,
  source     smallint NOT NULL,
  status     text NOT NULL,
  dept       text,
  created_at timestamptz NOT NULL DEFAULT now(),
  deadline   timestamptz,
  payload    jsonb NOT NULL
);
CREATE TABLE case_events (
  id         bigserial PRIMARY KEY,
  case_id    bigint NOT NULL REFERENCES cases (id),
  at         timestamptz NOT NULL DEFAULT now(),
  kind       text NOT NULL,
  actor      text NOT NULL,
  request_id text NOT NULL,
  detail     text
);
)sql";

// A text[] literal; every element quoted, so codes with any punctuation survive.
std::string PgArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

// One row per g: the random draws first (a subquery, so each row gets its own), then the
// columns. Times run from 2026-01-01 in steps of 365 days / n, as cases arrive.
constexpr const char* kLoadHistory = R"sql(
INSERT INTO cases (category, grid, lat, lon, source, status, dept, created_at, deadline, payload)
SELECT ($2::text[])[1 + floor(r_cat * array_length($2::text[], 1))::int],
       ($3::text[])[1 + floor(r_grid * array_length($3::text[], 1))::int],
       $5::float8 - 0.05 + r_lat * 0.1,
       $6::float8 - 0.05 + r_lon * 0.1,
       CASE WHEN r_src < 0.80 THEN 1 WHEN r_src < 0.92 THEN 2 WHEN r_src < 0.97 THEN 3 ELSE 4 END,
       CASE WHEN r_status < 0.60 THEN 'closed'
            ELSE (ARRAY['registered', 'dispatched', 'accepted', 'returned', 'resolved',
                        'verified', 'voided'])[1 + floor((r_status - 0.60) / 0.40 * 7)::int] END,
       ($4::text[])[1 + floor(r_dept * array_length($4::text[], 1))::int],
       t, t + interval '3 days',
       jsonb_build_object(
         'description', 'Overflowing litter bin beside the bus stop, bags on the pavement; case ' || g,
         'address', 'No. ' || (g % 997) || ' Hubin Road, near the east gate',
         'reporter', jsonb_build_object('name', 'inspector ' || (g % 500),
                                        'contact', '138' || lpad((g % 100000000)::text, 8, '0')),
         'evidence', 'photo-' || md5(g::text))
FROM (SELECT g, random() AS r_cat, random() AS r_grid, random() AS r_lat, random() AS r_lon,
             random() AS r_src, random() AS r_status, random() AS r_dept,
             timestamp '2026-01-01' + (g - 1) * (31536000.0 / $1::bigint) * interval '1 second' AS t
      FROM generate_series(1, $1::bigint) AS g) AS draw
)sql";

}  // namespace

Status CreateSchema(PgConnection& db, bool with_indexes) {
  CASEBUS_RETURN_IF_ERROR(db.Exec("SET client_min_messages = warning"));
  CASEBUS_RETURN_IF_ERROR(db.Exec(kTables));
  return with_indexes ? CreateIndexes(db) : Status::Ok();
}

Status CreateIndexes(PgConnection& db) {
  return db.Exec(std::string(R"sql(
CREATE INDEX cases_status_deadline ON cases (status, deadline);
CREATE INDEX cases_dept_status ON cases (dept, status);
CREATE INDEX cases_created_at ON cases (created_at);
CREATE INDEX case_events_case ON case_events (case_id);
CREATE INDEX cases_open_nearby ON cases (category, lat) WHERE status NOT IN )sql") +
                 kClosedStatusList + ";");
}

Status ResetTables(PgConnection& db) {
  CASEBUS_RETURN_IF_ERROR(db.Exec("TRUNCATE case_events, cases RESTART IDENTITY"));
  return db.Exec("CHECKPOINT");
}

HistoryDraw DrawFromConfig(const v1::CityConfig& config) {
  HistoryDraw d;
  for (const auto& c : config.categories())
    if (c.has_limits() || c.conditions_size() > 0) d.categories.push_back(c.code());
  for (const auto& g : config.grids()) d.grids.push_back(g.code());
  for (const auto& dept : config.departments()) d.departments.push_back(dept.id());
  if (config.grids_size() > 0) {
    d.lat = config.grids(0).lat();
    d.lon = config.grids(0).lon();
  }
  return d;
}

Status LoadHistory(PgConnection& db, const HistoryDraw& draw, uint64_t n) {
  if (draw.categories.empty() || draw.grids.empty() || draw.departments.empty())
    return Status::InvalidArgument(
        "the config has no categories, grids or departments to draw from");
  const std::string n_text = std::to_string(n), cats = PgArray(draw.categories),
                    grids = PgArray(draw.grids), depts = PgArray(draw.departments),
                    lat = std::to_string(draw.lat), lon = std::to_string(draw.lon);
  auto r = db.QueryParams(kLoadHistory, {n_text.c_str(), cats.c_str(), grids.c_str(), depts.c_str(),
                                         lat.c_str(), lon.c_str()});
  return r ? Status::Ok() : r.error();
}

}  // namespace casebus::bench

#include "engine/server/read_routes.h"

#include <boost/json.hpp>

#include "engine/query/dashboard.h"
#include "engine/query/metrics_json.h"

namespace casebus::server {
namespace {

// "metrics.from: ..." → field "from", reason "...".
HttpResponse QueryError(const v1::QueryResult& r) {
  std::string field, reason = r.message();
  if (const size_t colon = reason.find(": "); colon != std::string::npos && reason.rfind("metrics.", 0) == 0) {
    field = reason.substr(8, colon - 8);
    reason = reason.substr(colon + 2);
  }
  return CodeError(r.code(), field, reason);
}

void HandleClosure(Engine& engine, Gatekeeper& gate, const HttpRequest& req, HttpServer::Respond respond) {
  auto who = gate.Authenticate(req);
  if (auto* refusal = std::get_if<HttpResponse>(&who)) return respond(std::move(*refusal));
  for (const auto& [k, v] : req.query) {
    if (k.empty()) continue;  // "?group_by=x&" and a bare "?" carry an empty name: harmless
    if (k != "group_by" && k != "from" && k != "to")
      return respond(JsonError(400, k.substr(0, 64), "unknown parameter; expected group_by, from, to"));
  }
  auto g = req.query.find("group_by");
  if (g == req.query.end()) return respond(JsonError(400, "group_by", "required: one of " + query::GroupNames()));
  auto group = query::ParseGroup(g->second);
  if (!group)
    return respond(JsonError(400, "group_by", "\"" + g->second.substr(0, 64) + "\" is not one of " + query::GroupNames()));
  v1::Query q;
  *q.mutable_caller() = std::get<v1::Caller>(who);
  auto* m = q.mutable_metrics();
  m->set_group_by(*group);
  if (auto f = req.query.find("from"); f != req.query.end()) m->set_from(f->second.substr(0, 64));
  if (auto t = req.query.find("to"); t != req.query.end()) m->set_to(t->second.substr(0, 64));
  engine.Query(std::move(q), [respond](v1::QueryResult r) {
    if (r.code() != v1::OK) return respond(QueryError(r));
    HttpResponse resp;
    resp.body = boost::json::serialize(query::MetricsJson(r.metrics(), r.utc_offset_minutes()));
    respond(std::move(resp));
  });
}

// Three queries (status, departments, districts) gathered into one snapshot.
void HandleScrape(Engine& engine, query::Telemetry& telemetry, HttpServer::Respond respond) {
  struct Gather {
    std::mutex mu;
    int left = 3;
    query::Telemetry::Snapshot snap;
    std::string error;
  };
  auto g = std::make_shared<Gather>();
  auto done = [g, &telemetry, &engine, respond](int which, v1::QueryResult r) {
    std::unique_lock lock(g->mu);
    if (r.code() != v1::OK) g->error = r.message();
    else if (which == 0) g->snap.status = std::move(*r.mutable_status());
    else if (which == 1) g->snap.departments = std::move(*r.mutable_metrics());
    else g->snap.districts = std::move(*r.mutable_metrics());
    if (--g->left > 0) return;
    lock.unlock();
    if (!g->error.empty()) return respond(JsonError(503, "", "scrape: " + g->error));
    g->snap.queue_depth = engine.queue_depth();
    g->snap.status.set_healthy(engine.healthy());
    HttpResponse resp;
    resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp.body = telemetry.Render(g->snap);
    respond(std::move(resp));
  };
  v1::Query status;
  status.mutable_status();
  engine.Query(std::move(status), [done](v1::QueryResult r) { done(0, std::move(r)); });
  for (int which : {1, 2}) {
    v1::Query q;
    q.mutable_metrics()->set_group_by(which == 1 ? v1::BY_DEPARTMENT : v1::BY_DISTRICT);
    engine.Query(std::move(q), [done, which](v1::QueryResult r) { done(which, std::move(r)); });
  }
}

}  // namespace

void AddReadRoutes(HttpServer& http, Engine& engine, query::Telemetry& telemetry, Gatekeeper& gate) {
  http.Route("/v1/metrics/closure", {"GET"}, [&engine, &gate](const HttpRequest& req, HttpServer::Respond respond) {
    HandleClosure(engine, gate, req, std::move(respond));
  });
  http.Route("/metrics", {"GET"}, [&engine, &telemetry](const HttpRequest&, HttpServer::Respond respond) {
    HandleScrape(engine, telemetry, std::move(respond));
  });
  http.Route("/dashboard", {"GET"}, [](const HttpRequest&, HttpServer::Respond respond) {
    HttpResponse resp;
    resp.content_type = "text/html; charset=utf-8";
    resp.body = std::string(query::DashboardHtml());
    // Inline script and styles only; data comes from this origin; nothing else loads.
    resp.headers["Content-Security-Policy"] =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";
    respond(std::move(resp));
  });
  http.Route("/healthz", {"GET"}, [&engine](const HttpRequest&, HttpServer::Respond respond) {
    HttpResponse resp;
    resp.status = engine.healthy() ? 200 : 503;
    resp.body = engine.healthy() ? R"({"healthy":true})" : R"({"healthy":false})";
    respond(std::move(resp));
  });
}

}  // namespace casebus::server

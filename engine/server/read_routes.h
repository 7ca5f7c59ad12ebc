#pragma once
// The read side over HTTP: GET /v1/metrics/closure (JSON), GET /metrics (Prometheus text),
// GET /dashboard (the page), GET /healthz. Every answer comes from the engine's shard through
// Engine::Query, so it is consistent with what has been committed. /v1/metrics/closure needs a
// bearer token whose role may read metrics; /metrics, /healthz and the page itself (which
// holds no data) need none.

#include "engine/query/telemetry.h"
#include "engine/server/engine.h"
#include "engine/server/http_access.h"
#include "engine/server/http_server.h"

namespace casebus::server {

void AddReadRoutes(HttpServer& http, Engine& engine, query::Telemetry& telemetry, Gatekeeper& gate);

}  // namespace casebus::server

#pragma once
// The HTTP/JSON API (/v1/...): every command and query of the ZeroMQ intake, authenticated
// by bearer token and authorized by the one policy (engine/auth/policy.h) inside the engine.
// The OpenAPI 3 document engine/server/openapi.yaml describes exactly these routes (a test
// holds the two together) and is served at /v1/openapi.yaml.
//
//   POST /v1/cases                     a report (body: casebus.v1.Report)       201 + Location
//   GET  /v1/cases                     filters and paging (limit ≤ max_page_size, after=<id>)
//   GET  /v1/cases/{id}                the case, its history and routing decision
//   POST /v1/cases/{id}:{action}       register reject dispatch accept return extend
//                                      approveExtension denyExtension suspend resume resolve
//                                      verify close reopen merge void note supervisionReply
//   GET  /v1/workorders                a department's inbox (dispatched or accepted cases)
//   GET  /v1/status                    the engine's status
//   GET  /v1/deadletters               POST /v1/deadletters:retry, /v1/deadletters:drop
//   POST /v1/admin/reload              reloads the city config and the access file
//
// Every command needs an Idempotency-Key header: it is the command's request_id, with the
// intake's semantics (a retry gets the first result, the key reused for another command 422).

#include <functional>

#include "engine/server/engine.h"
#include "engine/server/http_access.h"
#include "engine/server/http_server.h"
#include "engine/server/json_api.h"

namespace casebus::server {

struct ApiOptions {
  JsonLimits json;
  uint32_t max_page_size = 1000;
  // Reloads config and access; an error leaves the old ones in place. Unset: 501.
  std::function<Status()> reload;
};

void AddApiRoutes(HttpServer& http, Engine& engine, Gatekeeper& gate, ApiOptions options);

// The OpenAPI document (embedded from engine/server/openapi.yaml).
std::string_view OpenApiYaml();

}  // namespace casebus::server

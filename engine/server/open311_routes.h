#pragma once
// Open311 GeoReport v2 under /open311/v2/ (the read side for now): services.{json,xml},
// services/{code}.{json,xml} from the city's categories (service_code = subcategory code; a
// category's 立案条件 are its one single-value-list attribute), GET requests.{json,xml} with
// the spec's filters (service_request_id list, service_code, start_date, end_date, status;
// at most 1,000, the last 90 days by default) and requests/{id}.{json,xml}. A request is
// "open" until closed, rejected, voided or merged; expected_datetime is the handling
// deadline; agency_responsible the department. Errors use the spec's format.

#include "engine/server/engine.h"
#include "engine/server/http_server.h"

namespace casebus::server {

void AddOpen311Routes(HttpServer& http, Engine& engine);

}  // namespace casebus::server

#pragma once
// Open311 GeoReport v2 under /open311/v2/: services.{json,xml},
// services/{code}.{json,xml} from the city's categories (service_code = subcategory code; a
// category's 立案条件 are its one single-value-list attribute), GET requests.{json,xml} with
// the spec's filters (service_request_id list, service_code, start_date, end_date, status;
// at most 1,000, the last 90 days by default) and requests/{id}.{json,xml}. A request is
// "open" until closed, rejected, voided or merged; expected_datetime is the handling
// deadline; agency_responsible the department. Errors use the spec's format.
//
// POST requests.{json,xml} (form-encoded, as the spec) files a report: api_key is a bearer
// token whose role may report (a citizens' app: role reporter); the place is address_id (a
// grid code) or lat/long (the nearest grid centroid within 2 km); attribute[condition] picks a
// 立案条件. A retry of the same POST with the same key is the same request (its request_id is
// the hash of key and body), and a report that joins an open case answers that case's id.
// POST servicerequestupdates.{json,xml} (mySociety's extension) lets a department's back
// office push an update: update_id is its idempotency key; status IN_PROGRESS /
// ACTION_SCHEDULED / INVESTIGATING accepts a dispatched work order, FIXED / CLOSED resolves
// (media_url or the update id is the evidence), NOT_RESPONSIBLE / INTERNAL_REFERRAL returns it,
// anything else adds the description as a note. Reads need no key, as the spec.

#include "engine/server/engine.h"
#include "engine/server/http_access.h"
#include "engine/server/http_server.h"

namespace casebus::server {

void AddOpen311Routes(HttpServer& http, Engine& engine, Gatekeeper& gate);

}  // namespace casebus::server

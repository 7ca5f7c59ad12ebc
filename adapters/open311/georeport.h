#pragma once
// GeoReport v2 on the wire, as the open311 adapter speaks it: the form it POSTs to
// requests.json and the JSON it reads back from requests.json, requests/{id}.json and
// tokens/{token}.json. Pure functions: no I/O, no state, any thread.
//
// Every parser treats the remote server as untrusted: a body that is not JSON, has the wrong
// shape, lacks the field that matters or carries a status other than open/closed is an
// InvalidArgument whose message says what was wrong (for logs; never with the api_key).

#include <optional>
#include <string>
#include <string_view>

#include "casebus/v1/config.pb.h"
#include "casebus/v1/work_order.pb.h"
#include "engine/base/status.h"

namespace casebus::open311 {

// application/x-www-form-urlencoded: unreserved bytes kept, space as '+', the rest %XX.
std::string FormEscape(std::string_view s);
// Percent-encodes a path segment (a remote id or token), keeping only unreserved bytes.
std::string PathEscape(std::string_view s);

// The POST requests.json body for a work order: api_key, jurisdiction_id (if set),
// service_code (mapped, else the category code), lat/long (if the place has coordinates),
// address_string (the place's address; without coordinates or address, its grid code so the
// server still gets a location), description (with "casebus work order <id>") and
// attribute[casebus_work_order] = the work order id.
std::string ServiceRequestForm(const v1::WorkOrder& order, const v1::Open311Adapter& config,
                               const std::string& api_key);

// What a successful POST answered: a service_request_id, or a token to trade for one later.
struct PostAnswer {
  std::string service_request_id;  // empty when only a token came back
  std::string token;
  std::string service_notice;
};
// [{"service_request_id":"638344","service_notice":"..."}] or [{"token":"12345"}]; the id
// may be a JSON string or integer.
Result<PostAnswer> ParsePostAnswer(std::string_view body);

// The first description of a GeoReport error array [{"code":400,"description":"..."}], or
// nullopt when the body is not one.
std::optional<std::string> ParseErrorDescription(std::string_view body);

// tokens/{token}.json: [{"service_request_id":"638344","token":"12345"}]. The id, or "" when
// the server has not assigned one yet (absent or null).
Result<std::string> ParseTokenAnswer(std::string_view body);

// One service request as requests/{id}.json describes it.
struct RemoteStatus {
  bool closed = false;       // status: "open" or "closed" (any case); nothing else
  std::string status_notes;  // "" when absent or null
  std::string agency_responsible;
  std::string updated_datetime;
};
// The element of the answer's array about `service_request_id` (an element naming another
// id is refused; one naming none is taken).
Result<RemoteStatus> ParseRequestStatus(std::string_view body,
                                        const std::string& service_request_id);

// A remote id or token fit to keep and to put in a URL: 1..128 bytes, no control characters.
bool UsableRemoteId(std::string_view id);

}  // namespace casebus::open311

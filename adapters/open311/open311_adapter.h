#pragma once
// The open311 adapter: a department that runs its own Open311 GeoReport v2 server (a
// contractor's system, another city platform). Work orders are forwarded to it as service
// requests; its status changes come back as the department's replies.
//
// Operation.
//   - Deliver(): POST {endpoint}requests.json (form-encoded, georeport.h). The answer's
//     service_request_id (or token) is recorded in <data_dir>/open311/<department>/<id>.json
//     (forward_record.h) before Delivered is answered; an order already recorded is never
//     POSTed again. 2xx with an id or token → delivered; 400/422 → rejected with the server's
//     error description; 401/403 → rejected (the api_key); 404 and other 4xx → rejected;
//     408, 429, 5xx, 3xx, transport errors and timeouts → retry (Retry-After honoured); a 2xx
//     whose body is not the expected JSON → retry.
//   - A poller thread, every poll_interval_ms, GETs {endpoint}requests/{id}.json of each
//     recorded request not yet closed (tokens/{token}.json first while only a token is
//     known) and queues replies in the record: Accept once forwarded (签收), a Note when
//     status_notes change while open, a Resolve (evidence "open311:<endpoint>requests/<id>",
//     note = status_notes) when it closes. An answer it cannot read changes nothing; it is
//     logged (once per distinct reason) and asked again next round.
//   - PollReplies() offers each record's first unfinished reply (so a case sees accept,
//     notes, resolve in order); Settle() marks it done on OK or a final refusal (logged with
//     the engine's reason) and offers it again after BUSY / UNAVAILABLE.
// Escalation notices cannot be expressed in GeoReport v2: DeliverNotice() keeps each one
// durably under notices/ beside the records, logs that the remote side never sees it, and
// answers Delivered (a dead letter per notice would only bury operators in alerts).
//
// Thread safety: per the Adapter contract; one mutex guards the records, which Deliver(),
// the poller, PollReplies() and Settle() share. Network calls run outside it. The poller is
// started by the factory and stopped (and joined) by the destructor.
// Secrets: the api_key comes from api_key_file or api_key_env; it is sent in POST bodies
// only (never in a URL) and never logged.

#include "engine/dispatch/adapter.h"

namespace casebus::open311 {

// Registers the "open311" kind.
void RegisterOpen311Adapter(dispatch::AdapterRegistry& registry);

}  // namespace casebus::open311

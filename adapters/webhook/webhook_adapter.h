#pragma once
// The webhook adapter: delivers a department's work orders and notices as signed HTTP(S)
// POSTs (Standard Webhooks, signature.h).
//
// Each attempt: one connection (TLS through OpenSSL for https, peer and host name verified),
// one POST, the response's status line and headers; the whole exchange bounded by the
// delivery policy's timeout_ms. The body is the same bytes on every attempt of one item:
//   {"type":"work_order","data":{...WorkOrder, protobuf JSON...}}   (or "notice")
// Headers: webhook-id (the item id: the receiver's idempotency key), webhook-timestamp
// (this attempt, Unix seconds), webhook-signature (v1, one per configured secret).
// Answers: 2xx → delivered; 408, 429, 5xx, 3xx (redirects are not followed), timeouts and
// connection errors → retry, honouring Retry-After (seconds or an HTTP date); any other 4xx
// → rejected (the dispatcher dead-letters it at once).
//
// Thread safety: per the Adapter contract (one delivery at a time).

#include <memory>
#include <string>

#include "engine/dispatch/adapter.h"

namespace casebus::webhook {

// Registers the "webhook" kind.
void RegisterWebhookAdapter(dispatch::AdapterRegistry& registry);

// Parses a Retry-After value: delay seconds, or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
// GMT") taken relative to now_s. Returns milliseconds (0 for a date in the past), or -1 when
// the value is neither.
int64_t ParseRetryAfter(std::string_view value, int64_t now_s);

// The body POSTed for an outbox item (exposed for tests and receivers' fixtures).
std::string WebhookBody(const v1::OutboxItem& item);

}  // namespace casebus::webhook

#pragma once
// Standard Webhooks 1.0 symmetric signatures ("v1", HMAC-SHA256), for the webhook department
// adapter: casebus signs the work orders it POSTs to a department and verifies the replies a
// department POSTs back.
//
// Wire format (https://www.standardwebhooks.com, spec 1.0):
//   webhook-id:        the message id; the same for every delivery attempt of one message
//   webhook-timestamp: Unix seconds of this attempt, decimal digits
//   webhook-signature: space-separated "<version>,<base64 signature>" entries; "v1" is
//                      base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))
// A sender rotating keys signs with the old and the new key; a receiver accepts a message when
// any v1 entry matches any of its keys, and ignores versions it does not know.
//
// Thread safety: Secret is an immutable value. ParseSecret, Sign and SignatureHeader are pure
// functions. Verifier may be shared by all threads of a receiver (see the class comment).

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/base/status.h"

namespace casebus::webhook {

constexpr std::string_view kSecretPrefix = "whsec_";
constexpr size_t kMinSecretBytes = 24;
constexpr size_t kMaxSecretBytes = 64;
constexpr size_t kMaxIdBytes = 256;
constexpr int64_t kDefaultToleranceS = 5 * 60;
constexpr size_t kDefaultMaxRememberedIds = 1'000'000;
// Tolerance and replay window are clamped to this, so timestamp arithmetic cannot overflow.
constexpr int64_t kMaxWindowS = 366 * 24 * 3600;

// A signing key: 24 to 64 raw bytes. Its bytes never appear in an error message or log line.
class Secret {
 public:
  // The raw key bytes, for the HMAC only.
  const std::string& key() const { return key_; }

 private:
  explicit Secret(std::string key) : key_(std::move(key)) {}
  friend Result<Secret> ParseSecret(std::string_view text);
  std::string key_;
};

// Parses "whsec_<base64 key>" or a bare "<base64 key>" (standard alphabet, padding optional).
// Errors say what is wrong — empty, not base64 (with the offending offset), too short or too
// long — and never quote the text.
Result<Secret> ParseSecret(std::string_view text);

// "v1,<base64 HMAC-SHA256(key, msg_id + "." + timestamp_s + "." + body)>".
// REQUIRES: timestamp_s >= 0.
std::string Sign(const Secret& secret, std::string_view msg_id, int64_t timestamp_s,
                 std::string_view body);

// The webhook-signature header value: one Sign() entry per secret, in order, separated by
// single spaces. Empty when `secrets` is empty.
std::string SignatureHeader(const std::vector<Secret>& secrets, std::string_view msg_id,
                            int64_t timestamp_s, std::string_view body);

struct VerifierOptions {
  // A timestamp further than this from now, in either direction, is refused.
  int64_t tolerance_s = kDefaultToleranceS;
  // How long after it was accepted an id is remembered. However short this is, an id is kept
  // until its timestamp falls out of the tolerance, so a verbatim copy of an accepted request
  // can never be accepted again. Make it longer (hours) to also refuse a sender's redelivery of
  // a message already processed, which carries the same id with a new timestamp and signature.
  int64_t replay_window_s = kDefaultToleranceS;
  // Upper bound on remembered ids (each costs roughly 150 bytes plus the id).
  size_t max_remembered_ids = kDefaultMaxRememberedIds;
};

// Verifies incoming webhook requests and refuses replays.
//
// Operation: the headers are checked for form, the timestamp against the tolerance, and every
// v1 entry of webhook-signature against every secret in constant time. A delivery that passes
// is then checked against the ids already accepted.
//
// Which call a receiver uses:
//   Verify  — checks and records the id atomically, so of two concurrent copies exactly one
//             passes. Use it right before processing. If processing then fails (the receiver
//             answers 5xx and the sender will redeliver), call Forget(id) so the redelivery
//             is not refused as a replay.
//   Check   — the same checks without recording; for a receiver that de-duplicates by id in
//             its own durable store (what Verify remembers is lost on restart).
// Either returns AlreadyExists for an id already accepted: the receiver should answer it as
// a success (2xx) without processing it again, so the sender stops retrying.
//
// Limitations: ids are remembered in memory only. At max_remembered_ids the Verifier refuses
// new deliveries with Unavailable (the receiver answers 503 and the sender retries later)
// until remembered ids expire; it never forgets an id early, because that would reopen the
// replay window. Only authenticated deliveries are remembered, so only a holder of a secret
// can fill the cache.
//
// Concurrency: all methods may be called from any thread. The replay cache is guarded by one
// mutex, held only for the lookup and insert; the HMACs are computed outside it.
class Verifier {
 public:
  // With no secrets every delivery is refused (FailedPrecondition). Negative windows count as
  // 0; windows above kMaxWindowS count as kMaxWindowS.
  explicit Verifier(std::vector<Secret> secrets, VerifierOptions options = {});
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // Checks the delivery and, when it passes, records its id. Errors: InvalidArgument with
  // field() the header at fault (missing, malformed, expired, from the future, no matching
  // signature); AlreadyExists for a replayed id; Unavailable at the cache cap.
  // REQUIRES: now_s is the receiver's Unix time in seconds, >= 0 (Internal otherwise).
  Status Verify(std::string_view webhook_id, std::string_view webhook_timestamp,
                std::string_view webhook_signature, std::string_view body, int64_t now_s);

  // As Verify, without recording the id.
  Status Check(std::string_view webhook_id, std::string_view webhook_timestamp,
               std::string_view webhook_signature, std::string_view body, int64_t now_s) const;

  // Drops a recorded id, so the sender's next delivery of it is accepted.
  void Forget(std::string_view webhook_id);

  // How many ids are remembered (expired ones are dropped on the next Verify).
  size_t remembered_ids() const;

 private:
  // Header form, timestamp and signature; the parsed timestamp on success.
  Result<int64_t> Authenticate(std::string_view webhook_id, std::string_view webhook_timestamp,
                               std::string_view webhook_signature, std::string_view body,
                               int64_t now_s) const;
  Status RefuseIfRemembered(std::string_view webhook_id, int64_t now_s) const;  // REQUIRES: mu_
  void DropExpired(int64_t now_s);                                              // REQUIRES: mu_

  const std::vector<Secret> secrets_;
  const VerifierOptions options_;

  mutable std::mutex mu_;
  // Invariants: ids_ and by_expiry_ hold the same ids; each ids_ value points at that id's
  // node in by_expiry_, whose string the ids_ key views. An id is remembered while
  // now_s <= its expiry, and expiry >= timestamp + tolerance.
  std::multimap<int64_t, std::string> by_expiry_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string_view, std::multimap<int64_t, std::string>::iterator>
      ids_;  // GUARDED_BY(mu_)
};

}  // namespace casebus::webhook

#pragma once
// Adapter: one department channel (spool, zmq, webhook, open311). The Dispatcher hands it
// work orders and polls it for the department's replies.
//
// Thread safety: Deliver() and DeliverNotice() are called for one adapter one at a time, on
// any of the dispatcher's delivery workers; PollReplies() and Settle() on the dispatch thread,
// possibly while a delivery runs: an adapter guards state the two sides share.
// Contract: Deliver() answers Delivered only once the department has the order durably (for
// the spool: the file and its directory entry are fsynced; for a webhook: a 2xx). Delivery is
// at least once; the department de-duplicates by work-order id, which every channel carries.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"
#include "casebus/v1/work_order.pb.h"
#include "engine/base/status.h"

namespace casebus::dispatch {

// A department's answer as the engine will apply it, and the adapter's handle for it.
struct InboundReply {
  v1::Command command;      // actor is always the department
  std::string token;        // adapter-defined; passed back to Settle()
  std::string department;   // filled by the Dispatcher
};

// What one delivery attempt came to.
struct Delivery {
  enum class Outcome {
    kDelivered,  // the department has it
    kRetry,      // not now: the endpoint is down, slow, overloaded (5xx, 408, 429, timeouts)
    kRejected,   // never: the endpoint refused this item for good (other 4xx) → dead letter
  };
  Outcome outcome = Outcome::kDelivered;
  std::string error;            // kRetry, kRejected: what the endpoint said, for people
  int64_t retry_after_ms = -1;  // kRetry: the endpoint's Retry-After, when it sent one

  static Delivery Delivered() { return {}; }
  static Delivery Retry(std::string why, int64_t retry_after_ms = -1) {
    return {Outcome::kRetry, std::move(why), retry_after_ms};
  }
  static Delivery Rejected(std::string why) { return {Outcome::kRejected, std::move(why), -1}; }
  bool ok() const { return outcome == Outcome::kDelivered; }
};

class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual Delivery Deliver(const v1::WorkOrder& order) = 0;
  // An escalation notice (催办 / 督办) for this department; same contract as Deliver().
  virtual Delivery DeliverNotice(const v1::Notice& notice) = 0;
  // Where deliveries go, for people and for the circuit breaker: departments whose adapters
  // name the same endpoint share one breaker ("webhook https://…", "spool /var/…").
  virtual std::string Endpoint() const = 0;
  // Replies that arrived and are not already waiting for their result. Default: none.
  virtual std::vector<InboundReply> PollReplies() { return {}; }
  // The engine's answer to a reply from PollReplies(). BUSY or UNAVAILABLE: it was not
  // taken and must be offered again by a later PollReplies(); any other code is final (the
  // department should be told why when it is not OK).
  virtual void Settle(const std::string& token, const v1::CommandResult& result) {
    (void)token;
    (void)result;
  }
};

struct AdapterContext {
  std::string data_dir;  // relative adapter paths resolve under it
  const v1::CityConfig* city = nullptr;  // the delivery policy (timeouts), the categories
};

// Which factory builds an adapter is picked by the kind set in the department's
// AdapterConfig ("spool", ...). Owned by the server; each adapter folder registers itself
// through one Register...Adapter(AdapterRegistry&) function.
class AdapterRegistry {
 public:
  using Factory = std::function<Result<std::unique_ptr<Adapter>>(const v1::Department&,
                                                                 const AdapterContext&)>;
  void Register(std::string kind, Factory factory);
  Result<std::unique_ptr<Adapter>> Create(const v1::Department& dept,
                                          const AdapterContext& ctx) const;
  // The kind name of a department's adapter config, "" when none is set.
  static std::string KindOf(const v1::AdapterConfig& config);

 private:
  std::map<std::string, Factory> factories_;
};

}  // namespace casebus::dispatch

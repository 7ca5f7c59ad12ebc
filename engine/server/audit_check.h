#pragma once
// `casebus audit verify`: walk the journal in seq order, recompute the audit chain
// (base/audit_chain.h) and report the first broken link — a record edited, deleted, inserted
// or moved — and whether the tail matches the head the last commit stored. Offline (the data
// directory must not be open in a running server).

#include <functional>
#include <string>

#include "engine/base/status.h"

namespace casebus::server {

struct AuditReport {
  uint64_t records = 0;
  uint64_t unchained = 0;   // leading records written before the chain existed (not covered)
  bool intact = true;
  uint64_t broken_at = 0;   // seq of the first record where the chain breaks
  std::string reason;       // for people
  std::string head;         // the last link, hex (anchor it elsewhere for more assurance)
};

Result<AuditReport> VerifyAudit(const std::string& data_dir,
                                const std::function<void(uint64_t done, uint64_t total)>& progress);

}  // namespace casebus::server

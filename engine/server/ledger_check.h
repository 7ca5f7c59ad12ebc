#pragma once
// The proof that the maintained ledger is right: replay the journal into a fresh CaseMachine,
// count every case afresh (CaseMachine::Recount) and compare with the ledger the store holds —
// the counters the engine maintained event by event and wrote behind the journal, stamped with
// the record they are as of (Store::GetLedgerSeq): the recount stops at that record.
// Offline: the data directory must not be open in a running server (RocksDB's lock).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "casebus/v1/config.pb.h"
#include "engine/base/status.h"
#include "engine/core/ledger.h"

namespace casebus::server {

struct LedgerCheck {
  uint64_t records = 0;            // journal records replayed for the comparison (up to as_of)
  uint64_t as_of = 0;              // the record the stored ledger is as of
  uint64_t journal_records = 0;    // in the journal (as_of is at most this)
  uint64_t cases = 0;
  uint64_t durable_buckets = 0;    // (key, day) buckets in the store
  uint64_t recounted_buckets = 0;  // non-empty buckets of the recount
  size_t differences = 0;          // counters that differ, in all
  std::vector<core::LedgerDifference> first;  // the first ones (by dim, key, day, counter)
  uint64_t rewritten = 0;          // rebuild without verify: buckets written or deleted
};

// progress(records done, records in all) is called now and then during the replay.
// rewrite: after reporting the differences as of the stamp, make the store's ledger equal a
// recount of the whole journal (and stamp it with the last record).
Result<LedgerCheck> CheckLedger(std::shared_ptr<const v1::CityConfig> config, const std::string& data_dir,
                                bool rewrite, size_t max_listed,
                                const std::function<void(uint64_t, uint64_t)>& progress);

}  // namespace casebus::server

#pragma once
// Store: casebus's only user of RocksDB. Column families:
//   journal  seq (8 bytes, big-endian) → JournalRecord: the truth, one record per command
//   outbox   (department, NUL, big-endian seq) → OutboxItem (work order or escalation notice):
//            written in the same batch as the record that made it, deleted when the adapter
//            acknowledges delivery. A department's rows sort in the order they were made.
//   deadletter item id → DeadLetter: outbox items the dispatcher gave up on, moved here in one
//            batch with the outbox row's deletion; removed by an operator's retry or drop
//   due      (instant, case, stage) → "": the escalation timers, written and deleted in the
//            same batch as the events that schedule or fire them
//   ledger   (dim, key, NUL, big-endian day) → ClosureRow counters: the closure ledger's day
//            buckets (engine/core/ledger.h), written in the same batch as the events that
//            changed them; a bucket back at zero is deleted
//   default  meta: format version; journal_head (big-endian seq + audit link of the last
//            record, written with it)
// Cases and deadlines are derived: rebuilt by replaying the journal on open. The ledger family
// is the maintained counters kept durable; open and `casebus ledger rebuild --verify` check it
// against a recount from the journal.
//
// Thread safety: Commit() is called by the commit thread only; MarkDelivered() and
// MoveToDeadLetters() by the dispatch thread; reads from any thread.
// Failure: a failed synced write marks the store unhealthy for good — it never retries an
// fsync and trusts it. Every later Commit fails at once; the process must restart and recover.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/status.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Env;
}  // namespace rocksdb

namespace casebus::store {

struct StoreOptions {
  bool sync = true;  // false only for benchmarks' negative controls; never in production
  // Tests inject file-system faults through an Env; nullptr is the default Env.
  rocksdb::Env* env = nullptr;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, StoreOptions options = {});
  ~Store();

  // One group commit: journal records get consecutive sequence numbers after last_seq();
  // outbox rows are (id, serialized WorkOrder). One WriteBatch, one synced write.
  struct DueKey {
    int64_t at_ms;
    uint64_t case_id;
    int stage;
    bool operator==(const DueKey&) const = default;
  };
  // Timer rows to add (true) or delete (false), applied in order.
  using DueChanges = std::vector<std::pair<DueKey, bool>>;
  // dead_letter_deletes: dead-letter rows an operator retried (their items are in `outbox`)
  // or dropped. ledger: (bucket key, counters) to put; an empty value deletes the bucket.
  // ledger_as_of > 0: the ledger family, with this batch's rows, now equals the counters the
  // journal implies up to that record (it is written behind the journal; GetLedgerSeq).
  Status Commit(const std::vector<std::string>& records,
                const std::vector<std::pair<std::string, std::string>>& outbox,
                const DueChanges& due = {},
                const std::vector<std::string>& dead_letter_deletes = {},
                const std::vector<std::pair<std::string, std::string>>& ledger = {},
                std::string_view journal_head = {}, uint64_t ledger_as_of = 0);
  // Deletes delivered outbox rows (by key). Not synced: a lost deletion only means one more
  // delivery of an item its receiver de-duplicates by id.
  Status MarkDelivered(const std::vector<std::string>& outbox_keys);
  // Moves an outbox row to the dead letters: one synced batch.
  Status MoveToDeadLetters(std::string_view outbox_key, std::string_view id,
                           std::string_view dead_letter);

  static std::string OutboxKey(std::string_view department, uint64_t seq);
  // False when the key is not department, NUL, 8-byte seq.
  static bool ParseOutboxKey(std::string_view key, std::string_view& department, uint64_t& seq);

  // Recovery scans, in key order. fn returns false to stop early.
  Status ForEachJournal(const std::function<bool(uint64_t seq, std::string_view bytes)>& fn) const {
    return ForEachJournalFrom(1, fn);
  }
  // The same, from record `first` on.
  Status ForEachJournalFrom(uint64_t first, const std::function<bool(uint64_t seq, std::string_view bytes)>& fn) const;
  Status ForEachOutbox(const std::function<bool(std::string_view key, std::string_view bytes)>& fn) const;
  // Up to `max` outbox rows of `department` with keys after `after` ("": from its first), in
  // key order. Any thread.
  Status LoadOutbox(std::string_view department, std::string_view after, size_t max,
                    const std::function<void(std::string_view key, std::string_view bytes)>& fn) const;
  Status ForEachDeadLetter(const std::function<bool(std::string_view id, std::string_view bytes)>& fn) const;
  // The dead letter with this id; NotFound when there is none.
  Result<std::string> GetDeadLetter(std::string_view id) const;
  Status ForEachDue(const std::function<bool(const DueKey& key)>& fn) const;
  // The due family as it is now, to scan later (while commits go on): what ForEachDue would
  // have seen at this call. Must not outlive the store.
  class DueView {
   public:
    virtual ~DueView() = default;
    virtual Status ForEach(const std::function<bool(const DueKey& key)>& fn) = 0;
  };
  std::unique_ptr<DueView> ViewDue() const;
  Status ForEachLedger(const std::function<bool(std::string_view key, std::string_view bytes)>& fn) const;
  // Test and tool access: overwrite or delete (empty bytes) a journal record directly (tamper tests).
  Status PutJournalRaw(uint64_t seq, std::string_view bytes);
  // One journal record's bytes; NotFound when there is none.
  Result<std::string> GetJournal(uint64_t seq) const;
  // The audit chain's head as the last commit left it; NotFound before the first chained
  // record.
  struct JournalHead {
    uint64_t seq = 0;
    std::string link;
  };
  Result<JournalHead> GetJournalHead() const;
  // The journal record the ledger family was last written as of (Commit's ledger_as_of);
  // NotFound in a data directory from before the ledger was written behind the journal,
  // whose ledger rows went with every batch.
  Result<uint64_t> GetLedgerSeq() const;

  uint64_t last_seq() const { return last_seq_.load(std::memory_order_acquire); }
  bool healthy() const { return healthy_.load(std::memory_order_acquire); }
  std::string unhealthy_reason() const;
  uint64_t outbox_size_estimate() const;

 private:
  Store() = default;
  Status Fail(const std::string& what, const std::string& detail);

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* journal_ = nullptr;
  rocksdb::ColumnFamilyHandle* outbox_ = nullptr;
  rocksdb::ColumnFamilyHandle* due_ = nullptr;
  rocksdb::ColumnFamilyHandle* dead_ = nullptr;
  rocksdb::ColumnFamilyHandle* ledger_ = nullptr;
  StoreOptions options_;
  std::atomic<uint64_t> last_seq_{0};  // written by Commit(), read anywhere
  std::atomic<bool> healthy_{true};
  mutable std::mutex reason_mu_;
  std::string reason_;
};

}  // namespace casebus::store

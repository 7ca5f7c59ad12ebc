#include "engine/store/store.h"

#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

namespace casebus::store {
namespace {

constexpr char kJournalHeadKey[] = "journal_head";
constexpr char kLedgerSeqKey[] = "ledger_seq";

std::string SeqKey(uint64_t seq) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i, seq >>= 8) k[i] = static_cast<char>(seq & 0xff);
  return k;
}

std::string DueKeyBytes(const Store::DueKey& k) {
  std::string b(17, '\0');
  uint64_t at = static_cast<uint64_t>(k.at_ms), id = k.case_id;
  for (int i = 7; i >= 0; --i, at >>= 8) b[i] = static_cast<char>(at & 0xff);
  for (int i = 15; i >= 8; --i, id >>= 8) b[i] = static_cast<char>(id & 0xff);
  b[16] = static_cast<char>(k.stage);
  return b;
}

uint64_t KeySeq(std::string_view k) {
  uint64_t s = 0;
  for (unsigned char ch : k.substr(0, 8)) s = (s << 8) | ch;
  return s;
}

// The one place rocksdb::Status becomes ours.
Status Convert(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  if (s.IsNotFound()) return Status::NotFound(what + ": " + s.ToString());
  return Status::IOError(what + ": " + s.ToString());
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, StoreOptions options) {
  std::unique_ptr<Store> st(new Store());
  st->options_ = options;
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 5;
  // Flushes and compactions write their files out a megabyte at a time (sync_file_range)
  // instead of leaving tens of megabytes dirty: on ext4 (data=ordered) the journal's own
  // fdatasync waits for other files' dirty blocks, and a 64 MiB memtable flush held the
  // acknowledgements at 50k commands/s for 20–40 ms (bench/RESULTS.md, 2026-11-28).
  db_options.bytes_per_sync = 1 << 20;
  // An open replays the write-ahead log into memtables and serves from them; flushing them
  // is left to the background (by default the open itself wrote them out first: 17 s instead
  // of 9 s to restart 1M open cases after a busy run). A clean close flushes (~Store).
  db_options.avoid_flush_during_recovery = true;
  if (options.env) db_options.env = options.env;
  // One writer at a time per family: no concurrent memtable writes, which lets the `due` and
  // `outbox` families use an append-only vector memtable. Their keys arrive in no useful order
  // (deadlines; departments interleaved), where a skiplist insert costs a dozen key compares.
  // `due` is read in order only when the engine opens; `outbox` also when a department has a
  // backlog (the dispatcher reads it a window at a time; a vector memtable sorts a copy for
  // each such read, which a backlog can afford and the hot path never pays). `ledger` too: each
  // batch rewrites its dirty day buckets in no useful order, and the family is read only at
  // open and by `casebus ledger rebuild`.
  db_options.allow_concurrent_memtable_write = false;
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = 64 << 20;
  rocksdb::ColumnFamilyOptions unordered = cf;
  unordered.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {{rocksdb::kDefaultColumnFamilyName, cf},
                                                      {"journal", cf},
                                                      {"outbox", unordered},
                                                      {"due", unordered},
                                                      {"deadletter", cf},
                                                      {"ledger", unordered}};
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(db_options, dir, cfs, &st->handles_, &raw);
  if (!s.ok()) return Err(Convert(s, "open " + dir));
  st->db_.reset(raw);
  st->journal_ = st->handles_[1];
  st->outbox_ = st->handles_[2];
  st->due_ = st->handles_[3];
  st->dead_ = st->handles_[4];
  st->ledger_ = st->handles_[5];
  std::unique_ptr<rocksdb::Iterator> it(st->db_->NewIterator(rocksdb::ReadOptions(), st->journal_));
  it->SeekToLast();
  if (it->Valid()) st->last_seq_.store(KeySeq(it->key().ToStringView()));
  if (!it->status().ok()) return Err(Convert(it->status(), "read journal tail"));
  return st;
}

Store::~Store() {
  if (!db_) return;
  // A healthy close writes the memtables out, so the next open has no log to replay; after a
  // crash the open replays the log and serves from memtables (avoid_flush_during_recovery).
  if (healthy()) (void)db_->Flush(rocksdb::FlushOptions(), handles_);
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->Close();
}

Status Store::Fail(const std::string& what, const std::string& detail) {
  {
    std::lock_guard lock(reason_mu_);
    if (reason_.empty()) reason_ = what + ": " + detail;
  }
  healthy_.store(false, std::memory_order_release);
  return Status::Unavailable("storage failed (" + what + ": " + detail +
                             "); the engine stopped acknowledging and must restart");
}

std::string Store::unhealthy_reason() const {
  std::lock_guard lock(reason_mu_);
  return reason_;
}

Status Store::Commit(const std::vector<std::string>& records,
                     const std::vector<std::pair<std::string, std::string>>& outbox,
                     const DueChanges& due,
                     const std::vector<std::string>& dead_letter_deletes,
                     const std::vector<std::pair<std::string, std::string>>& ledger,
                     std::string_view journal_head, uint64_t ledger_as_of) {
  if (!healthy()) return Status::Unavailable("storage is unhealthy: " + unhealthy_reason());
  rocksdb::WriteBatch batch;
  uint64_t seq = last_seq();
  for (const auto& r : records) batch.Put(journal_, SeqKey(++seq), r);
  for (const auto& [id, bytes] : outbox) batch.Put(outbox_, id, bytes);
  for (const auto& [key, add] : due) {
    if (add) batch.Put(due_, DueKeyBytes(key), rocksdb::Slice());
    else batch.Delete(due_, DueKeyBytes(key));
  }
  for (const auto& id : dead_letter_deletes) batch.Delete(dead_, id);
  for (const auto& [key, value] : ledger) {
    if (value.empty()) batch.Delete(ledger_, key);
    else batch.Put(ledger_, key, value);
  }
  if (!records.empty() && !journal_head.empty())
    batch.Put(db_->DefaultColumnFamily(), kJournalHeadKey, SeqKey(seq) + std::string(journal_head));
  if (ledger_as_of > 0) batch.Put(db_->DefaultColumnFamily(), kLedgerSeqKey, SeqKey(ledger_as_of));
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  auto s = db_->Write(wo, &batch);
  if (!s.ok()) return Fail("journal write", s.ToString());
  last_seq_.store(seq, std::memory_order_release);
  return Status::Ok();
}

Status Store::MarkDelivered(const std::vector<std::string>& keys) {
  if (!healthy()) return Status::Unavailable("storage is unhealthy: " + unhealthy_reason());
  rocksdb::WriteBatch batch;
  for (const auto& k : keys) batch.Delete(outbox_, k);
  // Not synced: losing a deletion only means delivering that order once more, which the
  // work-order id makes harmless.
  auto s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return Fail("outbox delete", s.ToString());
  return Status::Ok();
}

Status Store::MoveToDeadLetters(std::string_view outbox_key, std::string_view id,
                                std::string_view dead_letter) {
  if (!healthy()) return Status::Unavailable("storage is unhealthy: " + unhealthy_reason());
  rocksdb::WriteBatch batch;
  batch.Delete(outbox_, rocksdb::Slice(outbox_key.data(), outbox_key.size()));
  batch.Put(dead_, rocksdb::Slice(id.data(), id.size()),
            rocksdb::Slice(dead_letter.data(), dead_letter.size()));
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  auto s = db_->Write(wo, &batch);
  if (!s.ok()) return Fail("dead-letter write", s.ToString());
  return Status::Ok();
}

std::string Store::OutboxKey(std::string_view department, uint64_t seq) {
  std::string k(department);
  k.push_back('\0');
  k += SeqKey(seq);
  return k;
}

bool Store::ParseOutboxKey(std::string_view key, std::string_view& department, uint64_t& seq) {
  if (key.size() < 9 || key[key.size() - 9] != '\0') return false;
  department = key.substr(0, key.size() - 9);
  seq = KeySeq(key.substr(key.size() - 8));
  return true;
}

Status Store::LoadOutbox(std::string_view department, std::string_view after, size_t max,
                         const std::function<void(std::string_view, std::string_view)>& fn) const {
  std::string lower(department);
  lower.push_back('\0');
  std::string upper(department);
  upper.push_back('\1');  // just past every key of this department
  rocksdb::ReadOptions ro;
  rocksdb::Slice bound(upper);
  ro.iterate_upper_bound = &bound;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, outbox_));
  if (after.empty()) {
    it->Seek(lower);
  } else {
    it->Seek(rocksdb::Slice(after.data(), after.size()));
    if (it->Valid() && it->key().ToStringView() == after) it->Next();
  }
  for (size_t n = 0; n < max && it->Valid(); it->Next(), ++n)
    fn(it->key().ToStringView(), it->value().ToStringView());
  return Convert(it->status(), "read outbox of " + std::string(department));
}

namespace {
// For a scan of a whole family front to back (recovery, checks): read ahead, and leave the
// block cache to the lookups that serve users (a scan of millions of rows would evict them, and
// fill memory the restore needs, with blocks read once).
rocksdb::ReadOptions ScanOptions() {
  rocksdb::ReadOptions ro;
  ro.readahead_size = 2 << 20;
  ro.fill_cache = false;
  return ro;
}
}  // namespace

Status Store::ForEachDeadLetter(
    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), dead_));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) break;
  return Convert(it->status(), "scan dead letters");
}

Status Store::ForEachLedger(
    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), ledger_));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) break;
  return Convert(it->status(), "scan ledger");
}

Result<std::string> Store::GetDeadLetter(std::string_view id) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), dead_, rocksdb::Slice(id.data(), id.size()), &value);
  if (s.IsNotFound()) return Err(Status::NotFound("no dead letter " + std::string(id)));
  if (!s.ok()) return Err(Convert(s, "read dead letter " + std::string(id)));
  return value;
}

Status Store::ForEachJournalFrom(
    uint64_t first, const std::function<bool(uint64_t, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), journal_));
  for (it->Seek(SeqKey(first)); it->Valid(); it->Next())
    if (!fn(KeySeq(it->key().ToStringView()), it->value().ToStringView())) break;
  return Convert(it->status(), "scan journal");
}

Status Store::ForEachOutbox(
    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), outbox_));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) break;
  return Convert(it->status(), "scan outbox");
}

namespace {
Status ScanDue(rocksdb::Iterator& it, const std::function<bool(const Store::DueKey&)>& fn) {
  for (it.SeekToFirst(); it.Valid(); it.Next()) {
    std::string_view k = it.key().ToStringView();
    if (k.size() != 17) return Status::Corruption("due row with a key of " + std::to_string(k.size()) + " bytes");
    Store::DueKey d{static_cast<int64_t>(KeySeq(k.substr(0, 8))), KeySeq(k.substr(8, 8)),
                    static_cast<unsigned char>(k[16])};
    if (!fn(d)) break;
  }
  return Convert(it.status(), "scan due");
}

// An iterator sees the family as of its creation (RocksDB's implicit snapshot).
class IteratorDueView final : public Store::DueView {
 public:
  explicit IteratorDueView(std::unique_ptr<rocksdb::Iterator> it) : it_(std::move(it)) {}
  Status ForEach(const std::function<bool(const Store::DueKey&)>& fn) override { return ScanDue(*it_, fn); }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
};
}  // namespace

Status Store::ForEachDue(const std::function<bool(const DueKey&)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ScanOptions(), due_));
  return ScanDue(*it, fn);
}

std::unique_ptr<Store::DueView> Store::ViewDue() const {
  return std::make_unique<IteratorDueView>(std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(ScanOptions(), due_)));
}

Status Store::PutJournalRaw(uint64_t seq, std::string_view bytes) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (bytes.empty()) return Convert(db_->Delete(wo, journal_, SeqKey(seq)), "delete journal");
  return Convert(db_->Put(wo, journal_, SeqKey(seq), rocksdb::Slice(bytes.data(), bytes.size())),
                 "put journal");
}

Result<std::string> Store::GetJournal(uint64_t seq) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), journal_, SeqKey(seq), &value);
  if (s.IsNotFound()) return Err(Status::NotFound("no journal record " + std::to_string(seq)));
  if (!s.ok()) return Err(Convert(s, "read journal record " + std::to_string(seq)));
  return value;
}

Result<Store::JournalHead> Store::GetJournalHead() const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), kJournalHeadKey, &value);
  if (s.IsNotFound()) return Err(Status::NotFound("no audit chain head"));
  if (!s.ok()) return Err(Convert(s, "read the audit chain head"));
  if (value.size() != 8 + 32) return Err(Status::Corruption("the audit chain head has " + std::to_string(value.size()) + " bytes, not 40"));
  return JournalHead{KeySeq(std::string_view(value).substr(0, 8)), value.substr(8)};
}

Result<uint64_t> Store::GetLedgerSeq() const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), kLedgerSeqKey, &value);
  if (s.IsNotFound()) return Err(Status::NotFound("no ledger_seq"));
  if (!s.ok()) return Err(Convert(s, "read ledger_seq"));
  if (value.size() != 8) return Err(Status::Corruption("ledger_seq has " + std::to_string(value.size()) + " bytes, not 8"));
  return KeySeq(value);
}

uint64_t Store::outbox_size_estimate() const {
  uint64_t n = 0;
  db_->GetIntProperty(outbox_, "rocksdb.estimate-num-keys", &n);
  return n;
}

}  // namespace casebus::store

#pragma once
// RequestTable: the request ids the machine remembers, for the idempotency rule (a retry with
// the same request_id gets the first result; a different command under it is refused), each
// for a time window, forgotten oldest first.
//
// Built for the shard's hot path, where every command looks its id up and most add one, and
// for restores of millions of ids:
// - the ids' records (instant, where the bytes are, entry) in a first-in-first-out queue, in
//   the order they were added, which is the order they are forgotten and written out;
// - the ids' bytes in a FIFO ring of 64 KiB chunks (the oldest chunk goes when its last id
//   does);
// - an open-addressing index of 16-byte slots (hash, record number): linear probing,
//   backward-shift deletion, at most 5/8 full.
// The index grows without a pause: a table twice the size takes new ids at once, and each Put
// after that moves a few of the old table's slots across (Migrate), so the old one is empty
// long before the new one is full. A stop-the-world rehash of 2^20 slots held the shard (and
// every acknowledgement) for 15–30 ms at 50k commands/s; at 15M ids it would be seconds.
// While both tables exist a lookup asks the new one, then the old one from where the move
// has not reached yet; an id forgotten from the old table leaves a tombstone there (the old
// table is never inserted into, so tombstones cannot pile up).
// Only the index is visited at random, so a restore appends records in order and scatters
// 16 bytes per id, not the whole record. No allocation per id; ids are compared in full, so no
// two ids are ever confused, whatever their hashes. An id may be at most 64 KiB (the intake
// allows 128 bytes).
//
// Not thread-safe (owned by the shard, like the rest of the machine).

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/clock.h"

namespace casebus::core {

class RequestTable {
 public:
  // What a retry with the same request_id gets back (see CaseMachine::Remember).
  struct Entry {
    uint64_t payload_hash = 0;
    uint64_t case_id = 0;
    uint64_t work_order_case = 0;  // 0: no work order
    uint32_t work_order_n = 0;
    int32_t department = -1;       // the machine's department index; -1: none
    bool merged = false;
  };

  RequestTable();

  // The entry remembered for `id`, or nullptr. The pointer is valid until the next Put or
  // Forget.
  const Entry* Find(std::string_view id) const;
  // Remembers `id` (added at `at`) with `entry`; an id already remembered is used again: it
  // takes the new entry and a new place in the forgetting order (the window runs from its last
  // use). The machine never puts an id it remembers, except when a journal is replayed under a
  // longer window than it was written with (the first run had forgotten the id, then reused it).
  void Put(std::string_view id, Millis at, const Entry& entry) { Put(id, Hash(id), at, entry); }
  // A restore of millions of ids: Append each, in the order they were added (no two alike,
  // none already here), then BuildIndex once. Indexing them one by one scattered each id into
  // a table of hundreds of MB: a TLB and cache miss apiece (a nested page walk in a VM), 7.5 s
  // of a core for 15M ids. BuildIndex sorts them by home slot first and fills the table one
  // 64 KiB stretch at a time. Returns false when two ids are alike (a damaged checkpoint).
  void Append(std::string_view id, Millis at, const Entry& entry);
  bool BuildIndex() { return BuildIndex(false); }
  // A bulk replay of a journal: after Defer(), Put appends without indexing (Find must not be
  // asked), and IndexDeferred() indexes what was put since, in one sorted pass when it is most
  // of the table (as BuildIndex), else one by one. An id put again is found there: the last
  // put wins, as with Put, so the table is the one plain Puts make.
  void Defer() { deferring_ = true; }
  void IndexDeferred();
  bool deferring() const { return deferring_; }
  // For many Puts in a row: the id's hash, and its home slot asked from memory,
  // so that a Put with that hash a few ids later finds it in the cache. A table of millions of
  // ids misses the cache (and the TLB) on nearly every Put; this overlaps those misses.
  uint64_t Prefetch(std::string_view id) const {
    const uint64_t h = Hash(id);
    __builtin_prefetch(&slots_[IndexOf(h)], 1);
    return h;
  }
  // Put with the hash Prefetch returned for `id`.
  void Put(std::string_view id, uint64_t hash, Millis at, const Entry& entry);
  // Forgets every id added before `before`.
  void ForgetBefore(Millis before);
  size_t size() const { return records_.size() - dead_; }
  // Makes room for n ids without growing (a checkpoint's restore knows how many).
  void Reserve(size_t n);
  // f(id, added at, entry) for every remembered id, oldest first (the forgetting order).
  template <typename F>
  void ForEach(F&& f) const {
    for (const Record& r : records_)
      if (!r.dead) f(IdAt(r), r.at, r.entry);
  }
  // Bytes held (index, records, id bytes): memory accounting.
  size_t bytes() const;
  // True while the index is moving to a bigger table (for tests).
  bool growing() const { return old_.size() > 0; }

 private:
  struct Slot {
    uint64_t hash = 0;  // 0: empty (a real hash of 0 is stored as 1)
    uint64_t seq = 0;   // the record's number: records_[seq - first_seq_]; kGone: forgotten
  };
  static constexpr uint64_t kGone = ~uint64_t{0};  // a tombstone, only in the old table
  // A power-of-two array of slots, zeroed by calloc: fresh pages from the system are not
  // written until a slot is (a big table's first touch is slow in a VM).
  class Slots {
   public:
    Slots() = default;
    explicit Slots(size_t n);
    Slots(Slots&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
    Slots& operator=(Slots&& o) noexcept;
    ~Slots() { std::free(p_); }
    Slot& operator[](size_t i) { return p_[i]; }
    const Slot& operator[](size_t i) const { return p_[i]; }
    size_t size() const { return n_; }
    size_t mask() const { return n_ - 1; }

   private:
    Slot* p_ = nullptr;
    size_t n_ = 0;
  };
  struct Record {
    Millis at;
    uint64_t offset;  // where the id's bytes start in the ring (absolute)
    uint32_t length;
    bool dead;        // its id was put again later (that record has the slot)
    Entry entry;
  };
  static uint64_t Hash(std::string_view id);
  std::string_view IdAt(const Record& r) const;
  const Record& RecordOf(const Slot& s) const { return records_[s.seq - first_seq_]; }
  size_t IndexOf(uint64_t hash) const { return static_cast<size_t>(hash) & slots_.mask(); }
  // The slot of slots_ holding `id` (hash h), or the empty slot where it would go.
  size_t Probe(std::string_view id, uint64_t h) const;
  // Where old_'s probe for hash h starts: its home, or the first slot not yet moved when the
  // home has been (what is left of the probe run starts there: no run crosses old_start_,
  // which was empty).
  size_t OldProbeStart(uint64_t h) const;
  // The slot of old_ holding `id`, or old_.size() when it is not there.
  size_t ProbeOld(std::string_view id, uint64_t h) const;
  void Grow();                 // starts moving to a table twice the size
  void Migrate(size_t slots);  // moves up to `slots` more of old_'s slots across
  void Rehash(size_t size);    // at once (a restore's Reserve); a power of two
  void Insert(const Slot& s);  // into slots_, which has room and lacks it
  // repeats: an id twice is a repeat (Put's semantics, IndexDeferred) rather than damage.
  bool BuildIndex(bool repeats);
  // The id of `slot` was put again as record `seq`: the slot's record is dead, the slot
  // points at seq.
  void Supersede(Slot& slot, uint64_t seq);
  void IndexOne(uint64_t seq);
  void Erase(size_t index);
  static constexpr uint64_t kChunk = 64 * 1024;
  // Copies id to the ring's end (never across two chunks); returns its absolute offset.
  uint64_t AppendBytes(std::string_view id);
  void DropChunksBefore(uint64_t offset);

  Slots slots_;             // at most 5/8 full (short probes)
  Slots old_;               // while growing: the table being moved out of, else empty
  size_t old_start_ = 0;    // an empty slot of old_: the move goes round from the next one
  size_t moved_ = 0;        // how many of old_'s slots (from old_start_ + 1 on) are moved
  std::deque<Record> records_;
  size_t dead_ = 0;         // records_ marked dead
  bool deferring_ = false;
  size_t unindexed_ = 0;    // records_ at the end without a slot (put while deferring)
  uint64_t first_seq_ = 0;  // the number of records_.front()
  // Chunk i holds absolute offsets [(first_chunk_ + i) * kChunk, +kChunk).
  std::deque<std::unique_ptr<char[]>> chunks_;
  uint64_t first_chunk_ = 0;
  uint64_t end_ = 0;  // the next free absolute offset
};

}  // namespace casebus::core

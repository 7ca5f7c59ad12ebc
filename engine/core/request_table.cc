#include "engine/core/request_table.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <new>

namespace casebus::core {

namespace {
// Slots moved across per Put while growing. The old table is at most 5/8 full when the move
// starts and the new one takes 5/4 of the old one's size before it would grow again, so any
// rate above 8/5 of a slot per Put finishes first; 8 spreads the move thin.
constexpr size_t kMigratePerPut = 8;
}  // namespace

RequestTable::Slots::Slots(size_t n) : p_(static_cast<Slot*>(std::calloc(n, sizeof(Slot)))), n_(n) {
  if (!p_) throw std::bad_alloc();
}

RequestTable::Slots& RequestTable::Slots::operator=(Slots&& o) noexcept {
  if (this != &o) {
    std::free(p_);
    p_ = o.p_, n_ = o.n_;
    o.p_ = nullptr, o.n_ = 0;
  }
  return *this;
}

RequestTable::RequestTable() : slots_(1024) {}


uint64_t RequestTable::Hash(std::string_view id) {
  // std::hash mixes well enough for linear probing; 0 marks an empty slot.
  const uint64_t h = std::hash<std::string_view>{}(id);
  return h == 0 ? 1 : h;
}

std::string_view RequestTable::IdAt(const Record& r) const {
  const char* chunk = chunks_[r.offset / kChunk - first_chunk_].get();
  return {chunk + r.offset % kChunk, r.length};
}

size_t RequestTable::Probe(std::string_view id, uint64_t h) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = IndexOf(h);; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.hash == 0) return i;
    if (s.hash == h) {
      const Record& r = RecordOf(s);
      if (r.length == id.size() && IdAt(r) == id) return i;
    }
  }
}

size_t RequestTable::OldProbeStart(uint64_t h) const {
  const size_t mask = old_.mask();
  const size_t home = static_cast<size_t>(h) & mask;
  // Slots in the order the move visits them: old_start_ + 1 is 0, old_start_ is the last.
  const size_t rank = (home - old_start_ - 1) & mask;
  return rank >= moved_ ? home : (old_start_ + 1 + moved_) & mask;
}

size_t RequestTable::ProbeOld(std::string_view id, uint64_t h) const {
  const size_t mask = old_.mask();
  for (size_t i = OldProbeStart(h);; i = (i + 1) & mask) {
    const Slot& s = old_[i];
    if (s.hash == 0) return old_.size();
    if (s.hash == h && s.seq != kGone) {
      const Record& r = RecordOf(s);
      if (r.length == id.size() && IdAt(r) == id) return i;
    }
  }
}

const RequestTable::Entry* RequestTable::Find(std::string_view id) const {
  const uint64_t h = Hash(id);
  const Slot& s = slots_[Probe(id, h)];
  if (s.hash != 0) return &RecordOf(s).entry;
  if (!growing()) return nullptr;
  const size_t i = ProbeOld(id, h);
  return i == old_.size() ? nullptr : &RecordOf(old_[i]).entry;
}

uint64_t RequestTable::AppendBytes(std::string_view id) {
  if (end_ % kChunk + id.size() > kChunk) end_ = (end_ / kChunk + 1) * kChunk;  // next chunk
  while (end_ / kChunk >= first_chunk_ + chunks_.size()) chunks_.push_back(std::make_unique<char[]>(kChunk));
  const uint64_t at = end_;
  if (!id.empty()) std::memcpy(chunks_[at / kChunk - first_chunk_].get() + at % kChunk, id.data(), id.size());
  end_ += id.size();
  return at;
}

void RequestTable::Put(std::string_view id, uint64_t h, Millis at, const Entry& entry) {
  if (id.size() > kChunk) return;  // refused by the intake long before (≤ 128 bytes)
  if (deferring_) {
    Append(id, at, entry);
    ++unindexed_;
    return;
  }
  size_t i = Probe(id, h);
  Slot* again = slots_[i].hash != 0 ? &slots_[i] : nullptr;
  if (!again && growing()) {
    const size_t j = ProbeOld(id, h);
    if (j != old_.size()) again = &old_[j];
  }
  if (again) {  // used again: a new record at the end, its slot pointed there
    Append(id, at, entry);
    Supersede(*again, first_seq_ + records_.size() - 1);
    return;
  }
  if ((size() + 1) * 8 > slots_.size() * 5) {
    Grow();
    i = Probe(id, h);
  }
  const uint64_t offset = AppendBytes(id);
  slots_[i] = {h, first_seq_ + records_.size()};
  records_.push_back({at, offset, static_cast<uint32_t>(id.size()), false, entry});
  if (growing()) Migrate(kMigratePerPut);
}

void RequestTable::Append(std::string_view id, Millis at, const Entry& entry) {
  if (id.size() > kChunk) return;  // as Put
  const uint64_t offset = AppendBytes(id);
  records_.push_back({at, offset, static_cast<uint32_t>(id.size()), false, entry});
}

void RequestTable::Supersede(Slot& slot, uint64_t seq) {
  records_[slot.seq - first_seq_].dead = true;
  ++dead_;
  slot.seq = seq;
}

void RequestTable::IndexDeferred() {
  deferring_ = false;
  if (unindexed_ == 0) return;
  const size_t n = unindexed_;
  unindexed_ = 0;
  // Most of the table: every id again, sorted by home slot (BuildIndex's reasons).
  if (n * 2 > records_.size()) {
    (void)BuildIndex(true);
    return;
  }
  Reserve(size());  // room for all of them first: no move while indexing
  const uint64_t end = first_seq_ + records_.size();
  for (uint64_t seq = end - n; seq < end; ++seq) IndexOne(seq);
}

void RequestTable::IndexOne(uint64_t seq) {
  Record& r = records_[seq - first_seq_];
  const std::string_view id = IdAt(r);
  const uint64_t h = Hash(id);
  size_t i = Probe(id, h);
  if (slots_[i].hash != 0) return Supersede(slots_[i], seq);
  if (growing()) {
    const size_t j = ProbeOld(id, h);
    if (j != old_.size()) return Supersede(old_[j], seq);
  }
  if ((size() + 1) * 8 > slots_.size() * 5) {
    Grow();
    i = Probe(id, h);
  }
  slots_[i] = {h, seq};
  if (growing()) Migrate(kMigratePerPut);
}

bool RequestTable::BuildIndex(bool repeats) {
  Migrate(old_.size());
  size_t size = 1024;
  while (records_.size() * 8 > size * 5) size *= 2;
  slots_ = Slots(size);
  const size_t n = records_.size();
  if (n == 0) return true;
  // Written before it is read: a page first read maps the shared zero page, and the write
  // after it faults again and flushes the TLBs of the other threads' cores (an IPI apiece, a
  // VM exit each): a third of this thread's time at 15M ids.
  std::memset(static_cast<void*>(&slots_[0]), 0, size * sizeof(Slot));
  // Partitions of 4096 slots (64 KiB), by the top bits of the home slot: a counting sort.
  constexpr size_t kPartSlots = 4096;
  const size_t parts = std::max<size_t>(1, size / kPartSlots);
  const size_t part_slots = size / parts;
  std::vector<uint64_t> hashes(n);
  std::vector<uint32_t> start(parts + 1, 0);
  size_t k = 0;
  size_t live = 0;
  for (const Record& r : records_) {
    hashes[k] = r.dead ? 0 : Hash(IdAt(r));  // 0: no slot
    if (!r.dead) ++start[IndexOf(hashes[k]) / part_slots + 1], ++live;
    ++k;
  }
  for (size_t p = 0; p < parts; ++p) start[p + 1] += start[p];
  // Stable: within a partition, records stay in their order (a repeat comes after the first).
  std::vector<Slot> sorted(live);
  for (size_t i = 0; i < n; ++i)
    if (hashes[i] != 0) sorted[start[IndexOf(hashes[i]) / part_slots]++] = {hashes[i], first_seq_ + i};
  hashes = {};
  const size_t mask = slots_.mask();
  for (const Slot& s : sorted) {
    size_t i = IndexOf(s.hash);
    bool repeat = false;
    for (; slots_[i].hash != 0; i = (i + 1) & mask) {
      if (slots_[i].hash == s.hash && IdAt(RecordOf(slots_[i])) == IdAt(RecordOf(s))) {
        if (!repeats) return false;
        Supersede(slots_[i], s.seq);  // in record order within a stretch: s is the later
        repeat = true;
        break;
      }
    }
    if (!repeat) slots_[i] = s;
  }
  return true;
}

void RequestTable::Reserve(size_t n) {
  Migrate(old_.size());  // finish a move first
  size_t want = slots_.size();
  while (n * 8 > want * 5) want *= 2;
  if (want != slots_.size()) Rehash(want);
}

void RequestTable::Insert(const Slot& s) {
  const size_t mask = slots_.mask();
  size_t i = IndexOf(s.hash);
  while (slots_[i].hash != 0) i = (i + 1) & mask;
  slots_[i] = s;
}

void RequestTable::Grow() {
  Migrate(old_.size());  // cannot be needed (see kMigratePerPut), but never two moves at once
  old_ = std::move(slots_);
  slots_ = Slots(old_.size() * 2);
  old_start_ = 0;
  while (old_[old_start_].hash != 0) ++old_start_;  // at most 5/8 full: there is one
  moved_ = 0;
}

void RequestTable::Migrate(size_t n) {
  const size_t mask = old_.mask();
  for (; n > 0 && moved_ < old_.size(); --n, ++moved_) {
    const Slot& s = old_[(old_start_ + 1 + moved_) & mask];
    if (s.hash != 0 && s.seq != kGone) Insert(s);
  }
  if (growing() && moved_ == old_.size()) old_ = Slots();
}

void RequestTable::Rehash(size_t size) {
  Slots old(size);
  std::swap(old, slots_);
  for (size_t i = 0; i < old.size(); ++i)
    if (old[i].hash != 0) Insert(old[i]);
}

void RequestTable::Erase(size_t index) {
  // Backward-shift deletion: pull later members of the probe run into the hole, so lookups
  // never need tombstones.
  const size_t mask = slots_.mask();
  size_t hole = index;
  for (size_t i = (hole + 1) & mask; slots_[i].hash != 0; i = (i + 1) & mask) {
    const size_t home = IndexOf(slots_[i].hash);
    // Movable when its home is not in (hole, i] (cyclically).
    const bool stays = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
    if (stays) continue;
    slots_[hole] = slots_[i];
    hole = i;
  }
  slots_[hole] = Slot{};
}

void RequestTable::ForgetBefore(Millis before) {
  bool dropped = false;
  const size_t mask = slots_.mask();
  while (!records_.empty() && records_.front().at < before) {
    if (records_.front().dead || records_.size() <= unindexed_) {  // no slot
      if (records_.front().dead) --dead_;
      else --unindexed_;
      records_.pop_front();
      ++first_seq_;
      dropped = true;
      continue;
    }
    const uint64_t h = Hash(IdAt(records_.front()));
    bool found = false;
    for (size_t i = IndexOf(h); slots_[i].hash != 0; i = (i + 1) & mask) {
      if (slots_[i].seq == first_seq_) {
        Erase(i);
        found = true;
        break;
      }
    }
    if (!found && growing()) {  // not moved yet: a tombstone keeps the old probe runs whole
      const size_t old_mask = old_.mask();
      for (size_t i = OldProbeStart(h); old_[i].hash != 0; i = (i + 1) & old_mask) {
        if (old_[i].seq == first_seq_) {
          old_[i].seq = kGone;
          break;
        }
      }
    }
    records_.pop_front();
    ++first_seq_;
    dropped = true;
  }
  if (dropped) DropChunksBefore(records_.empty() ? end_ : records_.front().offset);
}

void RequestTable::DropChunksBefore(uint64_t offset) {
  while (!chunks_.empty() && (first_chunk_ + 1) * kChunk <= offset && first_chunk_ + 1 < end_ / kChunk + 1) {
    chunks_.pop_front();
    ++first_chunk_;
  }
}

size_t RequestTable::bytes() const {
  return (slots_.size() + old_.size()) * sizeof(Slot) + chunks_.size() * kChunk + records_.size() * sizeof(Record);
}

}  // namespace casebus::core

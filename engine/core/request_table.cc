#include "engine/core/request_table.h"

#include <cstring>
#include <functional>

namespace casebus::core {

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

const RequestTable::Entry* RequestTable::Find(std::string_view id) const {
  const Slot& s = slots_[Probe(id, Hash(id))];
  return s.hash == 0 ? nullptr : &RecordOf(s).entry;
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
  size_t i = Probe(id, h);
  if (slots_[i].hash != 0) {
    records_[slots_[i].seq - first_seq_].entry = entry;
    return;
  }
  if ((size() + 1) * 8 > slots_.size() * 5) {
    Grow();
    i = Probe(id, h);
  }
  const uint64_t offset = AppendBytes(id);
  slots_[i] = {h, first_seq_ + records_.size()};
  records_.push_back({at, offset, static_cast<uint32_t>(id.size()), entry});
}

void RequestTable::Reserve(size_t n) {
  size_t want = slots_.size();
  while (n * 8 > want * 5) want *= 2;
  if (want != slots_.size()) Rehash(want);
}

void RequestTable::Grow() { Rehash(slots_.size() * 2); }

void RequestTable::Rehash(size_t size) {
  std::vector<Slot> old(size);
  old.swap(slots_);
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.hash == 0) continue;
    size_t i = IndexOf(s.hash);
    while (slots_[i].hash != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void RequestTable::Erase(size_t index) {
  // Backward-shift deletion: pull later members of the probe run into the hole, so lookups
  // never need tombstones.
  const size_t mask = slots_.size() - 1;
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
  const size_t mask = slots_.size() - 1;
  while (!records_.empty() && records_.front().at < before) {
    const uint64_t h = Hash(IdAt(records_.front()));
    for (size_t i = IndexOf(h); slots_[i].hash != 0; i = (i + 1) & mask) {
      if (slots_[i].seq == first_seq_) {
        Erase(i);
        break;
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
  return slots_.size() * sizeof(Slot) + chunks_.size() * kChunk + records_.size() * sizeof(Record);
}

}  // namespace casebus::core

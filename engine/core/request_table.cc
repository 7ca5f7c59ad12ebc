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

std::string_view RequestTable::IdAt(const Slot& s) const {
  const char* chunk = chunks_[s.offset / kChunk - first_chunk_].get();
  return {chunk + s.offset % kChunk, s.length};
}

size_t RequestTable::Probe(std::string_view id, uint64_t h) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = IndexOf(h);; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.hash == 0 || (s.hash == h && s.length == id.size() && IdAt(s) == id)) return i;
  }
}

const RequestTable::Entry* RequestTable::Find(std::string_view id) const {
  const Slot& s = slots_[Probe(id, Hash(id))];
  return s.hash == 0 ? nullptr : &s.entry;
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
    slots_[i].entry = entry;
    return;
  }
  if ((size_ + 1) * 8 > slots_.size() * 5) {
    Grow();
    i = Probe(id, h);
  }
  Slot& s = slots_[i];
  s.hash = h;
  s.offset = AppendBytes(id);
  s.length = static_cast<uint32_t>(id.size());
  s.entry = entry;
  ++size_;
  order_.push_back({at, s.offset, h});
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
  --size_;
}

void RequestTable::ForgetBefore(Millis before) {
  bool dropped = false;
  const size_t mask = slots_.size() - 1;
  while (!order_.empty() && order_.front().at < before) {
    const Added a = order_.front();
    order_.pop_front();
    for (size_t i = IndexOf(a.hash); slots_[i].hash != 0; i = (i + 1) & mask) {
      if (slots_[i].hash == a.hash && slots_[i].offset == a.offset) {
        Erase(i);
        break;
      }
    }
    dropped = true;
  }
  if (dropped) DropChunksBefore(order_.empty() ? end_ : order_.front().offset);
}

void RequestTable::DropChunksBefore(uint64_t offset) {
  while (!chunks_.empty() && (first_chunk_ + 1) * kChunk <= offset && first_chunk_ + 1 < end_ / kChunk + 1) {
    chunks_.pop_front();
    ++first_chunk_;
  }
}

size_t RequestTable::bytes() const {
  return slots_.size() * sizeof(Slot) + chunks_.size() * kChunk + order_.size() * sizeof(Added);
}

}  // namespace casebus::core

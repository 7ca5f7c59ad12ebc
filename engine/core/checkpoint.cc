// The machine's checkpoint: what restores it without replaying the journal that made it.
//
// Only what the cases cannot tell is written: every case (fields and encoded history), the
// remembered request ids in their forgetting order, the next case id and the escalation count.
// The timer queue, the duplicate index, the ledger and the per-state counts are rebuilt from
// the cases, the same way events build them (Recount() is the ledger's proof of that), so a
// checkpoint restores under a reloaded config exactly as the journal would replay under it.
//
// Layout (little-endian varints, "LEB128"; each string is its varint length, then its bytes):
//   "CBMC" varint(format = 1)
//   varint(next_case_id) varint(escalations)
//   varint(cases)    then per case, ids 1..cases:  varint(id) string(fields) string(history)
//   varint(requests) then per id, oldest first:   string(id) varint(zigzag(at)) varint(hash)
//                    varint(case) varint(work order case) varint(work order n)
//                    string(department id, "" for none) byte(merged)
//   "END."
// The edge (engine/server) frames it with the journal position and a checksum; a checkpoint
// that fails any check here is refused whole with the byte offset that failed.

#include <cmath>
#include <cstring>
#include <thread>
#include <atomic>
#include <vector>

#include "engine/core/case_machine.h"

namespace casebus::core {
namespace {

constexpr char kMagic[4] = {'C', 'B', 'M', 'C'};
constexpr char kEnd[4] = {'E', 'N', 'D', '.'};
constexpr uint64_t kFormat = 1;
constexpr size_t kFlushBytes = 1 << 20;

class Writer {
 public:
  explicit Writer(const std::function<void(std::string_view)>& sink) : sink_(sink) { buf_.reserve(2 * kFlushBytes); }
  ~Writer() { Flush(); }
  void Raw(std::string_view b) {
    buf_.append(b);
    if (buf_.size() >= kFlushBytes) Flush();
  }
  void Varint(uint64_t v) {
    char b[10];
    size_t n = 0;
    while (v >= 0x80) {
      b[n++] = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    b[n++] = static_cast<char>(v);
    Raw({b, n});
  }
  void String(std::string_view s) {
    Varint(s.size());
    Raw(s);
  }
  void Flush() {
    if (buf_.empty()) return;
    sink_(buf_);
    buf_.clear();
  }

 private:
  const std::function<void(std::string_view)>& sink_;
  std::string buf_;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) return false;
      const auto b = static_cast<unsigned char>(bytes_[pos_++]);
      if (shift == 63 && b > 1) return false;  // more than 64 bits
      v |= uint64_t{b & 0x7fu} << shift;
      if (b < 0x80) return true;
    }
    return false;
  }
  bool String(std::string_view& s) {
    uint64_t n = 0;
    if (!Varint(n) || n > bytes_.size() - pos_) return false;
    s = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Byte(uint8_t& b) {
    if (pos_ >= bytes_.size()) return false;
    b = static_cast<uint8_t>(bytes_[pos_++]);
    return true;
  }
  bool Expect(const char (&tag)[4]) {
    if (bytes_.size() - pos_ < 4 || std::memcmp(bytes_.data() + pos_, tag, 4) != 0) return false;
    pos_ += 4;
    return true;
  }
  size_t pos() const { return pos_; }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

}  // namespace

void CaseMachine::WriteCheckpoint(const std::function<void(std::string_view)>& sink) const {
  Writer w(sink);
  w.Raw({kMagic, 4});
  w.Varint(kFormat);
  w.Varint(next_case_id_);
  w.Varint(escalations_);
  w.Varint(cases_.size());
  std::string fields;
  cases_.ForEach([&](uint64_t id, const Stored& s) {
    w.Varint(id);
    if (s.parsed) {
      fields.clear();
      s.parsed->AppendToString(&fields);
      w.String(fields);
    } else {
      w.String(s.packed);  // restored and not used since: the bytes it was restored from
    }
    w.String(s.History());
  });
  w.Varint(requests_.size());
  requests_.ForEach([&](std::string_view id, Millis at, const RequestTable::Entry& e) {
    w.String(id);
    w.Varint(ZigZag(at));
    w.Varint(e.payload_hash);
    w.Varint(e.case_id);
    w.Varint(e.work_order_case);
    w.Varint(e.work_order_n);
    const bool known = e.department >= 0 && static_cast<size_t>(e.department) < departments_by_index_.size();
    w.String(known ? std::string_view(departments_by_index_[e.department]) : std::string_view());
    w.Raw(e.merged ? std::string_view("\1", 1) : std::string_view("\0", 1));
  });
  w.Raw({kEnd, 4});
}

Status CaseMachine::RestoreCheckpoint(std::string_view bytes, std::shared_ptr<const void> owner) {
  if (cases_.size() != 0 || requests_.size() != 0)
    return Status::FailedPrecondition("a checkpoint restores only into a new machine");
  if (!owner) {  // the cases will point into the bytes: keep a copy
    auto copy = std::make_shared<const std::string>(bytes);
    bytes = *copy;
    owner = std::move(copy);
  }
  Reader r(bytes);
  auto at = [](size_t pos, const std::string& what) {
    return Status::Corruption("checkpoint: " + what + " (at byte " + std::to_string(pos) + ")");
  };
  auto bad = [&](const std::string& what) { return at(r.pos(), what); };
  uint64_t format = 0, next_id = 0, escalations = 0, n_cases = 0;
  if (!r.Expect(kMagic)) return bad("not a machine checkpoint (no CBMC mark)");
  if (!r.Varint(format)) return bad("truncated format number");
  if (format != kFormat) return bad("format " + std::to_string(format) + ", this build reads " + std::to_string(kFormat));
  if (!r.Varint(next_id) || !r.Varint(escalations) || !r.Varint(n_cases)) return bad("truncated header");
  // Each case takes at least 3 bytes: a count beyond that is damage, not a reason to allocate.
  if (n_cases > bytes.size() / 3) return bad("case count " + std::to_string(n_cases) + " exceeds the bytes");

  // 1. Each case's slot, made present and pointed at its bytes (varints only): the table
  //    grows on this thread alone. Case ids are handed out from 1 in order and every case is
  //    kept (merged ones too), so the checkpoint holds cases 1..n and the next id is n + 1;
  //    memory grows only with what is read.
  if (next_id != n_cases + 1)
    return bad("next case id " + std::to_string(next_id) + " after " + std::to_string(n_cases) + " cases");
  for (uint64_t id = 1; id <= n_cases; ++id) {
    const size_t pos = r.pos();
    uint64_t read_id = 0;
    std::string_view fields, history;
    if (!r.Varint(read_id) || !r.String(fields) || !r.String(history)) return bad("truncated case " + std::to_string(id));
    if (read_id != id) return at(pos, "case id " + std::to_string(read_id) + " where case " + std::to_string(id) + " belongs");
    Stored& slot = cases_[id];
    slot.packed = fields;
    slot.packed_history = history;
  }
  // The views hold from here; a failure below leaves a machine the caller throws away.
  if (n_cases > 0) backing_ = std::move(owner);
  unparsed_ = n_cases;
  const size_t requests_at = r.pos();

  // 2. Three threads, sharing nothing but a ring of reused messages:
  //    - the parser parses each case in order into the ring (checking it; the case itself stays
  //      packed) and schedules its timers;
  //    - this thread follows it, adding each parsed case to the ledger, the per-state counts and
  //      the duplicate index; `parsed` hands messages over, `consumed` hands them back
  //      (release/acquire, every kPublish cases). The one ahead waits on the other's counter
  //      (a futex), not spinning: on two cores the spinner took the core the other needed;
  //    - a third restores the request ids meanwhile.
  constexpr size_t kRing = 2048, kPublish = 64;
  constexpr size_t kStopped = size_t{1} << 63;  // in `parsed`: the parser stopped at a damaged case
  std::vector<v1::Case> ring(kRing);
  std::atomic<size_t> parsed{0}, consumed{0};
  std::atomic<bool> failed{false};
  Status cases_status, requests_status;  // read after the joins
  auto fail = [&failed](Status& into, Status s) {
    into = std::move(s);
    failed.store(true, std::memory_order_release);
  };
  std::thread parser([&] {
    pthread_setname_np(pthread_self(), "cb-restore");
    for (size_t i = 0; i < n_cases; ++i) {
      const uint64_t id = i + 1;
      const std::string_view packed = cases_.at(id).packed;
      for (size_t c = consumed.load(std::memory_order_acquire); i >= c + kRing;
           c = consumed.load(std::memory_order_acquire))
        consumed.wait(c, std::memory_order_acquire);
      v1::Case& f = ring[i % kRing];
      auto bad_case = [&](const std::string& what) {
        fail(cases_status, at(static_cast<size_t>(packed.data() - bytes.data()), "case " + std::to_string(id) + " " + what));
        parsed.fetch_or(kStopped, std::memory_order_release);
        parsed.notify_one();
      };
      if (!f.ParseFromArray(packed.data(), static_cast<int>(packed.size())) || f.id() != id)
        return bad_case("does not parse as that case");
      const int state = static_cast<int>(f.state());
      if (state < 0 || static_cast<size_t>(state) >= by_state_.size())
        return bad_case("has state " + std::to_string(state));
      const v1::Place& place = f.place();
      if (place.has_coordinates() && !(std::isfinite(place.lat()) && std::isfinite(place.lon())))
        return bad_case("has coordinates that are not numbers");
      for (const auto& key : NextKeys(f))
        if (key) timers_.Add(*key);
      if ((i + 1) % kPublish == 0 || i + 1 == n_cases) {
        parsed.store(i + 1, std::memory_order_release);
        parsed.notify_one();
      }
    }
  });
  std::thread requests([&] {
    pthread_setname_np(pthread_self(), "cb-requests");
    Reader q(bytes.substr(requests_at));
    auto bad_request = [&](const std::string& what) { fail(requests_status, at(requests_at + q.pos(), what)); };
    uint64_t n_requests = 0;
    if (!q.Varint(n_requests)) return bad_request("truncated request count");
    if (n_requests > bytes.size() / 8) return bad_request("request count " + std::to_string(n_requests) + " exceeds the bytes");
    // Appended in order, indexed at the end in one sorted pass (RequestTable::BuildIndex).
    for (uint64_t i = 0; i < n_requests; ++i) {
      if (i % 65536 == 0 && failed.load(std::memory_order_relaxed)) return;
      std::string_view rid, department;
      uint64_t added = 0, wo_n = 0;
      uint8_t merged = 0;
      RequestTable::Entry e;
      if (!q.String(rid) || !q.Varint(added) || !q.Varint(e.payload_hash) || !q.Varint(e.case_id) ||
          !q.Varint(e.work_order_case) || !q.Varint(wo_n) || !q.String(department) || !q.Byte(merged))
        return bad_request("truncated request id " + std::to_string(i + 1));
      if (merged > 1) return bad_request("request id " + std::string(rid) + ": bad merged flag");
      if (wo_n > UINT32_MAX) return bad_request("request id " + std::string(rid) + ": work order number out of range");
      e.work_order_n = static_cast<uint32_t>(wo_n);
      e.merged = merged == 1;
      // Interned as replay would (a department the config has dropped keeps its name).
      e.department = department.empty() ? -1 : DepartmentIndex(std::string(department));
      requests_.Append(rid, UnZigZag(added), e);
    }
    if (!requests_.BuildIndex()) return bad_request("a request id appears twice");
    if (!q.Expect(kEnd)) return bad_request("no END. mark after the request ids");
    if (!q.done()) return bad_request("bytes after the END. mark");
  });
  for (size_t i = 0; i < n_cases; ++i) {
    size_t p = parsed.load(std::memory_order_acquire);
    for (; p <= i; p = parsed.load(std::memory_order_acquire)) parsed.wait(p, std::memory_order_acquire);
    if (p & kStopped) break;  // the parser stopped at a damaged case
    const v1::Case& f = ring[i % kRing];
    CountIn(cases_.at(i + 1), f);
    if (IsOpen(f.state())) deduper_.Restore(f);
    if ((i + 1) % kPublish == 0) {
      consumed.store(i + 1, std::memory_order_release);
      consumed.notify_one();
    }
  }
  parser.join();
  requests.join();
  if (!cases_status.ok()) return cases_status;
  if (!requests_status.ok()) return requests_status;
  next_case_id_ = next_id;
  escalations_ = escalations;
  return Status::Ok();
}

}  // namespace casebus::core

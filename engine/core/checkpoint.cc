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
    fields.clear();
    s.fields.AppendToString(&fields);
    w.String(fields);
    w.String(s.history);
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

Status CaseMachine::RestoreCheckpoint(std::string_view bytes) {
  if (cases_.size() != 0 || requests_.size() != 0)
    return Status::FailedPrecondition("a checkpoint restores only into a new machine");
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

  // 1. Where each case's bytes are (varints only), and its slot, made present here: the table
  //    grows on this thread alone.
  struct Span {
    size_t pos;  // of the case's id, for errors
    uint64_t id;
    std::string_view fields, history;
    Stored* slot;
  };
  // Case ids are handed out from 1 in order and every case is kept (merged ones too), so the
  // checkpoint holds cases 1..n and the next id is n + 1; memory grows only with what is read.
  if (next_id != n_cases + 1)
    return bad("next case id " + std::to_string(next_id) + " after " + std::to_string(n_cases) + " cases");
  std::vector<Span> spans;
  spans.reserve(std::min<uint64_t>(n_cases, bytes.size() / 64 + 1));
  for (uint64_t i = 0; i < n_cases; ++i) {
    Span& c = spans.emplace_back();
    c.pos = r.pos();
    if (!r.Varint(c.id) || !r.String(c.fields) || !r.String(c.history)) return bad("truncated case " + std::to_string(i + 1));
    if (c.id != i + 1) return at(c.pos, "case id " + std::to_string(c.id) + " where case " + std::to_string(i + 1) + " belongs");
    c.slot = &cases_[c.id];
  }
  const size_t requests_at = r.pos();

  // 2. A helper thread parses each case in order, then restores the request ids; this thread
  //    follows it, rebuilding from each parsed case what applying its events built. They share
  //    nothing but the parsed cases, handed over by `parsed` (release/acquire).
  std::atomic<size_t> parsed{0};
  std::atomic<bool> failed{false};
  Status helper_status;  // read after join
  std::thread helper([&] {
    auto fail = [&](Status s) {
      helper_status = std::move(s);
      failed.store(true, std::memory_order_release);
    };
    for (size_t i = 0; i < spans.size(); ++i) {
      const Span& c = spans[i];
      v1::Case& f = c.slot->fields;
      if (!f.ParseFromArray(c.fields.data(), static_cast<int>(c.fields.size())) || f.id() != c.id)
        return fail(at(c.pos, "case " + std::to_string(c.id) + " does not parse as that case"));
      const int state = static_cast<int>(f.state());
      if (state < 0 || static_cast<size_t>(state) >= by_state_.size())
        return fail(at(c.pos, "case " + std::to_string(f.id()) + " has state " + std::to_string(state)));
      const v1::Place& place = f.place();
      if (place.has_coordinates() && !(std::isfinite(place.lat()) && std::isfinite(place.lon())))
        return fail(at(c.pos, "case " + std::to_string(f.id()) + " has coordinates that are not numbers"));
      c.slot->history.assign(c.history);
      if ((i & 63) == 63 || i + 1 == spans.size()) parsed.store(i + 1, std::memory_order_release);
    }
    Reader q(bytes.substr(requests_at));
    auto bad_request = [&](const std::string& what) { return fail(at(requests_at + q.pos(), what)); };
    uint64_t n_requests = 0;
    if (!q.Varint(n_requests)) return bad_request("truncated request count");
    if (n_requests > bytes.size() / 8) return bad_request("request count " + std::to_string(n_requests) + " exceeds the bytes");
    requests_.Reserve(n_requests);
    // Read in groups: a group's home slots are prefetched together, then filled.
    struct Parsed {
      std::string_view rid;
      uint64_t hash;
      Millis added;
      RequestTable::Entry e;
    };
    constexpr size_t kGroup = 16;
    Parsed group[kGroup];
    for (uint64_t i = 0; i < n_requests;) {
      size_t g = 0;
      for (; g < kGroup && i < n_requests; ++g, ++i) {
        Parsed& p = group[g];
        std::string_view department;
        uint64_t added = 0, wo_n = 0;
        uint8_t merged = 0;
        if (!q.String(p.rid) || !q.Varint(added) || !q.Varint(p.e.payload_hash) || !q.Varint(p.e.case_id) ||
            !q.Varint(p.e.work_order_case) || !q.Varint(wo_n) || !q.String(department) || !q.Byte(merged))
          return bad_request("truncated request id " + std::to_string(i + 1));
        if (merged > 1) return bad_request("request id " + std::string(p.rid) + ": bad merged flag");
        if (wo_n > UINT32_MAX) return bad_request("request id " + std::string(p.rid) + ": work order number out of range");
        p.added = UnZigZag(added);
        p.e.work_order_n = static_cast<uint32_t>(wo_n);
        p.e.merged = merged == 1;
        // Interned as replay would (a department the config has dropped keeps its name).
        p.e.department = department.empty() ? -1 : DepartmentIndex(std::string(department));
        p.hash = requests_.Prefetch(p.rid);
      }
      for (size_t k = 0; k < g; ++k) requests_.Put(group[k].rid, group[k].hash, group[k].added, group[k].e);
    }
    if (!q.Expect(kEnd)) return bad_request("no END. mark after the request ids");
    if (!q.done()) return bad_request("bytes after the END. mark");
  });
  for (size_t i = 0; i < spans.size(); ++i) {
    while (parsed.load(std::memory_order_acquire) <= i) {
      if (failed.load(std::memory_order_acquire)) break;
      std::this_thread::yield();
    }
    if (parsed.load(std::memory_order_acquire) <= i) break;  // the helper failed before case i
    Stored& s = *spans[i].slot;
    const Ledger::Contribution counted = ledger_.Of(&s.fields);
    s.ledger_keys = counted.keys;
    ledger_.Add(counted);
    ++by_state_[static_cast<int>(s.fields.state())];
    if (s.fields.supervision_open()) ++supervisions_open_;
    for (const auto& key : NextKeys(s.fields))
      if (key) timers_.Add(*key);
    if (IsOpen(s.fields.state())) deduper_.Restore(s.fields);
  }
  helper.join();
  if (!helper_status.ok()) return helper_status;
  next_case_id_ = next_id;
  escalations_ = escalations;
  return Status::Ok();
}

}  // namespace casebus::core

#include "engine/core/replay_journal.h"

#include <pthread.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace casebus::core {

namespace {

// A ring slot: the record parsed, or, while the reader is the slower of the two, its bytes
// for the replaying thread to parse.
struct Slot {
  CaseMachine::PreparedRecord p;
  std::string raw;
  uint64_t seq = 0;
  bool parsed = false;
  bool bad = false;  // raw did not parse
};

// On the replaying thread: parses and prepares a slot the reader left as bytes.
void ParseHere(Slot& s) {
  if (s.parsed) return;
  s.parsed = true;
  s.bad = !s.p.record.ParseFromArray(s.raw.data(), static_cast<int>(s.raw.size()));
  if (!s.bad) CaseMachine::Prepare(s.p, s.raw);
}

}  // namespace

Status ReplayJournal(CaseMachine& machine, const std::function<Status(const JournalSink&)>& read,
                     const std::function<void(uint64_t seq)>& after, uint64_t& replayed) {
  // `parsed` hands records over, `consumed` hands slots back (release/acquire, every kPublish
  // records); the one ahead waits on the other's counter (a futex), not spinning: on two cores
  // a spinner takes the core the other needs. Each record is prefetched kAhead records before
  // its replay, so its cases are in the cache by its turn.
  //
  // The work is shared by how far the reader is ahead. Fewer than kParseAhead records ahead,
  // the reader is the slower thread: it hands the record over as bytes and the replaying
  // thread parses it (reading and parsing were the reader's whole time, with the other core a
  // quarter idle). kRing / 4 or more ahead, the replay is the slower: the reader also encodes
  // the history entries (CaseMachine::Prepare). In between it parses and the replay encodes.
  constexpr uint64_t kRing = 1024, kPublish = 32, kAhead = 8, kParseAhead = 128;
  constexpr uint64_t kEnd = uint64_t{1} << 63;  // in `parsed`: the reader is done
  std::vector<Slot> ring(kRing);
  std::atomic<uint64_t> parsed{0}, consumed{0};
  std::atomic<bool> abandon{false};  // the replay stopped at a record that did not parse
  Status scan, bad;  // each written by the reader, read after the join
  std::thread reader([&] {
    pthread_setname_np(pthread_self(), "cb-journal");
    uint64_t i = 0;
    scan = read([&](uint64_t seq, std::string_view bytes) {
      uint64_t c = consumed.load(std::memory_order_acquire);
      for (; i >= c + kRing; c = consumed.load(std::memory_order_acquire)) consumed.wait(c, std::memory_order_acquire);
      if (abandon.load(std::memory_order_acquire)) return false;
      Slot& r = ring[i % kRing];
      r.seq = seq;
      r.bad = false;
      if (i - c < kParseAhead) {
        r.raw.assign(bytes.data(), bytes.size());
        r.parsed = false;
      } else {
        if (!r.p.record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
          bad = Status::Corruption("journal record " + std::to_string(seq) + " does not parse");
          return false;
        }
        r.parsed = true;
        if (i - c >= kRing / 4) CaseMachine::Prepare(r.p, bytes);
        else r.p.prepared = false;
      }
      if (++i % kPublish == 0) {
        parsed.store(i, std::memory_order_release);
        parsed.notify_one();
      }
      return true;
    });
    parsed.store(i | kEnd, std::memory_order_release);
    parsed.notify_one();
  });
  Status stopped;  // a record this thread parsed that did not parse
  machine.BeginBulkReplay();
  uint64_t n = 0;
  for (uint64_t ready = 0;; ++n) {
    while (n >= ready) {
      const uint64_t p = parsed.load(std::memory_order_acquire);
      ready = p & ~kEnd;
      if (n < ready || (p & kEnd)) break;
      parsed.wait(p, std::memory_order_acquire);
    }
    if (n >= ready) break;  // the reader is done and every record it parsed is replayed
    if (n + kAhead < ready) {
      Slot& ahead = ring[(n + kAhead) % kRing];
      ParseHere(ahead);
      if (!ahead.bad) machine.Prefetch(ahead.p.record);
    }
    Slot& s = ring[n % kRing];
    ParseHere(s);
    if (s.bad) {
      stopped = Status::Corruption("journal record " + std::to_string(s.seq) + " does not parse");
      abandon.store(true, std::memory_order_release);
      consumed.store(kEnd, std::memory_order_release);  // wakes a reader waiting for a slot
      consumed.notify_one();
      break;
    }
    machine.Replay(s.p);
    if (after) after(s.seq);
    if ((n + 1) % kPublish == 0) {
      consumed.store(n + 1, std::memory_order_release);
      consumed.notify_one();
    }
  }
  machine.EndBulkReplay();
  reader.join();
  replayed = n;
  if (!stopped.ok()) return stopped;
  if (!scan.ok()) return scan;
  return bad;
}

}  // namespace casebus::core

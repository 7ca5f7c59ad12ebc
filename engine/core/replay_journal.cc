#include "engine/core/replay_journal.h"

#include <pthread.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace casebus::core {

Status ReplayJournal(CaseMachine& machine, const std::function<Status(const JournalSink&)>& read,
                     const std::function<void(uint64_t seq)>& after, uint64_t& replayed) {
  // `parsed` hands records over, `consumed` hands slots back (release/acquire, every kPublish
  // records); the one ahead waits on the other's counter (a futex), not spinning: on two cores
  // a spinner takes the core the other needs. Each record is prefetched kAhead records before
  // its replay, so its cases are in the cache by its turn.
  constexpr uint64_t kRing = 1024, kPublish = 32, kAhead = 8;
  constexpr uint64_t kEnd = uint64_t{1} << 63;  // in `parsed`: the reader is done
  std::vector<CaseMachine::PreparedRecord> ring(kRing);
  std::atomic<uint64_t> parsed{0}, consumed{0};
  Status scan, bad;  // each written by the reader, read after the join
  std::vector<uint64_t> seqs(kRing);
  std::thread reader([&] {
    pthread_setname_np(pthread_self(), "cb-journal");
    uint64_t i = 0;
    scan = read([&](uint64_t seq, std::string_view bytes) {
      uint64_t c = consumed.load(std::memory_order_acquire);
      for (; i >= c + kRing; c = consumed.load(std::memory_order_acquire)) consumed.wait(c, std::memory_order_acquire);
      CaseMachine::PreparedRecord& r = ring[i % kRing];
      if (!r.record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        bad = Status::Corruption("journal record " + std::to_string(seq) + " does not parse");
        return false;
      }
      seqs[i % kRing] = seq;
      // Encoding the history entries here pays only while this thread is ahead; when the
      // replay keeps up with it, the replay encodes them (the two cores stay busy alike).
      if (i - c >= kRing / 4) CaseMachine::Prepare(r, bytes);
      else r.prepared = false;
      if (++i % kPublish == 0) {
        parsed.store(i, std::memory_order_release);
        parsed.notify_one();
      }
      return true;
    });
    parsed.store(i | kEnd, std::memory_order_release);
    parsed.notify_one();
  });
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
    if (n + kAhead < ready) machine.Prefetch(ring[(n + kAhead) % kRing].record);
    machine.Replay(ring[n % kRing]);
    if (after) after(seqs[n % kRing]);
    if ((n + 1) % kPublish == 0) {
      consumed.store(n + 1, std::memory_order_release);
      consumed.notify_one();
    }
  }
  machine.EndBulkReplay();
  reader.join();
  replayed = n;
  if (!scan.ok()) return scan;
  return bad;
}

}  // namespace casebus::core

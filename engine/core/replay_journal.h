#pragma once
// ReplayJournal: recovery's replay of a stretch of journal, on two threads. One reads the
// records (the caller's `read`, a store scan) and parses them into a ring of reused messages,
// encoding their history entries too while it is ahead (CaseMachine::Prepare); the calling
// thread replays them behind it in bulk (CaseMachine::BeginBulkReplay: the cases' indexes are
// rebuilt once, at the end). Used by the engine's open and by bench/apply_bench, so the
// benchmark measures the code recovery runs.

#include <cstdint>
#include <functional>
#include <string_view>

#include "engine/base/status.h"
#include "engine/core/case_machine.h"

namespace casebus::core {

// read(sink): calls sink(seq, bytes) for each record in order until sink returns false, and
// returns its own status. after(seq): called after each record is replayed, on the calling
// thread, with the machine in bulk replay; it may end and begin it again (the engine compares
// the ledger at its stamp). `replayed` counts the records replayed. A record that does not
// parse stops the replay there: Corruption naming its seq.
using JournalSink = std::function<bool(uint64_t seq, std::string_view bytes)>;
Status ReplayJournal(CaseMachine& machine, const std::function<Status(const JournalSink&)>& read,
                     const std::function<void(uint64_t seq)>& after, uint64_t& replayed);

}  // namespace casebus::core

#include "engine/server/ledger_check.h"

#include "engine/config/time_zone.h"
#include "engine/core/case_machine.h"
#include "engine/server/engine.h"
#include "engine/store/store.h"

namespace casebus::server {

Result<LedgerCheck> CheckLedger(std::shared_ptr<const v1::CityConfig> config, const std::string& data_dir,
                                bool rewrite, size_t max_listed,
                                const std::function<void(uint64_t, uint64_t)>& progress) {
  auto offsets = config::CalendarOffsets(*config);
  if (!offsets) return Err(offsets.error());
  auto machine = core::CaseMachine::Create(config, std::move(*offsets));
  if (!machine) return Err(machine.error());
  auto store = store::Store::Open(data_dir + "/db");
  if (!store) return Err(store.error());
  LedgerCheck out;
  const uint64_t total = (*store)->last_seq();
  out.journal_records = total;
  out.as_of = total;  // a data directory from before the stamp: written with every batch
  if (auto stamp = (*store)->GetLedgerSeq()) out.as_of = std::min(*stamp, total);
  else if (stamp.error().code() != StatusCode::kNotFound) return Err(stamp.error());
  auto durable = LoadLedger(**store, **machine);
  if (!durable) return Err(durable.error());
  out.durable_buckets = durable->buckets;
  auto compare = [&] {
    out.cases = (*machine)->case_count();
    const core::Ledger recount = (*machine)->Recount();
    recount.ForEachBucket([&](const core::Ledger::Bucket& b) { out.recounted_buckets += b.counts != core::Counts{}; });
    out.first = core::CompareLedgers(durable->ledger, recount, max_listed, out.differences);
  };
  if (out.as_of == 0) compare();
  const uint64_t stop_after = rewrite ? total : out.as_of;
  Status bad;
  uint64_t replayed = 0;
  Status scan = (*store)->ForEachJournal([&](uint64_t seq, std::string_view bytes) {
    if (seq > stop_after) return false;
    v1::JournalRecord r;
    if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      bad = Status::Corruption("journal record " + std::to_string(seq) + " does not parse");
      return false;
    }
    (*machine)->Replay(r);
    if (++replayed % 100'000 == 0 && progress) progress(replayed, stop_after);
    if (seq == out.as_of) {
      out.records = replayed;
      compare();
    }
    return true;
  });
  if (!scan.ok()) return Err(scan);
  if (!bad.ok()) return Err(bad);
  if (progress) progress(replayed, stop_after);
  if (rewrite && (out.differences > 0 || out.as_of < total)) {
    const auto rows = LedgerRewrite((*machine)->Recount(), durable->ledger);
    if (Status st = (*store)->Commit({}, {}, {}, {}, rows, {}, total); !st.ok()) return Err(st);
    out.rewritten = rows.size();
  }
  return out;
}

}  // namespace casebus::server

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
  Status bad;
  Status scan = (*store)->ForEachJournal([&](uint64_t seq, std::string_view bytes) {
    v1::JournalRecord r;
    if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      bad = Status::Corruption("journal record " + std::to_string(seq) + " does not parse");
      return false;
    }
    (*machine)->Replay(r);
    if (++out.records % 100'000 == 0 && progress) progress(out.records, total);
    return true;
  });
  if (!scan.ok()) return Err(scan);
  if (!bad.ok()) return Err(bad);
  if (progress) progress(out.records, total);
  out.cases = (*machine)->case_count();
  auto durable = LoadLedger(**store, **machine);
  if (!durable) return Err(durable.error());
  out.durable_buckets = durable->buckets;
  const core::Ledger recount = (*machine)->Recount();
  recount.ForEachBucket([&](const core::Ledger::Bucket& b) { out.recounted_buckets += b.counts != core::Counts{}; });
  out.first = core::CompareLedgers(durable->ledger, recount, max_listed, out.differences);
  if (rewrite && out.differences > 0) {
    const auto rows = LedgerRewrite(recount, durable->ledger);
    if (Status st = (*store)->Commit({}, {}, {}, {}, rows); !st.ok()) return Err(st);
    out.rewritten = rows.size();
  }
  return out;
}

}  // namespace casebus::server

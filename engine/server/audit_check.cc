#include "engine/server/audit_check.h"

#include "casebus/v1/journal.pb.h"
#include "engine/base/audit_chain.h"
#include "engine/store/store.h"

namespace casebus::server {

Result<AuditReport> VerifyAudit(const std::string& data_dir,
                                const std::function<void(uint64_t, uint64_t)>& progress) {
  auto store = store::Store::Open(data_dir + "/db");
  if (!store) return Err(store.error());
  AuditReport out;
  const uint64_t total = (*store)->last_seq();
  uint64_t prev_seq = 0;
  std::string link;       // the link of the record at prev_seq
  bool chained = false;   // a record with a link has been seen
  auto broken = [&](uint64_t seq, std::string why) {
    if (!out.intact) return;
    out.intact = false;
    out.broken_at = seq;
    out.reason = std::move(why);
  };
  Status scan = (*store)->ForEachJournal([&](uint64_t seq, std::string_view bytes) {
    ++out.records;
    if (seq != prev_seq + 1) {
      broken(prev_seq + 1, seq > prev_seq + 1
                               ? "record " + std::to_string(prev_seq + 1) +
                                     (seq > prev_seq + 2 ? ".." + std::to_string(seq - 1) : "") + " missing"
                               : "record " + std::to_string(seq) + " out of order");
    }
    v1::JournalRecord r;
    if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      broken(seq, "record " + std::to_string(seq) + " does not parse");
    } else if (r.prev_hash().empty()) {
      if (chained) broken(seq, "record " + std::to_string(seq) + " carries no link but follows chained records");
      else ++out.unchained;
    } else {
      if (!chained && out.unchained > 0) --out.unchained;  // the record before is covered by this link
      chained = true;
      if (r.prev_hash() != link)
        broken(seq, "record " + std::to_string(seq) + " carries link " + Hex(r.prev_hash()).substr(0, 16) +
                        "…, but record " + std::to_string(prev_seq) + " hashes to " +
                        Hex(link).substr(0, 16) + "… (record " + std::to_string(prev_seq) +
                        " was changed, or " + std::to_string(seq) + " inserted or moved)");
    }
    link = AuditLink(seq, bytes);
    prev_seq = seq;
    if (progress && out.records % 200'000 == 0) progress(out.records, total);
    return true;
  });
  if (!scan.ok()) return Err(scan);
  if (progress) progress(out.records, total);
  if (out.records == 1 && out.unchained == 1 && chained == false) out.unchained = 0;  // a lone first record
  out.head = Hex(link);
  auto head = (*store)->GetJournalHead();
  if (head) {
    if (head->seq != prev_seq)
      broken(std::min(head->seq, prev_seq) + 1, "the journal ends at record " + std::to_string(prev_seq) +
                                                     " but the chain head says " + std::to_string(head->seq) +
                                                     " (records removed from or added to the end)");
    else if (head->link != link)
      broken(prev_seq, "the last record (" + std::to_string(prev_seq) + ") does not hash to the chain head (it was changed)");
  } else if (head.error().code() != StatusCode::kNotFound) {
    return Err(head.error());
  } else if (chained) {
    broken(prev_seq, "the chain head is missing");
  }
  return out;
}

}  // namespace casebus::server

#pragma once
// Deduper: finds the open case a new report duplicates — same category, within radius_m
// (or the same unit grid when the report has no coordinates), reported within window_hours.
//
// Owned by the CaseMachine and used only on its shard thread. The index holds each candidate
// with what never changes after its report (id, report time, coordinates), so a lookup scans
// contiguous entries, drops those past the window without touching the case, and looks up only
// the cases inside the radius (their state and category). Entries of finished cases are
// dropped when a bucket doubles. A lookup costs in proportion to the recent reports of one
// category nearby.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <absl/container/flat_hash_map.h>
#include <vector>

#include "casebus/v1/case.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/base/clock.h"

namespace casebus::core {

// Great-circle distance in metres (spherical Earth, R = 6,371,008.8 m).
double DistanceMetres(double lat1, double lon1, double lat2, double lon2);

class Deduper {
 public:
  // ref_lat: a latitude near the city, fixes the longitude cell width.
  Deduper(const v1::DedupPolicy& policy, double ref_lat);

  // Remembers a newly reported case as a candidate for later reports. Buckets are pruned as
  // they grow (at sizes 8, 16, 32, ...), so entries of cases that can never match again do not
  // pile up where no lookup comes by.
  void Add(const v1::Case& c, Millis now, const std::function<const v1::Case*(uint64_t)>& lookup);
  // Add without pruning, for a restore that puts back only open cases: pruning them would look
  // each one up again and drop nothing a lookup would not skip anyway (finished cases and
  // those past the window); the buckets are pruned when they next grow to a power of two.
  void Restore(const v1::Case& c);

  // Forgets a case that left the loop (closed, voided, rejected, merged); a reopened case is
  // Add()ed again. Keeps the index to open cases, so a lookup meets finished ones only when
  // the machine did not say (tests; Add's pruning still drops those).
  void Remove(const v1::Case& c);

  // lookup: case id → the case, or nullptr when unknown. Returns the id of the open case the
  // report duplicates (the nearest; the earliest on ties), or 0.
  uint64_t FindDuplicate(const v1::Case& report, Millis now,
                         const std::function<const v1::Case*(uint64_t)>& lookup);

 private:
  // Buckets are keyed by a 64-bit hash of (category, cell) or (category, grid); a bucket may
  // hold cases of another key that hashes alike, so candidates are checked in full.
  static uint64_t CellKey(std::string_view category, int64_t y, int64_t x);
  static uint64_t GridKey(std::string_view category, std::string_view grid);
  std::pair<int64_t, int64_t> Cell(double lat, double lon) const;
  struct Entry {
    uint64_t id;
    Millis reported_at;
    double lat, lon;  // meaningful in by_cell_ only
  };
  // Drops entries that can never match again: past the window (from the entry alone) and, when
  // `finished_too`, cases gone or out of the loop (a lookup each; CLOSED stays: it may reopen).
  void Prune(std::vector<Entry>& entries, Millis now, bool finished_too,
             const std::function<const v1::Case*(uint64_t)>& lookup);
  // Appends c to its buckets, calling before_add(bucket) on each first.
  template <typename BeforeAdd>
  void AddTo(const v1::Case& c, BeforeAdd&& before_add);

  double radius_m_;
  Millis window_ms_;
  double lat_step_, lon_step_;  // degrees per cell; a cell is at least radius wide
  // Open addressing (one probe into a flat array per lookup; a report looks up 9 cells).
  absl::flat_hash_map<uint64_t, std::vector<Entry>> by_cell_;  // coordinates known
  absl::flat_hash_map<uint64_t, std::vector<Entry>> by_grid_;  // every case
};

bool IsOpen(v1::CaseState s);

}  // namespace casebus::core

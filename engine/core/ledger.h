#pragma once
// Ledger: the closure counters (DESIGN.md "Ledger"), maintained as events apply, so a
// leadership query reads counters instead of scanning cases and costs the same in year 10 as
// on day 1.
//
// Counting rule. A case counts in the day it was registered (立案; reported, while it is not)
// in the city's calendar — the cohort practice of the monthly 通报: "November's closure rate"
// is about November's cases, as they stand now. Each case adds its current counters (Counts)
// to one key per dimension (Dim) for that day; on every event the case's old contribution is
// taken out and the new one put in, so a re-dispatch moves it between departments and a close
// moves it from overdue-open to closed. The deadline timer's EV_OVERDUE moves a case into
// 应结案 (due) and overdue-open at the instant its deadline passes. Merged cases count nowhere.
//
// Buckets: (key, day) → Counts, plus month roll-ups and all-history totals per key, so a query
// over a range reads at most ~62 day buckets and one per whole month for each key.
// Owned by the CaseMachine; shard thread only.

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "casebus/v1/case.pb.h"
#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/core/working_calendar.h"

namespace casebus::core {

// The ways the ledger groups cases. kCity has one key, "".
enum class Dim : uint8_t {
  kCity,
  kDepartment,
  kDistrict,
  kStreet,
  kCategory,
  kClass,
  kSource,
  kDistrictClass,  // "<district>/<class>"
};
inline constexpr int kDims = 8;
std::string_view DimName(Dim d);  // "city", "department", ... as in MetricsGroup

// The counters, named as the ClosureRow fields that carry them.
enum Counter : uint8_t {
  kRegistered,
  kDispatched,
  kDue,  // 应结案: handled (resolved, verified or closed) or open past the handle deadline
  kClosed,
  kClosedOnTime,
  kOverdueOpen,
  kRework,
  kReturned,
  kHandleDue,  // 应处置: dispatched, and handled or open past the deadline
  kHandled,
  kHandledOnTime,
  kReworkTimes,
  kExtended,
  kExtensionHours,
  kSuspended,
  kEscalated,
  kSupervised,
  kReported,
  kVoided,
  kPublicReported,
  kPendingOnTime,
  kCounters
};
using Counts = std::array<int64_t, kCounters>;

// Counts <-> ClosureRow counter fields (rates, key and name untouched).
void AddTo(v1::ClosureRow& row, const Counts& c);
Counts CountsFrom(const v1::ClosureRow& row);
std::string_view CounterName(Counter c);  // the ClosureRow field name

// What one case adds, given whether it is open past its handle deadline.
Counts CountsOf(const v1::Case& c, bool overdue_open);
// Counts one case into a row as of `as_of`, by its deadline (the scan for instants other than
// now; the maintained ledger must equal it at now).
void CountCase(v1::ClosureRow& row, const v1::Case& c, int64_t as_of);
bool Undisposed(v1::CaseState s);
bool Disposed(v1::CaseState s);

class Ledger {
 public:
  using KeyId = uint32_t;
  // What one case adds to the counters.
  struct Contribution {
    bool counted = false;
    int32_t day = 0;  // local days since 1970-01-01
    std::array<KeyId, kDims> keys{};
    Counts counts{};
  };
  // One (key, day) bucket, for persistence and comparison.
  struct Bucket {
    Dim dim;
    std::string key;
    int32_t day;
    Counts counts;
  };

  Ledger(const v1::CityConfig& config, const WorkingCalendar& calendar);
  // Moves keep the bucket caches valid (node-based maps); a copy would not.
  Ledger(Ledger&&) = default;
  Ledger& operator=(Ledger&&) = default;
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;
  // The category → class map from a (reloaded) config; counters already kept stay as they are.
  void SetClasses(const v1::CityConfig& config);

  // nullptr (no case yet) contributes nothing. `hint`: the keys the same case had before
  // (its last contribution); a key whose name still matches is reused without a lookup.
  Contribution Of(const v1::Case* c, const std::array<KeyId, kDims>* hint = nullptr);
  // Takes `before` out and puts `after` in.
  void Move(const Contribution& before, const Contribution& after);
  void Add(const Contribution& c) { Move({}, c); }

  // Counters per key of `dim` summed over local days [from_day, to_day]; keys with nothing in
  // the range are left out. Cost: keys × (days at the range's ragged ends + whole months).
  std::vector<std::pair<std::string, Counts>> Sum(Dim dim, int64_t from_day, int64_t to_day) const;
  // Per day of [from_day, to_day] for the whole city, days with nothing left out.
  std::vector<std::pair<int32_t, Counts>> Days(int64_t from_day, int64_t to_day) const;
  // All history per key of `dim`.
  std::vector<std::pair<std::string, Counts>> Totals(Dim dim) const;
  // First and last day holding a case (0, -1 when empty).
  int64_t first_day() const { return first_day_; }
  int64_t last_day() const { return last_day_; }

  // Buckets changed since the last call, with their current counts (the store writes them in
  // the same batch as the events that changed them).
  std::vector<Bucket> TakeDirty();
  void ForEachBucket(const std::function<void(const Bucket&)>& f) const;
  // Sets one bucket as read from the store (a ledger loaded for comparison).
  void Load(const Bucket& b);
  size_t bucket_count() const { return days_.size(); }

  // The store's key for a bucket: dim byte, key, NUL, big-endian day. Parse returns false on a
  // malformed key.
  static std::string EncodeKey(Dim dim, std::string_view key, int32_t day);
  static bool ParseKey(std::string_view bytes, Dim& dim, std::string& key, int32_t& day);
  // The store's value: the counters as a ClosureRow; "" for all zero (the row is deleted).
  static std::string EncodeValue(const Counts& counts);
  static bool ParseValue(std::string_view bytes, Counts& counts);

 private:
  struct DayBucket {
    Counts counts{};
    bool dirty = false;
  };
  struct SvHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using KeyMap = std::unordered_map<std::string, KeyId, SvHash, std::equal_to<>>;

  KeyId Intern(Dim dim, std::string_view key);
  void Apply(const Contribution& c, int sign);
  static uint64_t BucketKey(KeyId k, int64_t day_or_month) {
    return (uint64_t{k} << 32) | static_cast<uint32_t>(day_or_month);
  }
  static int64_t MonthOf(int64_t day);  // months since 1970-01
  static int64_t FirstDayOfMonth(int64_t month);

  struct LastKey {
    std::string key;
    KeyId id = 0;
    bool valid = false;
  };
  const WorkingCalendar* calendar_;
  std::array<KeyMap, kDims> ids_;
  std::array<LastKey, kDims> last_;  // the last key looked up per dimension
  std::vector<std::string> names_;  // by KeyId
  std::vector<Dim> dim_of_;         // by KeyId
  std::array<std::vector<KeyId>, kDims> keys_of_;
  std::unordered_map<std::string, std::string> class_of_;  // category code → class code
  int classes_set_ = 0;            // SetClasses calls (the constructor's is the first)
  bool classes_reloaded_ = false;  // SetClasses ran after construction: no class shortcut
  std::unordered_map<uint64_t, KeyId> district_class_;     // (district id, class id) → key
  std::unordered_map<uint64_t, DayBucket> days_;
  std::unordered_map<uint64_t, Counts> months_;
  // Per KeyId, the day and month bucket it touched last (most events touch today's): found
  // again without hashing. Node-based maps never move their elements, and none is erased.
  struct LastBucket {
    int64_t day = INT64_MIN, month = INT64_MIN;
    DayBucket* day_bucket = nullptr;
    Counts* month_counts = nullptr;
  };
  std::vector<LastBucket> last_bucket_;  // by KeyId
  std::vector<Counts> totals_;  // by KeyId
  std::vector<uint64_t> dirty_;
  int64_t first_day_ = 0, last_day_ = -1;
};

// One counter of one bucket where two ledgers disagree.
struct LedgerDifference {
  Dim dim;
  std::string key;
  int32_t day;
  Counter counter;
  int64_t maintained, recomputed;
};
// Every difference between the day buckets of two ledgers (a missing bucket counts as zero),
// sorted by dim, key, day, counter; at most `limit` of them, `total` set to how many in all.
std::vector<LedgerDifference> CompareLedgers(const Ledger& maintained, const Ledger& recomputed,
                                             size_t limit, size_t& total);

// Rates, composite index and ranks of metrics rows, by the city's policy (DOMAIN.md §4).
// Ranks only when `ranked` (departments, districts, streets are evaluated units): rows with
// at least min_sample cases due, by index, then closure rate, then key.
void FinishRate(v1::ClosureRow& row, const v1::MetricsPolicy& policy);
void RankRows(google::protobuf::RepeatedPtrField<v1::ClosureRow>& rows, const v1::MetricsPolicy& policy);

}  // namespace casebus::core

#include "engine/core/ledger.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>
#include <optional>

#include "engine/base/time_format.h"

namespace casebus::core {
namespace {

using Getter = int64_t (v1::ClosureRow::*)() const;
using Setter = void (v1::ClosureRow::*)(int64_t);
struct CounterField {
  std::string_view name;
  Getter get;
  Setter set;
};
// In Counter order.
constexpr CounterField kFields[kCounters] = {
    {"registered", &v1::ClosureRow::registered, &v1::ClosureRow::set_registered},
    {"dispatched", &v1::ClosureRow::dispatched, &v1::ClosureRow::set_dispatched},
    {"due", &v1::ClosureRow::due, &v1::ClosureRow::set_due},
    {"closed", &v1::ClosureRow::closed, &v1::ClosureRow::set_closed},
    {"closed_on_time", &v1::ClosureRow::closed_on_time, &v1::ClosureRow::set_closed_on_time},
    {"overdue_open", &v1::ClosureRow::overdue_open, &v1::ClosureRow::set_overdue_open},
    {"rework", &v1::ClosureRow::rework, &v1::ClosureRow::set_rework},
    {"returned", &v1::ClosureRow::returned, &v1::ClosureRow::set_returned},
    {"handle_due", &v1::ClosureRow::handle_due, &v1::ClosureRow::set_handle_due},
    {"handled", &v1::ClosureRow::handled, &v1::ClosureRow::set_handled},
    {"handled_on_time", &v1::ClosureRow::handled_on_time, &v1::ClosureRow::set_handled_on_time},
    {"rework_times", &v1::ClosureRow::rework_times, &v1::ClosureRow::set_rework_times},
    {"extended", &v1::ClosureRow::extended, &v1::ClosureRow::set_extended},
    {"extension_hours", &v1::ClosureRow::extension_hours, &v1::ClosureRow::set_extension_hours},
    {"suspended", &v1::ClosureRow::suspended, &v1::ClosureRow::set_suspended},
    {"escalated", &v1::ClosureRow::escalated, &v1::ClosureRow::set_escalated},
    {"supervised", &v1::ClosureRow::supervised, &v1::ClosureRow::set_supervised},
    {"reported", &v1::ClosureRow::reported, &v1::ClosureRow::set_reported},
    {"voided", &v1::ClosureRow::voided, &v1::ClosureRow::set_voided},
    {"public_reported", &v1::ClosureRow::public_reported, &v1::ClosureRow::set_public_reported},
    {"pending_on_time", &v1::ClosureRow::pending_on_time, &v1::ClosureRow::set_pending_on_time},
};

constexpr std::string_view kDimNames[kDims] = {"city",   "department", "district", "street",
                                               "category", "class",    "source",   "district_class"};

void AddCounts(Counts& to, const Counts& from, int sign) {
  for (int i = 0; i < kCounters; ++i) to[i] += sign * from[i];
}

bool IsPublic(v1::Source s) { return s == v1::HOTLINE || s == v1::APP || s == v1::OPEN311; }

std::string SourceKeyOf(v1::Source s) {
  if (s == v1::SOURCE_UNSPECIFIED || !v1::Source_IsValid(s)) return "unknown";
  std::string n = v1::Source_Name(s);
  for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return n;
}

// The source's key ("inspector"), made once per source (this runs for every event).
std::string_view SourceKey(v1::Source s) {
  static const std::array<std::string, 64> keys = [] {
    std::array<std::string, 64> k;
    for (int i = 0; i < 64; ++i) k[i] = SourceKeyOf(static_cast<v1::Source>(i));
    return k;
  }();
  const int i = static_cast<int>(s);
  return i >= 0 && i < 64 ? std::string_view(keys[i]) : std::string_view("unknown");
}

}  // namespace

std::string_view DimName(Dim d) { return kDimNames[static_cast<int>(d)]; }
std::string_view CounterName(Counter c) { return kFields[c].name; }

// The member pointers are read into a local before the call: GCC 12's -fsanitize=undefined
// miscompiles a call through `(row.*kFields[i].set)` (a bogus index, then a crash; a
// ten-line program shows it), which made the sanitizer build of the suite fail here.
void AddTo(v1::ClosureRow& row, const Counts& c) {
  for (int i = 0; i < kCounters; ++i) {
    const CounterField& f = kFields[i];
    if (c[i] != 0) (row.*f.set)((row.*f.get)() + c[i]);
  }
}

Counts CountsFrom(const v1::ClosureRow& row) {
  Counts c{};
  for (int i = 0; i < kCounters; ++i) {
    const CounterField& f = kFields[i];
    c[i] = (row.*f.get)();
  }
  return c;
}

bool Undisposed(v1::CaseState s) {
  return s == v1::DISPATCHED || s == v1::ACCEPTED || s == v1::RETURNED;
}
bool Disposed(v1::CaseState s) {
  return s == v1::RESOLVED || s == v1::VERIFIED || s == v1::CLOSED;
}

Counts CountsOf(const v1::Case& c, bool overdue_open) {
  Counts n{};
  const bool registered = c.registered_at_ms() > 0;
  const bool dispatched = c.dispatched_at_ms() > 0;
  const bool disposed = Disposed(c.state());
  n[kReported] = 1;
  n[kRegistered] = registered;
  n[kDispatched] = dispatched;
  n[kOverdueOpen] = overdue_open;
  // 应结案 = disposed + still undisposed past the deadline (DOMAIN.md §4).
  n[kDue] = disposed || overdue_open;
  n[kClosed] = c.state() == v1::CLOSED;
  n[kClosedOnTime] = c.state() == v1::CLOSED && c.closed_on_time();
  n[kHandleDue] = dispatched && (disposed || overdue_open);
  n[kHandled] = dispatched && disposed;
  n[kHandledOnTime] = dispatched && disposed &&
                      (c.handle_deadline_ms() == 0 || c.resolved_at_ms() <= c.handle_deadline_ms());
  // Rework and extension count among the cases their rates are over (应结案, 应处置), so a
  // rate stays within 0..1: a reworked case not yet due is not yet in the figures.
  n[kRework] = n[kDue] && c.rework_count() > 0;
  n[kReworkTimes] = c.rework_count();
  n[kReturned] = c.return_count() > 0;
  n[kExtended] = n[kHandleDue] && c.extension_count() > 0;
  n[kExtensionHours] = c.extension_hours();
  n[kSuspended] = c.state() == v1::SUSPENDED;
  n[kEscalated] = c.escalation_count() > 0;
  n[kSupervised] = c.supervision_count() > 0;
  n[kVoided] = c.state() == v1::REJECTED || c.state() == v1::VOIDED;
  n[kPublicReported] = registered && IsPublic(c.source());
  const auto s = c.state();
  n[kPendingOnTime] = registered && !overdue_open &&
                      (s == v1::REGISTERED || Undisposed(s) || s == v1::SUSPENDED);
  return n;
}

void CountCase(v1::ClosureRow& row, const v1::Case& c, int64_t as_of) {
  const bool overdue_open =
      Undisposed(c.state()) && c.handle_deadline_ms() > 0 && c.handle_deadline_ms() <= as_of;
  AddTo(row, CountsOf(c, overdue_open));
}

Ledger::Ledger(const v1::CityConfig& config, const WorkingCalendar& calendar)
    : calendar_(&calendar) {
  SetClasses(config);
  Intern(Dim::kCity, "");
}

void Ledger::SetClasses(const v1::CityConfig& config) {
  // A reload may move categories between classes: from then on every event looks its class
  // up again (the constructor's call is the first, not a reload).
  classes_reloaded_ = classes_set_++ > 0;
  class_of_.clear();
  std::unordered_map<std::string, std::string> parent;
  for (const auto& c : config.categories()) parent[c.code()] = c.parent();
  for (const auto& c : config.categories()) {
    std::string root = c.code();
    for (int hops = 0; hops < 16; ++hops) {  // validated configs have no cycles; bound anyway
      auto it = parent.find(root);
      if (it == parent.end() || it->second.empty()) break;
      root = it->second;
    }
    class_of_[c.code()] = root;
  }
}

Ledger::KeyId Ledger::Intern(Dim dim, std::string_view key) {
  // Every event looks up its case's keys twice (before and after): the last key of each
  // dimension answers the second lookup without hashing.
  LastKey& last = last_[static_cast<int>(dim)];
  if (last.valid && last.key == key) return last.id;
  auto& ids = ids_[static_cast<int>(dim)];
  if (auto it = ids.find(key); it != ids.end()) {
    last.key.assign(key);
    last.id = it->second;
    last.valid = true;
    return it->second;
  }
  const auto id = static_cast<KeyId>(names_.size());
  ids.emplace(std::string(key), id);
  names_.emplace_back(key);
  last_bucket_.emplace_back();
  dim_of_.push_back(dim);
  keys_of_[static_cast<int>(dim)].push_back(id);
  totals_.emplace_back();
  return id;
}

Ledger::Contribution Ledger::Of(const v1::Case* cp, const std::array<KeyId, kDims>* hint) {
  Contribution k;
  if (!cp || cp->state() == v1::MERGED) return k;
  const v1::Case& c = *cp;
  k.counted = true;
  const Millis cohort = c.registered_at_ms() > 0 ? c.registered_at_ms() : c.reported_at_ms();
  k.day = static_cast<int32_t>(calendar_->LocalDay(cohort));
  const std::string_view grid = c.place().grid();
  const std::string_view district = grid.substr(0, std::min<size_t>(6, grid.size()));
  const std::string_view street = grid.substr(0, std::min<size_t>(9, grid.size()));
  // The case's previous key for a dimension when its name is unchanged (a string compare),
  // else a lookup.
  auto key = [&](Dim dim, std::string_view name) {
    const int d = static_cast<int>(dim);
    if (hint && (*hint)[d] < names_.size() && dim_of_[(*hint)[d]] == dim && names_[(*hint)[d]] == name)
      return (*hint)[d];
    return Intern(dim, name);
  };
  k.keys[static_cast<int>(Dim::kCity)] = 0;
  // A case not yet dispatched has no department: it counts under "" (the city's own desk).
  k.keys[static_cast<int>(Dim::kDepartment)] = key(Dim::kDepartment, c.department());
  const KeyId district_id = key(Dim::kDistrict, district);
  k.keys[static_cast<int>(Dim::kDistrict)] = district_id;
  k.keys[static_cast<int>(Dim::kStreet)] = key(Dim::kStreet, street);
  const KeyId category_id = key(Dim::kCategory, c.category());
  k.keys[static_cast<int>(Dim::kCategory)] = category_id;
  // The class follows from the category: an unchanged category keeps its class key.
  constexpr int kCl = static_cast<int>(Dim::kClass);
  std::string_view class_code;
  KeyId class_id;
  if (hint && !classes_reloaded_ && category_id == (*hint)[static_cast<int>(Dim::kCategory)] &&
      (*hint)[kCl] < names_.size() &&
      dim_of_[(*hint)[kCl]] == Dim::kClass) {
    class_id = (*hint)[kCl];
    class_code = names_[class_id];
  } else {
    auto cls = class_of_.find(c.category());
    class_code = cls == class_of_.end() ? std::string_view(c.category()) : std::string_view(cls->second);
    class_id = key(Dim::kClass, class_code);
  }
  k.keys[kCl] = class_id;
  k.keys[static_cast<int>(Dim::kSource)] = key(Dim::kSource, SourceKey(c.source()));
  constexpr int kDc = static_cast<int>(Dim::kDistrictClass);
  if (hint && district_id == (*hint)[static_cast<int>(Dim::kDistrict)] &&
      class_id == (*hint)[static_cast<int>(Dim::kClass)] && (*hint)[kDc] < names_.size() &&
      dim_of_[(*hint)[kDc]] == Dim::kDistrictClass) {
    k.keys[kDc] = (*hint)[kDc];
  } else {
    const uint64_t pair = (uint64_t{district_id} << 32) | class_id;
    auto dc = district_class_.find(pair);
    if (dc == district_class_.end()) {
      std::string dc_key = std::string(district) + "/" + std::string(class_code);
      dc = district_class_.emplace(pair, Intern(Dim::kDistrictClass, dc_key)).first;
    }
    k.keys[kDc] = dc->second;
  }
  k.counts = CountsOf(c, Undisposed(c.state()) && c.overdue_at_ms() > 0);
  return k;
}

int64_t Ledger::MonthOf(int64_t day) {
  int y;
  unsigned m, d;
  CivilFromDays(day, y, m, d);
  return (int64_t{y} - 1970) * 12 + (m - 1);
}

int64_t Ledger::FirstDayOfMonth(int64_t month) {
  const int64_t y = 1970 + (month >= 0 ? month / 12 : (month - 11) / 12);
  const int64_t m = month - (y - 1970) * 12;
  return DaysFromCivil(static_cast<int>(y), static_cast<unsigned>(m + 1), 1);
}

void Ledger::Apply(const Contribution& c, int sign) {
  const int64_t month = MonthOf(c.day);
  // A case's counts are sparse (a few counters of kCounters): add only those, 3 × kDims times.
  std::array<std::pair<int, int64_t>, kCounters> nonzero;
  int n = 0;
  for (int i = 0; i < kCounters; ++i)
    if (c.counts[i] != 0) nonzero[n++] = {i, sign * c.counts[i]};
  auto add = [&](Counts& to) {
    for (int j = 0; j < n; ++j) to[nonzero[j].first] += nonzero[j].second;
  };
  for (int d = 0; d < kDims; ++d) {
    const KeyId k = c.keys[d];
    LastBucket& last = last_bucket_[k];
    if (last.day != c.day) {
      last.day = c.day;
      last.day_bucket = &days_[BucketKey(k, c.day)];
    }
    if (last.month != month) {
      last.month = month;
      last.month_counts = &months_[BucketKey(k, month)];
    }
    DayBucket& b = *last.day_bucket;
    add(b.counts);
    if (!b.dirty) {
      b.dirty = true;
      dirty_.push_back(BucketKey(k, c.day));
    }
    add(*last.month_counts);
    add(totals_[k]);
  }
  if (first_day_ > last_day_) {
    first_day_ = last_day_ = c.day;
  } else {
    first_day_ = std::min<int64_t>(first_day_, c.day);
    last_day_ = std::max<int64_t>(last_day_, c.day);
  }
}

void Ledger::Move(const Contribution& before, const Contribution& after) {
  if (!before.counted && !after.counted) return;
  if (before.counted && after.counted && before.day == after.day && before.keys == after.keys) {
    if (before.counts == after.counts) return;
    Contribution delta = after;
    AddCounts(delta.counts, before.counts, -1);
    Apply(delta, +1);
    return;
  }
  if (before.counted) Apply(before, -1);
  if (after.counted) Apply(after, +1);
}

std::vector<std::pair<std::string, Counts>> Ledger::Sum(Dim dim, int64_t from_day,
                                                         int64_t to_day) const {
  std::vector<std::pair<std::string, Counts>> out;
  if (from_day <= first_day_ && to_day >= last_day_) return Totals(dim);
  from_day = std::max(from_day, first_day_);
  to_day = std::min(to_day, last_day_);
  for (KeyId k : keys_of_[static_cast<int>(dim)]) {
    Counts sum{};
    bool any = false;
    for (int64_t d = from_day; d <= to_day;) {
      const int64_t month = MonthOf(d);
      const int64_t next_month = FirstDayOfMonth(month + 1);
      if (d == FirstDayOfMonth(month) && next_month - 1 <= to_day) {
        if (auto it = months_.find(BucketKey(k, month)); it != months_.end()) {
          AddCounts(sum, it->second, 1);
          any = true;
        }
        d = next_month;
        continue;
      }
      if (auto it = days_.find(BucketKey(k, d)); it != days_.end()) {
        AddCounts(sum, it->second.counts, 1);
        any = true;
      }
      ++d;
    }
    if (any && sum != Counts{}) out.emplace_back(names_[k], sum);
  }
  return out;
}

std::vector<std::pair<int32_t, Counts>> Ledger::Days(int64_t from_day, int64_t to_day) const {
  std::vector<std::pair<int32_t, Counts>> out;
  from_day = std::max(from_day, first_day_);
  to_day = std::min(to_day, last_day_);
  for (int64_t d = from_day; d <= to_day; ++d) {
    auto it = days_.find(BucketKey(0, d));
    if (it != days_.end() && it->second.counts != Counts{})
      out.emplace_back(static_cast<int32_t>(d), it->second.counts);
  }
  return out;
}

std::vector<std::pair<std::string, Counts>> Ledger::Totals(Dim dim) const {
  std::vector<std::pair<std::string, Counts>> out;
  for (KeyId k : keys_of_[static_cast<int>(dim)]) {
    if (totals_[k] != Counts{}) out.emplace_back(names_[k], totals_[k]);
  }
  return out;
}

std::vector<Ledger::Bucket> Ledger::TakeDirty() {
  std::vector<Bucket> out;
  out.reserve(dirty_.size());
  for (uint64_t bk : dirty_) {
    DayBucket& b = days_.at(bk);
    b.dirty = false;
    const auto k = static_cast<KeyId>(bk >> 32);
    out.push_back({dim_of_[k], names_[k], static_cast<int32_t>(static_cast<uint32_t>(bk)), b.counts});
  }
  dirty_.clear();
  return out;
}

void Ledger::ForEachBucket(const std::function<void(const Bucket&)>& f) const {
  for (const auto& [bk, b] : days_) {
    const auto k = static_cast<KeyId>(bk >> 32);
    f({dim_of_[k], names_[k], static_cast<int32_t>(static_cast<uint32_t>(bk)), b.counts});
  }
}

void Ledger::Load(const Bucket& b) {
  const KeyId k = Intern(b.dim, b.key);
  DayBucket& day = days_[BucketKey(k, b.day)];
  AddCounts(day.counts, b.counts, 1);
  AddCounts(months_[BucketKey(k, MonthOf(b.day))], b.counts, 1);
  AddCounts(totals_[k], b.counts, 1);
  if (first_day_ > last_day_) {
    first_day_ = last_day_ = b.day;
  } else {
    first_day_ = std::min<int64_t>(first_day_, b.day);
    last_day_ = std::max<int64_t>(last_day_, b.day);
  }
}

std::string Ledger::EncodeKey(Dim dim, std::string_view key, int32_t day) {
  std::string out;
  out.reserve(key.size() + 6);
  out.push_back(static_cast<char>(dim));
  out.append(key);
  out.push_back('\0');
  const auto u = static_cast<uint32_t>(day);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((u >> shift) & 0xff));
  return out;
}

bool Ledger::ParseKey(std::string_view bytes, Dim& dim, std::string& key, int32_t& day) {
  if (bytes.size() < 6) return false;
  const auto d = static_cast<uint8_t>(bytes[0]);
  if (d >= kDims) return false;
  if (bytes[bytes.size() - 5] != '\0') return false;
  const std::string_view k = bytes.substr(1, bytes.size() - 6);
  if (k.find('\0') != std::string_view::npos) return false;
  uint32_t u = 0;
  for (size_t i = bytes.size() - 4; i < bytes.size(); ++i) u = (u << 8) | static_cast<uint8_t>(bytes[i]);
  dim = static_cast<Dim>(d);
  key.assign(k);
  day = static_cast<int32_t>(u);
  return true;
}

std::string Ledger::EncodeValue(const Counts& counts) {
  if (counts == Counts{}) return {};
  v1::ClosureRow row;
  AddTo(row, counts);
  return row.SerializeAsString();
}

bool Ledger::ParseValue(std::string_view bytes, Counts& counts) {
  v1::ClosureRow row;
  if (!row.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  counts = CountsFrom(row);
  return true;
}

std::vector<LedgerDifference> CompareLedgers(const Ledger& maintained, const Ledger& recomputed,
                                             size_t limit, size_t& total) {
  using Id = std::tuple<int, std::string, int32_t>;
  std::map<Id, std::pair<Counts, Counts>> all;
  maintained.ForEachBucket([&](const Ledger::Bucket& b) {
    all[{static_cast<int>(b.dim), b.key, b.day}].first = b.counts;
  });
  recomputed.ForEachBucket([&](const Ledger::Bucket& b) {
    all[{static_cast<int>(b.dim), b.key, b.day}].second = b.counts;
  });
  std::vector<LedgerDifference> out;
  total = 0;
  for (const auto& [id, pair] : all) {
    for (int c = 0; c < kCounters; ++c) {
      if (pair.first[c] == pair.second[c]) continue;
      if (++total > limit) continue;
      out.push_back({static_cast<Dim>(std::get<0>(id)), std::get<1>(id), std::get<2>(id),
                     static_cast<Counter>(c), pair.first[c], pair.second[c]});
    }
  }
  return out;
}

// ---- rates, index, ranks ----

namespace {

double Ratio(int64_t n, int64_t d) { return static_cast<double>(n) / static_cast<double>(d); }

// The value of `rate` on a finished row, or nullopt when its denominator is 0.
std::optional<double> RateOf(const v1::ClosureRow& r, v1::Rate rate) {
  int bit = -1;
  double v = 0;
  switch (rate) {
    case v1::CLOSURE_RATE: bit = 0, v = r.closure_rate(); break;
    case v1::ON_TIME_CLOSURE_RATE: bit = 1, v = r.on_time_closure_rate(); break;
    case v1::HANDLING_RATE: bit = 2, v = r.handling_rate(); break;
    case v1::ON_TIME_HANDLING_RATE: bit = 3, v = r.on_time_handling_rate(); break;
    case v1::REWORK_RATE: bit = 4, v = r.rework_rate(); break;
    case v1::OVERDUE_OPEN_RATE: bit = 5, v = r.overdue_open_rate(); break;
    case v1::EXTENSION_RATE: bit = 6, v = r.extension_rate(); break;
    case v1::PUBLIC_REPORT_RATE: bit = 7, v = r.public_report_rate(); break;
    default: return std::nullopt;
  }
  if (!(r.has_rates() & (1u << bit))) return std::nullopt;
  return v;
}

}  // namespace

void FinishRate(v1::ClosureRow& r, const v1::MetricsPolicy& policy) {
  uint32_t bits = 0;
  auto set = [&](int bit, int64_t num, int64_t den, void (v1::ClosureRow::*setter)(double)) {
    if (den <= 0) {
      (r.*setter)(0);
      return;
    }
    (r.*setter)(Ratio(num, den));
    bits |= 1u << bit;
  };
  const int64_t closure_base = policy.closure_denominator() == v1::REGISTERED_LESS_PENDING
                                   ? r.registered() - r.pending_on_time()
                                   : r.due();
  const int64_t rework_base =
      policy.rework_denominator() == v1::REGISTERED_CASES ? r.registered() : r.due();
  set(0, r.closed(), closure_base, &v1::ClosureRow::set_closure_rate);
  set(1, r.closed_on_time(), closure_base, &v1::ClosureRow::set_on_time_closure_rate);
  set(2, r.handled(), r.handle_due(), &v1::ClosureRow::set_handling_rate);
  set(3, r.handled_on_time(), r.handle_due(), &v1::ClosureRow::set_on_time_handling_rate);
  set(4, r.rework(), rework_base, &v1::ClosureRow::set_rework_rate);
  set(5, r.overdue_open(), r.handle_due(), &v1::ClosureRow::set_overdue_open_rate);
  set(6, r.extended(), r.handle_due(), &v1::ClosureRow::set_extension_rate);
  set(7, r.public_reported(), r.registered(), &v1::ClosureRow::set_public_report_rate);
  r.set_has_rates(bits);
  double all = 0, used = 0, score = 0;
  for (const auto& t : policy.index()) {
    all += t.weight();
    const auto v = RateOf(r, t.rate());
    if (!v) continue;
    used += t.weight();
    score += t.weight() * (t.inverse() ? 1.0 - *v : *v);
  }
  r.set_has_index(used > 0);
  r.set_index(used > 0 ? score * all / used : 0);
  r.set_rank(0);
}

void RankRows(google::protobuf::RepeatedPtrField<v1::ClosureRow>& rows, const v1::MetricsPolicy& policy) {
  std::vector<v1::ClosureRow*> order;
  for (auto& r : rows) order.push_back(&r);
  auto eligible = [&](const v1::ClosureRow* r) {
    return r->has_index() && r->due() >= std::max<int64_t>(1, policy.min_sample());
  };
  std::stable_sort(order.begin(), order.end(), [&](const v1::ClosureRow* a, const v1::ClosureRow* b) {
    const bool ea = eligible(a), eb = eligible(b);
    if (ea != eb) return ea;
    if (ea) {
      if (a->index() != b->index()) return a->index() > b->index();
      if (a->closure_rate() != b->closure_rate()) return a->closure_rate() > b->closure_rate();
    }
    return a->key() < b->key();
  });
  google::protobuf::RepeatedPtrField<v1::ClosureRow> sorted;
  int rank = 0;
  for (auto* r : order) {
    r->set_rank(eligible(r) ? ++rank : 0);
    *sorted.Add() = std::move(*r);
  }
  rows.Swap(&sorted);
}

}  // namespace casebus::core

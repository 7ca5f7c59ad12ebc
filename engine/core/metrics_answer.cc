#include "engine/core/metrics_answer.h"

#include <cstdio>
#include <map>

#include "engine/base/time_format.h"
#include "engine/core/working_calendar.h"

namespace casebus::core {
namespace {


// "YYYY-MM-DD" within the calendar's range → days since 1970-01-01, or nullopt.
std::optional<int64_t> ParseDay(const std::string& s) {
  auto d = ParseDate(s);
  if (!d || *d < WorkingCalendar::kFirstDay || *d > WorkingCalendar::kLastDay) return std::nullopt;
  return d;
}

std::string SourceLabel(const std::string& key) {
  static const std::map<std::string, std::string> kNames = {
      {"inspector", "监督员 inspector"}, {"hotline", "12345 hotline"}, {"app", "市民 app"},
      {"sensor", "感知 sensor"},         {"open311", "Open311"},       {"superior", "上级交办 superior"},
      {"unknown", "unknown"}};
  auto it = kNames.find(key);
  return it == kNames.end() ? key : it->second;
}

}  // namespace

UnitNames UnitNamesOf(const v1::CityConfig& config) {
  UnitNames names;
  for (const auto& d : config.departments()) names["department:" + d.id()] = d.name();
  for (const auto& d : config.districts()) names["district:" + d.code()] = d.name();
  for (const auto& s : config.streets()) names["street:" + s.code()] = s.name();
  for (const auto& c : config.categories()) names["category:" + c.code()] = c.name();
  return names;
}

v1::QueryResult AnswerMetrics(const Ledger& ledger, const v1::CityConfig& config, const UnitNames& names,
                              const v1::Metrics& q, int64_t today, Millis now) {
  v1::QueryResult out;
  out.set_code(v1::OK);
  out.set_utc_offset_minutes(config.calendar().utc_offset_minutes());
  auto fail = [&](const std::string& field, const std::string& why) {
    out.set_code(v1::INVALID_ARGUMENT);
    out.set_message(field + ": " + why);
    return out;
  };
  Dim dim;
  switch (q.group_by()) {
    case v1::BY_DEPARTMENT: dim = Dim::kDepartment; break;
    case v1::BY_DISTRICT: dim = Dim::kDistrict; break;
    case v1::BY_STREET: dim = Dim::kStreet; break;
    case v1::BY_CATEGORY: dim = Dim::kCategory; break;
    case v1::BY_CLASS: dim = Dim::kClass; break;
    case v1::BY_SOURCE: dim = Dim::kSource; break;
    case v1::BY_DAY: dim = Dim::kCity; break;
    case v1::BY_DISTRICT_CLASS: dim = Dim::kDistrictClass; break;
    default:
      return fail("metrics.group_by",
                  "required: department, district, street, category, class, source, day or district_class");
  }
  // Left out, the range is all history: from the first day with a case to today (or the last
  // day with a case, if a clock ran ahead).
  const bool any = ledger.first_day() <= ledger.last_day();
  int64_t from = any ? std::min(ledger.first_day(), today) : today;
  int64_t to = any ? std::max(ledger.last_day(), today) : today;
  if (!q.from().empty()) {
    auto d = ParseDay(q.from());
    if (!d) return fail("metrics.from", "\"" + q.from().substr(0, 32) + "\" is not a date YYYY-MM-DD (2000..2100)");
    from = *d;
  }
  if (!q.to().empty()) {
    auto d = ParseDay(q.to());
    if (!d) return fail("metrics.to", "\"" + q.to().substr(0, 32) + "\" is not a date YYYY-MM-DD (2000..2100)");
    to = *d;
  }
  if (from > to) return fail("metrics.from", "must not be after metrics.to (" + FormatDate(from) + " > " + FormatDate(to) + ")");
  const v1::MetricsPolicy& policy = config.metrics();
  v1::MetricsReply& m = *out.mutable_metrics();
  m.set_group_by(q.group_by());
  m.set_from(FormatDate(from));
  m.set_to(FormatDate(to));
  m.set_as_of_ms(now);
  m.set_min_sample(policy.min_sample());
  *m.mutable_policy() = policy;

  auto name = [&](std::string_view kind, const std::string& key) {
    auto it = names.find(std::string(kind) + ":" + key);
    return it == names.end() ? key : it->second;
  };
  std::map<std::string, v1::ClosureRow> rows;
  // Evaluated units are listed even with nothing in the range.
  if (dim == Dim::kDepartment)
    for (const auto& d : config.departments()) rows[d.id()];
  if (dim == Dim::kDistrict)
    for (const auto& d : config.districts()) rows[d.code()];
  if (dim == Dim::kCity) {
    for (const auto& [day, counts] : ledger.Days(from, to)) AddTo(rows[FormatDate(day)], counts);
  } else {
    for (const auto& [key, counts] : ledger.Sum(dim, from, to)) AddTo(rows[key], counts);
  }
  for (auto& [key, row] : rows) {
    row.set_key(key);
    switch (dim) {
      case Dim::kDepartment:
        row.set_name(key.empty() ? "未派遣 not dispatched" : name("department", key));
        break;
      case Dim::kDistrict: row.set_name(name("district", key)); break;
      case Dim::kStreet: row.set_name(name("street", key)); break;
      case Dim::kCategory:
      case Dim::kClass: row.set_name(name("category", key)); break;
      case Dim::kSource: row.set_name(SourceLabel(key)); break;
      case Dim::kDistrictClass: {
        const size_t slash = key.find('/');
        row.set_name(name("district", key.substr(0, slash)) + " / " +
                     name("category", slash == std::string::npos ? "" : key.substr(slash + 1)));
        break;
      }
      default: row.set_name(key); break;
    }
    FinishRate(row, policy);
    *m.add_rows() = std::move(row);
  }
  if (dim == Dim::kDepartment || dim == Dim::kDistrict || dim == Dim::kStreet)
    RankRows(*m.mutable_rows(), policy);
  v1::ClosureRow& total = *m.mutable_total();
  for (const auto& [key, counts] : ledger.Sum(Dim::kCity, from, to)) AddTo(total, counts);
  total.set_name(config.name());
  FinishRate(total, policy);
  return out;
}

}  // namespace casebus::core

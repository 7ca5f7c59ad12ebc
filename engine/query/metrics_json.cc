#include "engine/query/metrics_json.h"

#include <array>

#include "engine/base/time_format.h"
#include "engine/core/ledger.h"

namespace casebus::query {
namespace {

constexpr std::array<std::pair<std::string_view, v1::MetricsGroup>, 8> kGroups = {{
    {"department", v1::BY_DEPARTMENT},
    {"district", v1::BY_DISTRICT},
    {"street", v1::BY_STREET},
    {"category", v1::BY_CATEGORY},
    {"class", v1::BY_CLASS},
    {"source", v1::BY_SOURCE},
    {"day", v1::BY_DAY},
    {"district_class", v1::BY_DISTRICT_CLASS},
}};

// Rate fields in has_rates bit order.
constexpr std::array<std::pair<std::string_view, double (v1::ClosureRow::*)() const>, 8> kRates = {{
    {"closure_rate", &v1::ClosureRow::closure_rate},
    {"on_time_closure_rate", &v1::ClosureRow::on_time_closure_rate},
    {"handling_rate", &v1::ClosureRow::handling_rate},
    {"on_time_handling_rate", &v1::ClosureRow::on_time_handling_rate},
    {"rework_rate", &v1::ClosureRow::rework_rate},
    {"overdue_open_rate", &v1::ClosureRow::overdue_open_rate},
    {"extension_rate", &v1::ClosureRow::extension_rate},
    {"public_report_rate", &v1::ClosureRow::public_report_rate},
}};

}  // namespace

std::optional<v1::MetricsGroup> ParseGroup(std::string_view name) {
  for (const auto& [n, g] : kGroups)
    if (n == name) return g;
  return std::nullopt;
}

std::string_view GroupName(v1::MetricsGroup g) {
  for (const auto& [n, group] : kGroups)
    if (group == g) return n;
  return "unspecified";
}

std::string GroupNames() {
  std::string out;
  for (const auto& [n, g] : kGroups) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

boost::json::object RowJson(const v1::ClosureRow& row, v1::MetricsGroup group) {
  boost::json::object o;
  o["key"] = row.key();
  o["name"] = row.name();
  if (group == v1::BY_DISTRICT_CLASS) {
    const size_t slash = row.key().find('/');
    const size_t sep = row.name().find(" / ");
    o["district"] = row.key().substr(0, slash);
    o["class"] = slash == std::string::npos ? "" : row.key().substr(slash + 1);
    o["district_name"] = row.name().substr(0, sep);
    o["class_name"] = sep == std::string::npos ? "" : row.name().substr(sep + 3);
  }
  const core::Counts counts = core::CountsFrom(row);
  for (int c = 0; c < core::kCounters; ++c)
    o[core::CounterName(static_cast<core::Counter>(c))] = counts[c];
  for (size_t i = 0; i < kRates.size(); ++i) {
    const auto& [name, get] = kRates[i];  // a local member pointer: see core::AddTo (GCC 12 UBSan)
    if (row.has_rates() & (1u << i)) o[name] = (row.*get)();
    else o[name] = nullptr;
  }
  if (row.has_index()) o["index"] = row.index();
  else o["index"] = nullptr;
  if (row.rank() > 0) o["rank"] = row.rank();
  else o["rank"] = nullptr;
  return o;
}

boost::json::object MetricsJson(const v1::MetricsReply& m, int utc_offset_minutes) {
  boost::json::object o;
  o["group_by"] = GroupName(m.group_by());
  o["from"] = m.from();
  o["to"] = m.to();
  o["as_of"] = FormatIso(m.as_of_ms(), utc_offset_minutes);
  o["utc_offset_minutes"] = utc_offset_minutes;
  o["min_sample"] = m.min_sample();
  boost::json::array rows;
  rows.reserve(m.rows_size());
  for (const auto& r : m.rows()) rows.push_back(RowJson(r, m.group_by()));
  o["rows"] = std::move(rows);
  o["total"] = RowJson(m.total(), v1::BY_DAY);
  return o;
}

}  // namespace casebus::query

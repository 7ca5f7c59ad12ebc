#include "engine/query/closure_table.h"

#include "engine/query/text_table.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace casebus::query {
namespace {

std::string Rate(int64_t num, int64_t den) {
  if (den == 0) return "—";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * static_cast<double>(num) / static_cast<double>(den));
  return buf;
}

}  // namespace

std::string FormatClosureTable(const std::string& title,
                               const google::protobuf::RepeatedPtrField<v1::ClosureRow>& rows,
                               bool with_name) {
  std::vector<std::vector<std::string>> table;
  table.push_back({"unit", "name", "registered", "dispatched", "due", "closed", "on time",
                   "overdue", "rework", "returned", "closure", "on-time closure"});
  v1::ClosureRow total;
  total.set_key("total");
  for (const auto& r : rows) {
    table.push_back({r.key(), r.name(), std::to_string(r.registered()),
                     std::to_string(r.dispatched()), std::to_string(r.due()),
                     std::to_string(r.closed()), std::to_string(r.closed_on_time()),
                     std::to_string(r.overdue_open()), std::to_string(r.rework()),
                     std::to_string(r.returned()), Rate(r.closed(), r.due()),
                     Rate(r.closed_on_time(), r.due())});
    total.set_registered(total.registered() + r.registered());
    total.set_dispatched(total.dispatched() + r.dispatched());
    total.set_due(total.due() + r.due());
    total.set_closed(total.closed() + r.closed());
    total.set_closed_on_time(total.closed_on_time() + r.closed_on_time());
    total.set_overdue_open(total.overdue_open() + r.overdue_open());
    total.set_rework(total.rework() + r.rework());
    total.set_returned(total.returned() + r.returned());
  }
  table.push_back({"total", "", std::to_string(total.registered()),
                   std::to_string(total.dispatched()), std::to_string(total.due()),
                   std::to_string(total.closed()), std::to_string(total.closed_on_time()),
                   std::to_string(total.overdue_open()), std::to_string(total.rework()),
                   std::to_string(total.returned()), Rate(total.closed(), total.due()),
                   Rate(total.closed_on_time(), total.due())});
  TextTable t;
  t.right = std::vector<bool>(table[0].size(), true);
  t.right[0] = t.right[1] = false;
  if (!with_name) {
    for (auto& row : table) row.erase(row.begin() + 1);
    t.right.erase(t.right.begin() + 1);
  }
  t.header = table.front();
  t.footer = table.back();
  t.rows.assign(table.begin() + 1, table.end() - 1);
  std::string out = title + "\n" + t.Render();
  return out;
}

}  // namespace casebus::query

#include "engine/query/closure_table.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace casebus::query {
namespace {

// Display width: CJK characters take two columns in a terminal.
size_t Width(const std::string& s) {
  size_t w = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    w += len >= 3 ? 2 : 1;
    i += len;
  }
  return w;
}

std::string Pad(const std::string& s, size_t width, bool right) {
  size_t w = Width(s);
  std::string fill(width > w ? width - w : 0, ' ');
  return right ? fill + s : s + fill;
}

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
  std::vector<size_t> widths(table[0].size(), 0);
  for (const auto& row : table)
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], Width(row[i]));
  std::string out = title + "\n";
  auto line = [&](const std::vector<std::string>& row) {
    std::string l;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i == 1 && !with_name) continue;
      l += Pad(row[i], widths[i], i >= 2) + (i + 1 < row.size() ? "  " : "");
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    return l + "\n";
  };
  out += line(table[0]);
  size_t total_w = 0;
  for (size_t i = 0; i < widths.size(); ++i)
    if (i != 1 || with_name) total_w += widths[i] + 2;
  std::string rule;
  for (size_t i = 0; i + 2 < total_w; ++i) rule += "-";
  out += rule + "\n";
  for (size_t r = 1; r + 1 < table.size(); ++r) out += line(table[r]);
  out += rule + "\n" + line(table.back());
  return out;
}

}  // namespace casebus::query

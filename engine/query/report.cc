#include "engine/query/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "engine/base/time_format.h"
#include "engine/query/metrics_json.h"
#include "engine/query/text_table.h"

namespace casebus::query {

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        // XML 1.0 has no place for other control characters.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') out += ' ';
        else out += c;
    }
  }
  return out;
}

namespace {

// has_rates bits (command.proto ClosureRow).
enum RateBit { kClosure = 0, kOnTimeClosure = 1, kHandling = 2, kOnTimeHandling = 3, kRework = 4,
               kOverdueOpen = 5, kExtension = 6 };

bool Has(const v1::ClosureRow& r, RateBit b) { return r.has_rates() & (1u << b); }

std::string Pct(const v1::ClosureRow& r, RateBit b, double v) { return Percent(v, Has(r, b)); }

std::string Fixed1(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string Signed1(double v, const char* unit) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%s", v, unit);
  return buf;
}

std::string Int(int64_t v) { return std::to_string(v); }

// "3 d 4 h", "5 h 20 min".
std::string Duration(int64_t ms) {
  const int64_t minutes = ms / 60000;
  const int64_t d = minutes / 1440, h = (minutes % 1440) / 60, m = minutes % 60;
  char buf[48];
  if (d > 0) std::snprintf(buf, sizeof buf, "%lld d %lld h", static_cast<long long>(d), static_cast<long long>(h));
  else std::snprintf(buf, sizeof buf, "%lld h %lld min", static_cast<long long>(h), static_cast<long long>(m));
  return buf;
}

// A table of the report, independent of the format.
struct Table {
  std::string id;     // for CSV and HTML anchors
  std::string title;  // 中文 English
  std::string note;   // one line under the title, may be empty
  std::vector<std::string> header;
  std::vector<bool> right;
  std::vector<std::vector<std::string>> rows;
};

const v1::ClosureRow* Find(const v1::MetricsReply& m, const std::string& key) {
  for (const auto& r : m.rows())
    if (r.key() == key) return &r;
  return nullptr;
}

Table Ranking(const std::string& id, const std::string& title, const v1::MetricsReply& now,
              const v1::MetricsReply& prev, uint32_t min_sample) {
  Table t{id, title,
          "排名按综合指标值；应结案少于 " + std::to_string(min_sample) +
              " 件的单位列出但不排名 · ranked by composite index; units with fewer than " +
              std::to_string(min_sample) + " cases due are listed, not ranked",
          {"排名 rank", "单位 unit", "立案 registered", "应结案 due", "结案 closed", "结案率 closure",
           "按期结案率 on-time", "返工率 rework", "延期率 extension", "超期未结 overdue open",
           "综合指标 index", "上月 last month", "变化 change"},
          {true, false, true, true, true, true, true, true, true, true, true, true, true},
          {}};
  for (const auto& r : now.rows()) {
    if (r.key().empty()) continue;  // not yet dispatched: no unit to rank
    const v1::ClosureRow* p = Find(prev, r.key());
    const bool prev_index = p && p->has_index();
    t.rows.push_back({r.rank() > 0 ? Int(r.rank()) : "—", r.name(), Int(r.registered()), Int(r.due()),
                      Int(r.closed()), Pct(r, kClosure, r.closure_rate()),
                      Pct(r, kOnTimeClosure, r.on_time_closure_rate()), Pct(r, kRework, r.rework_rate()),
                      Pct(r, kExtension, r.extension_rate()), Int(r.overdue_open()),
                      r.has_index() ? Fixed1(r.index()) : "—", prev_index ? Fixed1(p->index()) : "—",
                      r.has_index() && prev_index ? Signed1(r.index() - p->index(), "") : "—"});
  }
  return t;
}

// Red list: the best five ranked units; black list: the worst five, worst first.
std::pair<Table, Table> RedBlack(const v1::MetricsReply& m) {
  std::vector<const v1::ClosureRow*> ranked;
  for (const auto& r : m.rows())
    if (r.rank() > 0) ranked.push_back(&r);
  std::sort(ranked.begin(), ranked.end(), [](auto* a, auto* b) { return a->rank() < b->rank(); });
  auto make = [](std::string id, std::string title) {
    return Table{std::move(id), std::move(title), "",
                 {"排名 rank", "部门 department", "综合指标 index", "结案率 closure", "按期结案率 on-time",
                  "超期未结 overdue open"},
                 {true, false, true, true, true, true},
                 {}};
  };
  Table red = make("red-list", "红榜 Red list (top five)");
  Table black = make("black-list", "黑榜 Black list (bottom five)");
  auto row = [](const v1::ClosureRow& r) {
    return std::vector<std::string>{Int(r.rank()), r.name(), Fixed1(r.index()),
                                    Pct(r, kClosure, r.closure_rate()),
                                    Pct(r, kOnTimeClosure, r.on_time_closure_rate()), Int(r.overdue_open())};
  };
  for (size_t i = 0; i < ranked.size() && i < 5; ++i) red.rows.push_back(row(*ranked[i]));
  for (size_t i = 0; i < ranked.size() && i < 5; ++i) black.rows.push_back(row(*ranked[ranked.size() - 1 - i]));
  if (ranked.size() < 10) {
    red.note = black.note = std::to_string(ranked.size()) +
                            " units ranked this month: the two lists share units · fewer than ten ranked";
  }
  return {red, black};
}

Table Shares(const std::string& id, const std::string& title, const std::string& unit,
             const v1::MetricsReply& m, size_t limit) {
  std::vector<const v1::ClosureRow*> rows;
  for (const auto& r : m.rows()) rows.push_back(&r);
  std::stable_sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->registered() > b->registered(); });
  const int64_t total = std::max<int64_t>(1, m.total().registered());
  Table t{id, title, "", {unit, "code", "立案 registered", "占比 share", "结案率 closure"},
          {false, false, true, true, true}, {}};
  for (size_t i = 0; i < rows.size() && i < limit; ++i) {
    const auto& r = *rows[i];
    if (r.registered() == 0) continue;
    t.rows.push_back({r.name(), r.key(), Int(r.registered()),
                      Percent(static_cast<double>(r.registered()) / static_cast<double>(total), true),
                      Pct(r, kClosure, r.closure_rate())});
  }
  return t;
}

struct Model {
  std::string title, subtitle;
  std::vector<std::pair<std::string, std::string>> summary;  // label → value
  std::vector<Table> tables;
  // Chart data: department closure and on-time rates (ranked ones), and sources.
  std::vector<std::tuple<std::string, double, double>> department_bars;
  std::vector<std::pair<std::string, int64_t>> source_bars;
};

Model Build(const MonthlyReport& r) {
  Model m;
  m.title = r.city + " 城市管理案件月度通报 Monthly closure report " + r.month;
  const auto& now = r.departments.total();
  const auto& prev = r.prev_departments.total();
  m.subtitle = "统计期 period " + r.departments.from() + " – " + r.departments.to() +
               " (cases registered in the month, as they stand now) · 截至 as of " +
               FormatIso(r.departments.as_of_ms(), r.utc_offset_minutes);
  auto delta = [&](RateBit b, double a, double p) {
    if (!Has(now, b) || !Has(prev, b)) return std::string();
    return " (" + Signed1(100.0 * (a - p), " pp") + " vs " + r.prev_departments.from().substr(0, 7) + ")";
  };
  m.summary = {
      {"立案 registered", Int(now.registered()) + " (last month " + Int(prev.registered()) + ")"},
      {"应结案 due", Int(now.due())},
      {"结案 closed", Int(now.closed())},
      {"结案率 closure rate", Pct(now, kClosure, now.closure_rate()) + delta(kClosure, now.closure_rate(), prev.closure_rate())},
      {"按期结案率 on-time closure rate",
       Pct(now, kOnTimeClosure, now.on_time_closure_rate()) +
           delta(kOnTimeClosure, now.on_time_closure_rate(), prev.on_time_closure_rate())},
      {"返工率 rework rate", Pct(now, kRework, now.rework_rate()) + delta(kRework, now.rework_rate(), prev.rework_rate())},
      {"延期率 extension rate",
       Pct(now, kExtension, now.extension_rate()) + delta(kExtension, now.extension_rate(), prev.extension_rate())},
      {"超期未结 overdue open", Int(now.overdue_open())},
  };
  std::string formula;
  for (const auto& t : r.policy.index()) {
    std::string rate = std::string(v1::Rate_Name(t.rate()));
    for (char& c : rate) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    formula += (formula.empty() ? "" : " + ") + Fixed1(t.weight()) + (t.inverse() ? " × (1 − " : " × ") + rate +
               (t.inverse() ? ")" : "");
  }
  m.summary.emplace_back("综合指标 index", formula.empty() ? "—" : formula);
  const uint32_t min_sample = r.departments.min_sample();
  m.tables.push_back(Ranking("departments", "各部门排名 Departments", r.departments, r.prev_departments, min_sample));
  auto [red, black] = RedBlack(r.departments);
  m.tables.push_back(red);
  m.tables.push_back(black);
  m.tables.push_back(Ranking("districts", "各区排名 Districts", r.districts, r.prev_districts, min_sample));
  std::map<std::string, std::string> dept_names(r.department_names.begin(), r.department_names.end());
  std::map<std::string, std::string> category_names;
  for (const auto& c : r.categories.rows()) category_names[c.key()] = c.name();
  Table overdue{"overdue", "超期最久的未结案件 Ten longest-overdue open cases", "",
                {"案件 case", "类别 category", "部门 department", "地点 place", "处置时限 deadline", "超期 overdue by"},
                {true, false, false, false, false, true},
                {}};
  for (const auto& c : r.overdue) {
    auto dn = dept_names.find(c.department());
    auto cn = category_names.find(c.category());
    const std::string place = c.place().address().empty() ? c.place().grid() : c.place().address();
    overdue.rows.push_back({Int(static_cast<int64_t>(c.id())), cn == category_names.end() ? c.category() : cn->second,
                            dn == dept_names.end() ? c.department() : dn->second, place,
                            FormatIso(c.handle_deadline_ms(), r.utc_offset_minutes).substr(0, 16),
                            Duration(r.departments.as_of_ms() - c.handle_deadline_ms())});
  }
  if (overdue.rows.empty()) overdue.note = "none · 无";
  m.tables.push_back(overdue);
  m.tables.push_back(Shares("subcategories", "高发小类 Top subcategories", "小类 subcategory", r.categories, 10));
  m.tables.push_back(Shares("sources", "案件来源 Cases by source", "来源 source", r.sources, 100));
  for (const auto& d : r.departments.rows())
    if (d.rank() > 0) m.department_bars.emplace_back(d.name(), d.closure_rate(), d.on_time_closure_rate());
  for (const auto& s : r.sources.rows())
    if (s.registered() > 0) m.source_bars.emplace_back(s.name(), s.registered());
  return m;
}

// ---- Markdown ----

std::string MdCell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

std::string Markdown(const Model& m) {
  std::string out = "# " + m.title + "\n\n" + m.subtitle + "\n\n";
  out += "| 指标 figure | 值 value |\n|---|---:|\n";
  for (const auto& [k, v] : m.summary) out += "| " + MdCell(k) + " | " + MdCell(v) + " |\n";
  for (const auto& t : m.tables) {
    out += "\n## " + t.title + "\n\n";
    if (!t.note.empty()) out += t.note + "\n\n";
    if (t.rows.empty()) continue;
    out += "|";
    for (const auto& h : t.header) out += " " + MdCell(h) + " |";
    out += "\n|";
    for (size_t i = 0; i < t.header.size(); ++i) out += i < t.right.size() && t.right[i] ? "---:|" : "---|";
    out += "\n";
    for (const auto& row : t.rows) {
      out += "|";
      for (const auto& c : row) out += " " + MdCell(c) + " |";
      out += "\n";
    }
  }
  return out;
}

// ---- CSV (RFC 4180): one section per table, a blank line between ----

// A number as this report prints it: "-2.5", "12", "93.4%".
bool IsNumber(const std::string& s) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
  bool digit = false;
  for (; i < s.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i]))) digit = true;
    else if (s[i] != '.' && !(s[i] == '%' && i + 1 == s.size())) return false;
  }
  return digit;
}

std::string CsvCell(const std::string& s) {
  // A cell starting with = + - @ (or a tab or CR) that is not a number gets a leading ' so a
  // spreadsheet does not run it as a formula.
  std::string v = s;
  if (!v.empty() && std::string_view("=+-@\t\r").find(v[0]) != std::string_view::npos && !IsNumber(v)) v = "'" + v;
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string Csv(const Model& m) {
  std::string out = "section,figure,value\r\n";
  for (const auto& [k, v] : m.summary) out += "summary," + CsvCell(k) + "," + CsvCell(v) + "\r\n";
  for (const auto& t : m.tables) {
    out += "\r\nsection";
    for (const auto& h : t.header) out += "," + CsvCell(h);
    out += "\r\n";
    for (const auto& row : t.rows) {
      out += t.id;
      for (const auto& c : row) out += "," + CsvCell(c);
      out += "\r\n";
    }
  }
  return out;
}

// ---- HTML: self-contained, inline CSS and SVG ----

std::string RateBars(const std::vector<std::tuple<std::string, double, double>>& bars) {
  const int row_h = 22, label_w = 230, bar_w = 360, width = label_w + bar_w + 70;
  const int height = static_cast<int>(bars.size()) * row_h + 30;
  char buf[512];
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
                    std::to_string(height) + "\" role=\"img\" aria-label=\"closure rates by department\">";
  for (int pct : {0, 50, 100}) {
    const int x = label_w + bar_w * pct / 100;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%d\" y1=\"14\" x2=\"%d\" y2=\"%d\" stroke=\"#ccc\"/><text x=\"%d\" y=\"10\" "
                  "font-size=\"10\" text-anchor=\"middle\">%d%%</text>",
                  x, x, height - 4, x, pct);
    svg += buf;
  }
  int y = 18;
  for (const auto& [name, closure, on_time] : bars) {
    std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", label_w - 6, y + 12);
    svg += buf + XmlEscape(name) + "</text>";
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"8\" fill=\"#2f6db3\"/>"
                  "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"8\" fill=\"#2a9d8f\"/>"
                  "<text x=\"%.1f\" y=\"%d\" font-size=\"10\">%.1f%% / %.1f%%</text>",
                  label_w, y + 1, bar_w * closure, label_w, y + 10, bar_w * on_time,
                  label_w + bar_w * std::max(closure, on_time) + 4, y + 12, 100 * closure, 100 * on_time);
    svg += buf;
    y += row_h;
  }
  return svg + "</svg>";
}

std::string CountBars(const std::vector<std::pair<std::string, int64_t>>& bars) {
  int64_t max = 1;
  for (const auto& b : bars) max = std::max(max, b.second);
  const int row_h = 22, label_w = 160, bar_w = 360;
  char buf[512];
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(label_w + bar_w + 80) +
                    "\" height=\"" + std::to_string(static_cast<int>(bars.size()) * row_h + 8) +
                    "\" role=\"img\" aria-label=\"cases by source\">";
  int y = 4;
  for (const auto& [name, n] : bars) {
    const double w = bar_w * static_cast<double>(n) / static_cast<double>(max);
    std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", label_w - 6, y + 13);
    svg += buf + XmlEscape(name) + "</text>";
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"14\" fill=\"#e07a2f\"/>"
                  "<text x=\"%.1f\" y=\"%d\" font-size=\"11\">%lld</text>",
                  label_w, y + 2, w, label_w + w + 4, y + 13, static_cast<long long>(n));
    svg += buf;
    y += row_h;
  }
  return svg + "</svg>";
}

std::string Html(const Model& m) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>" + XmlEscape(m.title) +
      "</title>\n<style>body{font-family:'Noto Sans CJK SC','Noto Sans',sans-serif;margin:24px;color:#1c2733}"
      "h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #dde3ea}"
      "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #eef1f4}"
      "th{text-align:left;background:#f4f6f9}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
      ".note{color:#607080;font-size:12px}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}"
      "</style></head><body>\n<h1>" + XmlEscape(m.title) + "</h1>\n<p class=\"note\">" + XmlEscape(m.subtitle) + "</p>\n<table>";
  for (const auto& [k, v] : m.summary) out += "<tr><th>" + XmlEscape(k) + "</th><td class=\"n\">" + XmlEscape(v) + "</td></tr>";
  out += "</table>\n";
  if (!m.department_bars.empty()) {
    out += "<h2>结案率 Closure by department</h2><p class=\"legend note\"><span style=\"background:#2f6db3\"></span>"
           "结案率 closure<span style=\"background:#2a9d8f\"></span>按期结案率 on-time closure</p>\n" +
           RateBars(m.department_bars) + "\n";
  }
  for (const auto& t : m.tables) {
    out += "<h2 id=\"" + XmlEscape(t.id) + "\">" + XmlEscape(t.title) + "</h2>\n";
    if (!t.note.empty()) out += "<p class=\"note\">" + XmlEscape(t.note) + "</p>\n";
    if (t.id == "sources" && !m.source_bars.empty()) out += CountBars(m.source_bars) + "\n";
    if (t.rows.empty()) continue;
    out += "<table><tr>";
    for (size_t i = 0; i < t.header.size(); ++i)
      out += std::string(i < t.right.size() && t.right[i] ? "<th class=\"n\">" : "<th>") + XmlEscape(t.header[i]) + "</th>";
    out += "</tr>\n";
    for (const auto& row : t.rows) {
      out += "<tr>";
      for (size_t i = 0; i < row.size(); ++i)
        out += std::string(i < t.right.size() && t.right[i] ? "<td class=\"n\">" : "<td>") + XmlEscape(row[i]) + "</td>";
      out += "</tr>\n";
    }
    out += "</table>\n";
  }
  return out + "</body></html>\n";
}

}  // namespace

std::string FormatMetricsTable(const v1::MetricsReply& m) {
  TextTable t;
  t.header = {"rank", std::string(GroupName(m.group_by())), "name", "registered", "due", "closed",
              "overdue", "closure", "on-time", "handling", "rework", "extension", "index"};
  t.right = {true, false, false, true, true, true, true, true, true, true, true, true, true};
  auto row = [](const v1::ClosureRow& r, const std::string& rank) {
    return std::vector<std::string>{rank, r.key(), r.name(), Int(r.registered()), Int(r.due()), Int(r.closed()),
                                    Int(r.overdue_open()), Pct(r, kClosure, r.closure_rate()),
                                    Pct(r, kOnTimeClosure, r.on_time_closure_rate()),
                                    Pct(r, kHandling, r.handling_rate()), Pct(r, kRework, r.rework_rate()),
                                    Pct(r, kExtension, r.extension_rate()), r.has_index() ? Fixed1(r.index()) : "—"};
  };
  for (const auto& r : m.rows()) t.rows.push_back(row(r, r.rank() > 0 ? Int(r.rank()) : "—"));
  t.footer = row(m.total(), "");
  t.footer[1] = "total";
  return "Closure by " + std::string(GroupName(m.group_by())) + ", " + m.from() + " – " + m.to() +
         " (cases registered in the range; min sample " + std::to_string(m.min_sample()) + " due to rank)\n" +
         t.Render();
}

std::string RenderReport(const MonthlyReport& r, ReportFormat format) {
  const Model m = Build(r);
  switch (format) {
    case ReportFormat::kCsv: return Csv(m);
    case ReportFormat::kHtml: return Html(m);
    case ReportFormat::kMarkdown: break;
  }
  return Markdown(m);
}

}  // namespace casebus::query

// engine/query report: the monthly report (RenderReport) in Markdown, CSV and HTML from a
// MonthlyReport built by hand, and the aligned metrics table (FormatMetricsTable).
//
// The month: eleven ranked departments d01..d11 (rank = number, index falling from 96.5 to
// 42.5), one unit below the minimum sample (d12, index 99.0, rank 0); last month's indices for
// d01 (90.0) and d02 (95.5) only; two overdue cases as of 2026-12-02 10:00 +08:00.

#include "engine/query/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "engine/base/time_format.h"
#include "engine/query/text_table.h"

namespace casebus::query {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kMinuteMs = 60'000;

// When the report is made: Wednesday 2026-12-02 10:00 +08:00.
int64_t AsOf() { return ParseIso("2026-12-02T10:00:00+08:00").value(); }

// A department row with every rate but the public one present.
v1::ClosureRow Unit(const std::string& key, const std::string& name, int rank, double index) {
  v1::ClosureRow r;
  r.set_key(key);
  r.set_name(name);
  r.set_registered(20);
  r.set_due(12);
  r.set_closed(10);
  r.set_overdue_open(2);
  r.set_closure_rate(10.0 / 12);
  r.set_on_time_closure_rate(9.0 / 12);
  r.set_rework_rate(1.0 / 12);
  r.set_extension_rate(0.0);
  r.set_has_rates(0x7F);
  r.set_has_index(true);
  r.set_index(index);
  r.set_rank(rank);
  return r;
}

struct Named {
  const char* key;
  const char* name;
  double index;
};
// In rank order; names deliberately not in alphabetical or code order.
const Named kRanked[] = {
    {"d01", "排水公司", 96.5},       {"d02", "自来水公司", 93.0},   {"d03", "市政设施管理处", 90.0},
    {"d04", "综合行政执法局", 88.5}, {"d05", "交警大队", 85.0},     {"d06", "住建局物业科", 80.0},
    {"d07", "东区指挥中心", 77.5},   {"d08", "西区指挥中心", 70.0}, {"d09", "园林局", 65.0},
    {"d10", "环卫处", 60.0},         {"d11", "燃气公司", 42.5},
};

MonthlyReport Month() {
  MonthlyReport r;
  r.city = "Testville";
  r.month = "2026-11";
  r.utc_offset_minutes = 480;
  for (auto [rate, weight, inverse] :
       {std::tuple{v1::HANDLING_RATE, 30.0, false}, std::tuple{v1::REWORK_RATE, 20.0, true}}) {
    auto* t = r.policy.add_index();
    t->set_rate(rate);
    t->set_weight(weight);
    t->set_inverse(inverse);
  }
  auto frame = [](v1::MetricsReply& m, v1::MetricsGroup g, const char* from, const char* to) {
    m.set_group_by(g);
    m.set_from(from);
    m.set_to(to);
    m.set_as_of_ms(AsOf());
    m.set_min_sample(10);
  };
  frame(r.departments, v1::BY_DEPARTMENT, "2026-11-01", "2026-11-30");
  frame(r.prev_departments, v1::BY_DEPARTMENT, "2026-10-01", "2026-10-31");
  frame(r.districts, v1::BY_DISTRICT, "2026-11-01", "2026-11-30");
  frame(r.prev_districts, v1::BY_DISTRICT, "2026-10-01", "2026-10-31");
  frame(r.categories, v1::BY_CATEGORY, "2026-11-01", "2026-11-30");
  frame(r.sources, v1::BY_SOURCE, "2026-11-01", "2026-11-30");
  int rank = 0;
  for (const auto& u : kRanked) *r.departments.add_rows() = Unit(u.key, u.name, ++rank, u.index);
  *r.departments.add_rows() = Unit("d12", "城管委办公室", 0, 99.0);
  *r.prev_departments.add_rows() = Unit("d01", "排水公司", 3, 90.0);
  *r.prev_departments.add_rows() = Unit("d02", "自来水公司", 1, 95.5);
  v1::ClosureRow total = Unit("", "Testville", 0, 0);
  total.set_registered(240);
  total.set_closure_rate(0.9);
  *r.departments.mutable_total() = total;
  v1::ClosureRow prev_total = Unit("", "Testville", 0, 0);
  prev_total.set_registered(200);
  prev_total.set_closure_rate(0.85);
  *r.prev_departments.mutable_total() = prev_total;
  for (auto [key, name] : {std::pair{"200101", "下水道堵塞"}, std::pair{"100101", "上水井盖"}}) {
    auto* c = r.categories.add_rows();
    c->set_key(key);
    c->set_name(name);
    c->set_registered(5);
  }
  v1::Case a;
  a.set_id(1234);
  a.set_category("200101");
  a.set_department("drainage");
  a.mutable_place()->set_grid("320501001001001");
  a.mutable_place()->set_address("人民路 1 号");
  a.set_handle_deadline_ms(AsOf() - (3 * 24 * 60 + 4 * 60) * kMinuteMs);  // 3 d 4 h ago
  v1::Case b;
  b.set_id(77);
  b.set_category("100101");
  b.set_department("water");  // no name given: shown by id
  b.mutable_place()->set_grid("320501001001002");
  b.set_handle_deadline_ms(AsOf() - (5 * 60 + 20) * kMinuteMs);  // 5 h 20 min ago
  r.overdue = {a, b};
  r.department_names = {{"drainage", "排水公司"}};
  return r;
}

// The lines of the Markdown section titled `title`, up to the next "## ".
std::vector<std::string> Section(const std::string& md, const std::string& title) {
  std::vector<std::string> out;
  std::istringstream in(md);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      inside = line == "## " + title;
      continue;
    }
    if (inside) out.push_back(line);
  }
  EXPECT_FALSE(out.empty()) << "no section " << title;
  return out;
}

// The cells of a Markdown table row ("| a | b |" → {"a", "b"}); empty for other lines.
std::vector<std::string> Cells(const std::string& line) {
  std::vector<std::string> cells;
  if (line.empty() || line[0] != '|' || line.find("---") != std::string::npos) return cells;
  std::string cell;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
      cell += '|';
      ++i;
    } else if (line[i] == '|') {
      cells.push_back(cell.substr(1, cell.size() - 2));  // the padding spaces
      cell.clear();
    } else {
      cell += line[i];
    }
  }
  return cells;
}

// Table rows of a section (header included), as cells.
std::vector<std::vector<std::string>> Rows(const std::string& md, const std::string& title) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& line : Section(md, title))
    if (auto c = Cells(line); !c.empty()) rows.push_back(std::move(c));
  return rows;
}

TEST(MonthlyReportMarkdown, ListsDepartmentsInRankOrderWithTheUnrankedLast) {
  const auto rows = Rows(RenderReport(Month(), ReportFormat::kMarkdown), "各部门排名 Departments");
  ASSERT_EQ(rows.size(), 13u);  // header + 12 units
  EXPECT_EQ(rows[0][0], "排名 rank");
  for (int i = 0; i < 11; ++i) {
    EXPECT_EQ(rows[i + 1][0], std::to_string(i + 1));
    EXPECT_EQ(rows[i + 1][1], kRanked[i].name);
  }
  EXPECT_EQ(rows[12][0], "—");
  EXPECT_EQ(rows[12][1], "城管委办公室");
  EXPECT_EQ(rows[12][10], "99.0");  // an index, but below the minimum sample
}

TEST(MonthlyReportMarkdown, RedListIsTheTopFiveAndBlackListTheBottomFiveWorstFirst) {
  const std::string md = RenderReport(Month(), ReportFormat::kMarkdown);
  const auto red = Rows(md, "红榜 Red list (top five)");
  const auto black = Rows(md, "黑榜 Black list (bottom five)");
  ASSERT_EQ(red.size(), 6u);
  ASSERT_EQ(black.size(), 6u);
  const char* want_red[] = {"排水公司", "自来水公司", "市政设施管理处", "综合行政执法局",
                            "交警大队"};
  const char* want_black[] = {"燃气公司", "环卫处", "园林局", "西区指挥中心", "东区指挥中心"};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(red[i + 1][0], std::to_string(i + 1));
    EXPECT_EQ(red[i + 1][1], want_red[i]);
    EXPECT_EQ(black[i + 1][0], std::to_string(11 - i));
    EXPECT_EQ(black[i + 1][1], want_black[i]);
  }
  EXPECT_EQ(red[1][2], "96.5");
  EXPECT_EQ(black[1][2], "42.5");
  EXPECT_THAT(md, Not(HasSubstr("share units")));  // eleven ranked: the lists do not overlap
}

TEST(MonthlyReportMarkdown, ShowsTheChangeFromLastMonth) {
  const std::string md = RenderReport(Month(), ReportFormat::kMarkdown);
  const auto rows = Rows(md, "各部门排名 Departments");
  // index, last month, change
  EXPECT_EQ(std::vector<std::string>(rows[1].begin() + 10, rows[1].end()),
            (std::vector<std::string>{"96.5", "90.0", "+6.5"}));
  EXPECT_EQ(std::vector<std::string>(rows[2].begin() + 10, rows[2].end()),
            (std::vector<std::string>{"93.0", "95.5", "-2.5"}));
  EXPECT_EQ(std::vector<std::string>(rows[3].begin() + 10, rows[3].end()),
            (std::vector<std::string>{"90.0", "—", "—"}));
  EXPECT_THAT(md, HasSubstr("| 结案率 closure rate | 90.0% (+5.0 pp vs 2026-10) |"));
  EXPECT_THAT(md, HasSubstr("| 立案 registered | 240 (last month 200) |"));
}

TEST(MonthlyReportMarkdown, ListsOverdueCasesWithHowLongTheyAreOverdue) {
  const auto rows = Rows(RenderReport(Month(), ReportFormat::kMarkdown),
                         "超期最久的未结案件 Ten longest-overdue open cases");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][5], "超期 overdue by");
  EXPECT_EQ(rows[1], (std::vector<std::string>{"1234", "下水道堵塞", "排水公司", "人民路 1 号",
                                               "2026-11-29T06:00", "3 d 4 h"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"77", "上水井盖", "water", "320501001001002",
                                               "2026-12-02T04:40", "5 h 20 min"}));
}

TEST(MonthlyReportMarkdown, APipeInANameDoesNotSplitTheCell) {
  MonthlyReport r = Month();
  r.departments.mutable_rows(0)->set_name("排水|公司\nnext line");
  const auto rows = Rows(RenderReport(r, ReportFormat::kMarkdown), "各部门排名 Departments");
  ASSERT_GE(rows.size(), 2u);
  EXPECT_EQ(rows[1].size(), rows[0].size());
  EXPECT_EQ(rows[1][1], "排水|公司 next line");
}

// ---- HTML ----

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TEST(MonthlyReportHtml, EscapesHostileNamesAndLoadsNothingFromOutside) {
  MonthlyReport r = Month();
  r.city = "Evil\"><script>alert(0)</script>";
  r.departments.mutable_rows(0)->set_name("<script>alert(1)</script>");  // ranked: lists, chart
  r.departments.mutable_rows(11)->set_name("Q\"uote' & <b>bold</b>");
  r.overdue[0].mutable_place()->set_address("<img src=x onerror=alert(2)>");
  r.department_names = {{"drainage", "<iframe src=\"https://evil.example/\">"}};
  auto* source = r.sources.add_rows();
  source->set_key("app");
  source->set_name("<svg onload=alert(3)>");
  source->set_registered(4);
  r.sources.mutable_total()->set_registered(4);
  const std::string html = RenderReport(r, ReportFormat::kHtml);
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(html, HasSubstr("Q&quot;uote&#39; &amp; &lt;b&gt;bold&lt;/b&gt;"));
  EXPECT_THAT(html, HasSubstr("Evil&quot;&gt;&lt;script&gt;alert(0)"));
  EXPECT_THAT(html, HasSubstr("&lt;img src=x onerror=alert(2)&gt;"));
  EXPECT_THAT(html, HasSubstr("&lt;iframe src=&quot;https://evil.example/&quot;&gt;"));
  EXPECT_THAT(html, HasSubstr("&lt;svg onload=alert(3)&gt;"));
  // Every tag in the page is the renderer's own: none from the data, no event handler, nothing
  // fetched (no src, href or url()), and the only "http" in a tag is the SVG namespace name.
  const std::regex tag(R"(<\s*(/?[A-Za-z!][A-Za-z0-9-]*)([^>]*)>)");
  const std::regex handler(R"(\son[a-z]+\s*=|\s(src|href)\s*=)", std::regex::icase);
  const std::string ns = "xmlns=\"http://www.w3.org/2000/svg\"";
  int tags = 0, svgs = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), tag); it != std::sregex_iterator();
       ++it) {
    ++tags;
    const std::string name = Lower((*it)[1].str()), attributes = (*it)[2].str();
    SCOPED_TRACE("tag: " + it->str());
    for (const char* banned : {"script", "img", "iframe", "object", "embed", "link", "b", "base"})
      EXPECT_NE(name, banned);
    EXPECT_FALSE(std::regex_search(attributes, handler));
    std::string rest = attributes;
    if (name == "svg" && rest.find(ns) != std::string::npos) {
      rest.erase(rest.find(ns), ns.size());
      ++svgs;
    }
    EXPECT_THAT(Lower(rest), Not(HasSubstr("http")));
    EXPECT_THAT(Lower(rest), Not(HasSubstr("url(")));
  }
  EXPECT_GT(tags, 100);
  EXPECT_EQ(svgs, 2);  // the closure bars and the sources chart
  const std::string lower = Lower(html);
  EXPECT_THAT(lower, Not(HasSubstr("@import")));
  EXPECT_THAT(lower, Not(HasSubstr("url(")));
}

// ---- CSV (RFC 4180) ----

// Records of an RFC 4180 text, CRLF or LF line ends; blank lines left out.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      EXPECT_TRUE(field.empty()) << "a quote inside an unquoted field at byte " << i;
      quoted = true;
      any = true;
    } else if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        record.push_back(std::move(field));
        records.push_back(std::move(record));
      }
      record.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  EXPECT_FALSE(quoted) << "unterminated quoted field";
  if (any || !field.empty()) {
    record.push_back(std::move(field));
    records.push_back(std::move(record));
  }
  return records;
}

// The data records of one section (first field = the table id).
std::vector<std::vector<std::string>> Records(const std::string& csv, const std::string& id) {
  std::vector<std::vector<std::string>> out;
  for (auto& rec : ParseCsv(csv))
    if (rec[0] == id) out.push_back(rec);
  return out;
}

TEST(MonthlyReportCsv, QuotesCommasQuotesAndNewlines) {
  MonthlyReport r = Month();
  r.departments.mutable_rows(0)->set_name("排水, 公司");
  r.departments.mutable_rows(1)->set_name("He said \"hi\"");
  r.departments.mutable_rows(2)->set_name("Line1\nLine2");
  r.overdue[0].mutable_place()->set_address("人民路 1 号, 东门\r\n北侧");
  const std::string csv = RenderReport(r, ReportFormat::kCsv);
  EXPECT_THAT(csv, HasSubstr(",\"排水, 公司\","));
  EXPECT_THAT(csv, HasSubstr(",\"He said \"\"hi\"\"\","));
  EXPECT_THAT(csv, HasSubstr(",\"Line1\nLine2\","));
  const auto departments = Records(csv, "departments");
  ASSERT_EQ(departments.size(), 12u);
  for (const auto& rec : departments) EXPECT_EQ(rec.size(), 14u) << rec[2];  // id + 13 columns
  EXPECT_EQ(departments[0][2], "排水, 公司");
  EXPECT_EQ(departments[1][2], "He said \"hi\"");
  EXPECT_EQ(departments[2][2], "Line1\nLine2");
  const auto overdue = Records(csv, "overdue");
  ASSERT_EQ(overdue.size(), 2u);
  EXPECT_EQ(overdue[0].size(), 7u);
  EXPECT_EQ(overdue[0][4], "人民路 1 号, 东门\r\n北侧");
  EXPECT_EQ(overdue[0][6], "3 d 4 h");
  EXPECT_EQ(csv.rfind("section,figure,value\r\n", 0), 0u);
}

// A cell a spreadsheet would run as a formula starts with = + - @ (OWASP "CSV injection"); a
// plain number such as "-2.5" is not one.
bool RunsAsFormula(const std::string& cell) {
  static const std::regex number(R"([+-]?[0-9]+(\.[0-9]+)?)");
  return !cell.empty() && std::string("=+-@").find(cell[0]) != std::string::npos &&
         !std::regex_match(cell, number);
}

TEST(MonthlyReportCsv, NoCellStartsAFormula) {
  MonthlyReport r = Month();
  r.departments.mutable_rows(0)->set_name("=cmd|' /C calc'!A0");
  r.departments.mutable_rows(1)->set_name("+cmd|' /C calc'!A0");
  r.departments.mutable_rows(2)->set_name("@SUM(1+1)*cmd|' /C calc'!A0");
  r.departments.mutable_rows(3)->set_name("=HYPERLINK(\"http://evil.example\",\"x\")");
  r.overdue[0].mutable_place()->set_address("=cmd|' /C calc'!A0");
  const std::string csv = RenderReport(r, ReportFormat::kCsv);
  int hostile = 0;
  for (const auto& rec : ParseCsv(csv)) {
    for (const auto& cell : rec) {
      EXPECT_FALSE(RunsAsFormula(cell)) << "cell: " << cell;
      if (cell.find("cmd|") != std::string::npos || cell.find("HYPERLINK") != std::string::npos)
        ++hostile;
    }
  }
  EXPECT_EQ(hostile, 9);  // four in the ranking, four on the red list, one overdue address
  const auto departments = Records(csv, "departments");
  ASSERT_GE(departments.size(), 1u);
  EXPECT_EQ(departments[0][2], "'=cmd|' /C calc'!A0");  // neutralised, the text kept
  EXPECT_EQ(departments[1][11], "93.0");
  EXPECT_EQ(departments[1][12], "95.5");
  EXPECT_EQ(departments[1][13], "-2.5");  // a negative change stays a number
}

// "-1+cmd|..." starts like a negative number but is a formula (OWASP lists "-" with = + @).
TEST(MonthlyReportCsv, AFormulaStartingWithMinusADigitIsNeutralisedToo) {
  MonthlyReport r = Month();
  r.overdue[0].mutable_place()->set_address("-1+cmd|' /C calc'!A0");
  r.departments.mutable_rows(0)->set_name("-2+3+cmd|' /C calc'!A0");
  const std::string csv = RenderReport(r, ReportFormat::kCsv);
  for (const auto& rec : ParseCsv(csv))
    for (const auto& cell : rec) EXPECT_FALSE(RunsAsFormula(cell)) << "cell: " << cell;
}

// ---- the terminal table ----

TEST(DisplayWidth, CountsEastAsianWideCharactersAsTwoColumns) {
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("排水公司"), 8u);
  EXPECT_EQ(DisplayWidth("Water 自来水"), 12u);
  EXPECT_EQ(DisplayWidth("（城区）"), 8u);  // fullwidth parentheses
  EXPECT_EQ(DisplayWidth("𠀀"), 2u);        // CJK extension B, four UTF-8 bytes
  EXPECT_EQ(DisplayWidth("—"), 1u);
  EXPECT_EQ(DisplayWidth("93.4%"), 5u);
}

TEST(FormatMetricsTable, EveryLineHasTheSameDisplayWidthWithCjkNames) {
  v1::MetricsReply m;
  m.set_group_by(v1::BY_DEPARTMENT);
  m.set_from("2026-11-01");
  m.set_to("2026-11-30");
  m.set_min_sample(10);
  *m.add_rows() = Unit("drainage", "排水公司", 1, 96.5);
  *m.add_rows() = Unit("water", "Water 自来水（城区）", 2, 88.25);
  *m.add_rows() = Unit("municipal", "市政设施管理处", 0, 99.0);
  *m.add_rows() = Unit("x", "𠀀𠀁 ext-B", 0, 0);
  m.mutable_rows(3)->set_has_index(false);
  m.mutable_rows(3)->set_has_rates(0);
  v1::ClosureRow blank;
  blank.set_name("未派遣 not dispatched");
  *m.add_rows() = blank;
  *m.mutable_total() = Unit("", "Testville", 0, 91.0);
  const std::string text = FormatMetricsTable(m);
  std::istringstream in(text);
  std::string title, line;
  std::getline(in, title);
  EXPECT_THAT(title, HasSubstr("2026-11-01"));
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 9u);  // header, rule, 5 rows, rule, total
  const size_t width = DisplayWidth(lines[0]);
  for (const auto& l : lines) EXPECT_EQ(DisplayWidth(l), width) << "\n" << text;
  EXPECT_EQ(lines[1], std::string(width, '-'));
  // The name column starts at the same display column on every row: the prefix up to it
  // (rank, two spaces, key padded, two spaces) has one width.
  const size_t name_at = DisplayWidth(lines[2].substr(0, lines[2].find("排水公司")));
  EXPECT_EQ(DisplayWidth(lines[3].substr(0, lines[3].find("Water 自来水"))), name_at);
  EXPECT_EQ(DisplayWidth(lines[4].substr(0, lines[4].find("市政设施管理处"))), name_at);
  EXPECT_EQ(DisplayWidth(lines[5].substr(0, lines[5].find("𠀀𠀁"))), name_at);
  EXPECT_EQ(DisplayWidth(lines[6].substr(0, lines[6].find("未派遣"))), name_at);
}

}  // namespace
}  // namespace casebus::query

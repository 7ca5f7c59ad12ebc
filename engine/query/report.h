#pragma once
// The closure figures for people: the `casebus metrics` table and the monthly report
// (一月一通报) in Markdown, CSV or HTML (with inline SVG charts, no external resources).
//
// The month is a cohort: the cases registered in that month, as they stand when the report is
// made (ledger.h). The previous month is the same cohort rule one month earlier, so "change"
// compares two months as both stand today.

#include <string>
#include <string_view>
#include <vector>

#include "casebus/v1/case.pb.h"
#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"

namespace casebus::query {

// One grouping as an aligned table: rank, unit, counters, rates, index.
std::string FormatMetricsTable(const v1::MetricsReply& m);

struct MonthlyReport {
  std::string city;
  std::string month;           // "2026-11"
  int utc_offset_minutes = 0;
  v1::MetricsPolicy policy;
  v1::MetricsReply departments, districts, categories, sources;  // this month
  v1::MetricsReply prev_departments, prev_districts;              // the month before
  std::vector<v1::Case> overdue;  // the longest-overdue open cases, oldest deadline first
  std::vector<std::pair<std::string, std::string>> department_names;  // id → name (for cases)
};

enum class ReportFormat { kMarkdown, kCsv, kHtml };

std::string RenderReport(const MonthlyReport& r, ReportFormat format);

// Text for HTML or XML element content and attribute values: & < > " ' escaped, control
// characters other than tab and newlines (which XML 1.0 cannot carry) become spaces.
std::string XmlEscape(std::string_view s);

}  // namespace casebus::query

// `casebus metrics`, `casebus report --month`, `casebus ledger rebuild [--verify]`: the
// closure figures for people, and the proof that they are right.

#include <cstdio>
#include <fstream>
#include <map>

#include "engine/base/time_format.h"
#include "engine/cli/client.h"
#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/query/metrics_json.h"
#include "engine/query/report.h"
#include "engine/query/text_table.h"
#include "engine/server/audit_check.h"
#include "engine/server/ledger_check.h"

namespace casebus::cli {
namespace {

// One query to the running server; prints the error and returns nullopt on failure.
std::optional<v1::QueryResult> Ask(Client& client, const std::string& verb, v1::Query q, long timeout_ms) {
  v1::Request req;
  req.set_version(1);
  *req.mutable_query() = std::move(q);
  auto reply = client.Call(req, std::chrono::milliseconds(timeout_ms));
  if (!reply) {
    std::fprintf(stderr, "casebus %s: %s\n", verb.c_str(), reply.error().message().c_str());
    return std::nullopt;
  }
  const auto& r = reply->query();
  if (reply->has_error() || r.code() != v1::OK) {
    std::fprintf(stderr, "casebus %s: %s: %s\n", verb.c_str(),
                 v1::Code_Name(reply->has_error() ? reply->error().code() : r.code()).c_str(),
                 reply->has_error() ? reply->error().message().c_str() : r.message().c_str());
    return std::nullopt;
  }
  return r;
}

v1::Query MetricsQuery(v1::MetricsGroup g, const std::string& from, const std::string& to) {
  v1::Query q;
  q.mutable_metrics()->set_group_by(g);
  q.mutable_metrics()->set_from(from);
  q.mutable_metrics()->set_to(to);
  return q;
}

// "2026-11" → first and last day, and the month before's; nullopt when malformed.
struct Month {
  std::string from, to, prev_from, prev_to;
};
std::optional<Month> ParseMonth(const std::string& text) {
  if (text.size() != 7 || text[4] != '-') return std::nullopt;
  auto first = ParseDate(text + "-01");
  if (!first) return std::nullopt;
  int y;
  unsigned m, d;
  CivilFromDays(*first, y, m, d);
  const int ny = m == 12 ? y + 1 : y, py = m == 1 ? y - 1 : y;
  const unsigned nm = m == 12 ? 1 : m + 1, pm = m == 1 ? 12 : m - 1;
  const int64_t next = DaysFromCivil(ny, nm, 1), prev = DaysFromCivil(py, pm, 1);
  return Month{FormatDate(*first), FormatDate(next - 1), FormatDate(prev), FormatDate(*first - 1)};
}

}  // namespace

int RunMetrics(const Args& args) {
  auto flags = Flags::Parse(args, {"by", "from", "to", "endpoint", "timeout-ms"}, {"json"});
  if (!flags) {
    std::fprintf(stderr, "casebus metrics: %s\n", flags.error().message().c_str());
    return 2;
  }
  const std::string by = flags->GetOr("by", "department");
  auto group = query::ParseGroup(by);
  if (!group) {
    std::fprintf(stderr, "casebus metrics: --by %s: expected one of %s\n", by.c_str(), query::GroupNames().c_str());
    return 2;
  }
  Client client(flags->GetOr("endpoint", DefaultEndpoint()));
  auto r = Ask(client, "metrics", MetricsQuery(*group, flags->GetOr("from", ""), flags->GetOr("to", "")),
               std::strtol(flags->GetOr("timeout-ms", "10000").c_str(), nullptr, 10));
  if (!r) return 1;
  if (flags->Has("json")) {
    std::printf("%s\n", boost::json::serialize(query::MetricsJson(r->metrics(), r->utc_offset_minutes())).c_str());
  } else {
    std::fputs(query::FormatMetricsTable(r->metrics()).c_str(), stdout);
  }
  return 0;
}

int RunMonthlyReport(const Args& args) {
  auto flags = Flags::Parse(args, {"month", "format", "out", "endpoint", "timeout-ms"}, {});
  if (!flags) {
    std::fprintf(stderr, "casebus report: %s\n", flags.error().message().c_str());
    return 2;
  }
  const std::string month_text = flags->GetOr("month", "");
  auto month = ParseMonth(month_text);
  if (!month) {
    std::fprintf(stderr, "casebus report: --month %s: expected YYYY-MM, e.g. 2026-11\n", month_text.c_str());
    return 2;
  }
  const std::string format_text = flags->GetOr("format", "md");
  query::ReportFormat format;
  if (format_text == "md") format = query::ReportFormat::kMarkdown;
  else if (format_text == "csv") format = query::ReportFormat::kCsv;
  else if (format_text == "html") format = query::ReportFormat::kHtml;
  else {
    std::fprintf(stderr, "casebus report: --format %s: expected md, csv or html\n", format_text.c_str());
    return 2;
  }
  Client client(flags->GetOr("endpoint", DefaultEndpoint()));
  const long timeout = std::strtol(flags->GetOr("timeout-ms", "30000").c_str(), nullptr, 10);
  query::MonthlyReport report;
  report.month = month_text;
  struct Part {
    v1::MetricsGroup group;
    bool previous;
    v1::MetricsReply* into;
  };
  const Part parts[] = {{v1::BY_DEPARTMENT, false, &report.departments},
                        {v1::BY_DISTRICT, false, &report.districts},
                        {v1::BY_CATEGORY, false, &report.categories},
                        {v1::BY_SOURCE, false, &report.sources},
                        {v1::BY_DEPARTMENT, true, &report.prev_departments},
                        {v1::BY_DISTRICT, true, &report.prev_districts}};
  for (const auto& p : parts) {
    auto r = Ask(client, "report",
                 MetricsQuery(p.group, p.previous ? month->prev_from : month->from,
                              p.previous ? month->prev_to : month->to),
                 timeout);
    if (!r) return 1;
    report.utc_offset_minutes = r->utc_offset_minutes();
    *p.into = std::move(*r->mutable_metrics());
  }
  // Names of every department and category with a case (the overdue ones may be older).
  for (v1::MetricsGroup g : {v1::BY_DEPARTMENT, v1::BY_CATEGORY}) {
    auto r = Ask(client, "report", MetricsQuery(g, "", ""), timeout);
    if (!r) return 1;
    for (const auto& row : r->metrics().rows()) {
      if (g == v1::BY_DEPARTMENT) report.department_names.emplace_back(row.key(), row.name());
      else if (!std::any_of(report.categories.rows().begin(), report.categories.rows().end(),
                            [&](const v1::ClosureRow& c) { return c.key() == row.key(); })) {
        auto* extra = report.categories.add_rows();  // a name only: registered 0 keeps it out of the top list
        extra->set_key(row.key());
        extra->set_name(row.name());
      }
    }
  }
  v1::Query overdue;
  overdue.mutable_list()->set_overdue(true);
  overdue.mutable_list()->set_by_deadline(true);
  overdue.mutable_list()->set_limit(10);
  auto list = Ask(client, "report", std::move(overdue), timeout);
  if (!list) return 1;
  report.overdue.assign(list->cases().begin(), list->cases().end());
  report.city = report.departments.total().name();  // the total row carries the city's name
  report.policy = report.departments.policy();
  const std::string text = query::RenderReport(report, format);
  if (auto out = flags->Get("out")) {
    std::ofstream f(*out, std::ios::binary);
    f << text;
    if (!f) {
      std::fprintf(stderr, "casebus report: --out %s: cannot write\n", out->c_str());
      return 1;
    }
    std::fprintf(stderr, "casebus report: %s written (%zu bytes)\n", out->c_str(), text.size());
  } else {
    std::fputs(text.c_str(), stdout);
  }
  return 0;
}

int RunLedger(const Args& args) {
  auto flags = Flags::Parse(args, {"data", "config", "show"}, {"verify"});
  if (!flags || flags->positional().size() != 1 || flags->positional()[0] != "rebuild") {
    std::fprintf(stderr, "usage: casebus ledger rebuild [--verify] [--data DIR] [--config FILE] [--show N]\n%s",
                 flags ? "" : (flags.error().message() + "\n").c_str());
    return 2;
  }
  auto cfg = LoadConfigOrSample(flags->GetOr("config", ""));
  if (!cfg) {
    std::fprintf(stderr, "casebus ledger: config: %s\n", cfg.error().message().c_str());
    return 1;
  }
  const bool verify = flags->Has("verify");
  const std::string data = flags->GetOr("data", "casebus-data");
  const size_t show = std::strtoul(flags->GetOr("show", "20").c_str(), nullptr, 10);
  auto check = server::CheckLedger(*cfg, data, !verify, show, [](uint64_t done, uint64_t total) {
    std::fprintf(stderr, "  replayed %llu of %llu journal records (%.0f%%)\n", static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total), total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0);
  });
  if (!check) {
    std::fprintf(stderr, "casebus ledger: %s: %s\n", data.c_str(), check.error().message().c_str());
    return 1;
  }
  std::printf("journal: %llu records; ledger: as of record %llu (%llu cases then), %llu buckets in the store, "
              "%llu recounted\n",
              static_cast<unsigned long long>(check->journal_records), static_cast<unsigned long long>(check->as_of),
              static_cast<unsigned long long>(check->cases), static_cast<unsigned long long>(check->durable_buckets),
              static_cast<unsigned long long>(check->recounted_buckets));
  if (!check->first.empty()) {
    query::TextTable t;
    t.header = {"dimension", "key", "day", "counter", "maintained", "recounted"};
    t.right = {false, false, false, false, true, true};
    for (const auto& d : check->first) {
      t.rows.push_back({std::string(core::DimName(d.dim)), d.key.empty() ? "\"\"" : d.key, FormatDate(d.day),
                        std::string(core::CounterName(d.counter)), std::to_string(d.maintained),
                        std::to_string(d.recomputed)});
    }
    std::fputs(t.Render().c_str(), stdout);
  }
  std::printf("%zu differences between the maintained ledger and a recount of the journal up to record %llu\n",
              check->differences, static_cast<unsigned long long>(check->as_of));
  if (!verify && check->rewritten > 0)
    std::printf("rebuilt: %llu ledger buckets rewritten from the journal\n",
                static_cast<unsigned long long>(check->rewritten));
  return verify && check->differences > 0 ? 1 : 0;
}

int RunAudit(const Args& args) {
  auto flags = Flags::Parse(args, {"data"}, {});
  if (!flags || flags->positional().size() != 1 || flags->positional()[0] != "verify") {
    std::fprintf(stderr, "usage: casebus audit verify [--data DIR]\n%s",
                 flags ? "" : (flags.error().message() + "\n").c_str());
    return 2;
  }
  const std::string data = flags->GetOr("data", "casebus-data");
  auto report = server::VerifyAudit(data, [](uint64_t done, uint64_t total) {
    std::fprintf(stderr, "  checked %llu of %llu journal records\n", static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total));
  });
  if (!report) {
    std::fprintf(stderr, "casebus audit: %s: %s\n", data.c_str(), report.error().message().c_str());
    return 1;
  }
  std::printf("journal: %llu records", static_cast<unsigned long long>(report->records));
  if (report->unchained > 0)
    std::printf(" (the first %llu written before the audit chain existed: not covered)",
                static_cast<unsigned long long>(report->unchained));
  std::printf("\nhead:    %s\n", report->head.c_str());
  if (report->intact) {
    std::printf("chain:   intact\n");
    return 0;
  }
  std::printf("chain:   BROKEN at record %llu: %s\n", static_cast<unsigned long long>(report->broken_at),
              report->reason.c_str());
  return 1;
}

}  // namespace casebus::cli

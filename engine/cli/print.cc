#include "engine/cli/print.h"

#include <algorithm>
#include <vector>

#include "engine/base/time_format.h"
#include "engine/core/case_machine.h"

namespace casebus::cli {
namespace {

std::string When(int64_t ms, int off) { return ms > 0 ? FormatIso(ms, off) : "—"; }

std::string EventName(v1::EventType t) {
  std::string n = v1::EventType_Name(t);
  if (n.starts_with("EV_")) n = n.substr(3);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return c == '_' ? ' ' : std::tolower(c); });
  return n;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

std::string FormatResult(const v1::CommandResult& r) {
  if (r.code() == v1::OK) {
    std::string s = "ok: case " + std::to_string(r.case_id());
    if (r.merged()) s += " (merged as a duplicate report)";
    if (!r.department().empty()) s += " → " + r.department() + " (work order " + r.work_order_id() + ")";
    if (r.duplicate()) s += " (retry: original result)";
    return s;
  }
  std::string s = "error " + v1::Code_Name(r.code()) + ": " + r.message();
  if (!r.field().empty()) s += " [field " + r.field() + "]";
  return s;
}

std::string FormatCase(const v1::Case& c, int off) {
  std::string o;
  auto row = [&](const std::string& k, const std::string& v) {
    std::string key = k + ":";
    key.resize(std::max<size_t>(key.size(), 20), ' ');
    o += "  " + key + v + "\n";
  };
  o += "case " + std::to_string(c.id()) + "  [" + core::StateName(c.state()) + "]\n";
  row("category", c.category() + (c.condition().empty() ? "" : " / condition " + c.condition()));
  std::string place = c.place().grid();
  if (c.place().has_coordinates())
    place += "  (" + std::to_string(c.place().lat()) + ", " + std::to_string(c.place().lon()) + ")";
  if (!c.place().address().empty()) place += "  " + c.place().address();
  row("place", place);
  row("source", Lower(v1::Source_Name(c.source())) + ", urgency " + Lower(v1::Urgency_Name(c.urgency())));
  if (!c.asset_id().empty()) row("asset", c.asset_id());
  if (!c.description().empty()) row("description", c.description());
  row("reports", std::to_string(c.report_count()));
  row("department", c.department().empty() ? "—" : c.department());
  if (c.light() != v1::LIGHT_UNSPECIFIED || c.escalation_count() > 0) {
    std::string esc = (c.light() == v1::LIGHT_UNSPECIFIED ? std::string("no light (handling over)")
                                                          : Lower(v1::TrafficLight_Name(c.light()))) +
                      ", level " +
                      std::to_string(c.escalation_level()) + ", " +
                      std::to_string(c.escalation_count()) + " ladder step(s) fired";
    if (c.supervision_open()) esc += ", 督办 open: awaiting the department's written reply";
    if (c.overdue_at_ms() > 0) esc += ", overdue since " + When(c.overdue_at_ms(), off);
    row("escalation", esc);
  }
  if (!c.route().explanation().empty()) row("why there", c.route().explanation());
  if (!c.work_order_id().empty()) row("work order", c.work_order_id());
  row("reported", When(c.reported_at_ms(), off));
  row("dispatched", When(c.dispatched_at_ms(), off));
  row("accept deadline", When(c.accept_deadline_ms(), off));
  row("handle deadline", When(c.handle_deadline_ms(), off));
  if (c.verify_deadline_ms() > 0) row("verify deadline", When(c.verify_deadline_ms(), off));
  if (c.closed_at_ms() > 0)
    row("closed", When(c.closed_at_ms(), off) + (c.closed_on_time() ? "  on time" : "  late"));
  row("counts", "rework " + std::to_string(c.rework_count()) + ", returned " +
                    std::to_string(c.return_count()) + ", extensions " +
                    std::to_string(c.extension_count()) + " (" + std::to_string(c.extension_hours()) +
                    " h), reopened " + std::to_string(c.reopen_count()));
  if (c.merged_into() != 0) row("merged into", std::to_string(c.merged_into()));
  o += "  history:\n";
  for (const auto& e : c.history()) {
    std::string line = "    " + When(e.at_ms(), off) + "  " + EventName(e.type());
    line.resize(std::max<size_t>(line.size(), 50), ' ');
    if (!e.actor().empty()) line += " by " + e.actor();
    if (e.type() == v1::EV_DISPATCHED) line += " → " + e.route().department() + " (" + e.route().explanation() + ")";
    if (!e.work_order_id().empty() && e.type() != v1::EV_DISPATCHED) line += " work order " + e.work_order_id();
    if (e.extension_hours() > 0) line += " " + std::to_string(e.extension_hours()) + " h";
    if (e.type() == v1::EV_OVERDUE) line += " handling deadline " + When(e.due_at_ms(), off) + " passed";
    if (e.type() == v1::EV_ESCALATED) {
      line += " " + Lower(v1::Stage_Name(e.stage())) + " step '" + e.step_id() + "' due " +
              When(e.due_at_ms(), off) + " → " + (e.notify().empty() ? "nobody" : e.notify());
      if (e.supervision()) line += " (督办)";
    }
    if (e.other_case() != 0) line += " case " + std::to_string(e.other_case());
    if (!e.reason().empty()) line += ": " + e.reason();
    for (const auto& ev : e.evidence()) line += " [" + ev + "]";
    o += line + "\n";
  }
  return o;
}

std::string FormatCaseList(const google::protobuf::RepeatedPtrField<v1::Case>& cases, int off,
                           int64_t now) {
  std::vector<std::vector<std::string>> rows = {
      {"case", "state", "category", "grid", "department", "handle deadline", "light"}};
  for (const auto& c : cases) {
    bool open_undisposed = c.state() == v1::DISPATCHED || c.state() == v1::ACCEPTED || c.state() == v1::RETURNED;
    std::string light = c.light() == v1::LIGHT_UNSPECIFIED ? "" : Lower(v1::TrafficLight_Name(c.light()));
    if (open_undisposed && c.handle_deadline_ms() > 0 && c.handle_deadline_ms() < now) light += " (overdue)";
    if (c.escalation_level() > 0) light += " L" + std::to_string(c.escalation_level());
    rows.push_back({std::to_string(c.id()), core::StateName(c.state()), c.category(), c.place().grid(),
                    c.department().empty() ? "—" : c.department(), When(c.handle_deadline_ms(), off), light});
  }
  std::vector<size_t> w(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  std::string o;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      std::string cell = r[i];
      cell.resize(w[i], ' ');
      line += cell + "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    o += line + "\n";
  }
  o += std::to_string(cases.size()) + " case(s)\n";
  return o;
}

}  // namespace casebus::cli

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

namespace {

// Columns padded to their widest cell, two spaces apart (widths in characters, so Chinese
// department names line up as well as a terminal allows).
std::string AlignRows(const std::vector<std::vector<std::string>>& rows) {
  auto width = [](const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  std::vector<size_t> w(rows.empty() ? 0 : rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], width(r[i]));
  std::string o;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) line += r[i] + std::string(w[i] - width(r[i]) + 2, ' ');
    while (!line.empty() && line.back() == ' ') line.pop_back();
    o += line + "\n";
  }
  return o;
}

// "0 s", "42 s", "3 min 5 s", "2 h 10 min", "3 d 4 h".
std::string Duration(int64_t ms) {
  const int64_t s = ms / 1000;
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3600) return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  if (s < 86400) return std::to_string(s / 3600) + " h " + std::to_string(s % 3600 / 60) + " min";
  return std::to_string(s / 86400) + " d " + std::to_string(s % 86400 / 3600) + " h";
}

}  // namespace

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
  return AlignRows(rows) + std::to_string(cases.size()) + " case(s)\n";
}

std::string FormatDeliveryLanes(const google::protobuf::RepeatedPtrField<v1::DeliveryLane>& lanes,
                                int off, int64_t now) {
  std::vector<std::vector<std::string>> rows = {
      {"department", "pending", "lag", "breaker", "attempts", "delivered", "dead", "last error"}};
  for (const auto& l : lanes) {
    if (l.pending() == 0 && l.delivered() == 0 && l.dead() == 0 && l.breaker() == "closed") continue;
    std::string breaker = l.breaker();
    if (l.breaker_until_ms() > now) breaker += " until " + When(l.breaker_until_ms(), off);
    rows.push_back({l.department(), std::to_string(l.pending()), Duration(l.lag_ms()), breaker,
                    std::to_string(l.attempts()), std::to_string(l.delivered()),
                    std::to_string(l.dead()), l.last_error().substr(0, 80)});
  }
  if (rows.size() == 1) return "delivery:           every department is up to date\n";
  return "delivery (departments with a backlog or deliveries since start):\n" + AlignRows(rows);
}

std::string FormatDeadLetters(const google::protobuf::RepeatedPtrField<v1::DeadLetter>& letters,
                              int off) {
  std::vector<std::vector<std::string>> rows = {
      {"id", "kind", "department", "dead since", "attempts", "reason"}};
  for (const auto& d : letters) {
    const bool notice = d.item().has_notice();
    rows.push_back({notice ? d.item().notice().id() : d.item().work_order().id(),
                    notice ? "notice" : "work order", d.department(), When(d.dead_at_ms(), off),
                    std::to_string(d.attempts_size()), d.reason().substr(0, 100)});
  }
  return AlignRows(rows) + std::to_string(letters.size()) + " dead letter(s)\n";
}

}  // namespace casebus::cli

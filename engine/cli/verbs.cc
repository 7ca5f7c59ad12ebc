// The operator verbs: build one Command or Query from the flags, send it to a running server,
// print the answer.

#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>

#include "engine/base/clock.h"
#include "engine/cli/client.h"
#include "engine/cli/commands.h"
#include "engine/cli/flags.h"
#include "engine/cli/print.h"
#include "engine/query/closure_table.h"

namespace casebus::cli {
namespace {

const std::set<std::string> kCommon = {"endpoint", "actor", "request-id", "timeout-ms"};

struct VerbSpec {
  std::set<std::string> values;
  std::set<std::string> switches;
};

const std::map<std::string, VerbSpec>& Specs() {
  static const std::map<std::string, VerbSpec> specs = {
      {"report", {{"category", "condition", "grid", "lat", "lon", "source", "urgency", "asset",
                   "description", "reporter", "contact", "address"}, {}}},
      {"register", {{"condition"}, {}}},
      {"reject", {{"reason"}, {}}},
      {"dispatch", {{"department"}, {}}},
      {"accept", {{"work-order"}, {}}},
      {"return", {{"reason"}, {}}},
      {"resolve", {{"evidence", "note"}, {}}},
      {"verify", {{"reason"}, {"pass", "fail"}}},
      {"close", {{}, {}}},
      {"reopen", {{"reason"}, {}}},
      {"extend", {{"hours", "reason"}, {}}},
      {"approve-extension", {{"hours"}, {}}},
      {"deny-extension", {{"reason"}, {}}},
      {"suspend", {{"reason"}, {}}},
      {"resume", {{}, {}}},
      {"merge", {{"into"}, {}}},
      {"void", {{"reason"}, {}}},
      {"note", {{"text"}, {}}},
      {"supervision-reply", {{"text"}, {}}},
      {"show", {{}, {}}},
      {"list", {{"state", "department", "district", "limit", "after", "light", "min-level"}, {"overdue"}}},
      {"status", {{}, {}}},
      {"closure", {{}, {}}},
      {"deadletter", {{"limit"}, {"all"}}},
  };
  return specs;
}

template <typename E>
Result<E> ParseEnum(const std::string& flag, const std::string& text,
                    bool (*parse)(const std::string&, E*)) {
  std::string upper;
  for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  E value;
  if (!parse(upper, &value))
    return Err(Status::InvalidArgument("--" + flag + " " + text + " is not a known value", flag));
  return value;
}

Result<double> ParseDouble(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0')
    return Err(Status::InvalidArgument("--" + flag + " " + text + " is not a number", flag));
  return v;
}

Result<int> ParseInt(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || v < 0 || v > 1'000'000)
    return Err(Status::InvalidArgument("--" + flag + " " + text + " is not a count", flag));
  return static_cast<int>(v);
}

#define TRY(var, expr)                      \
  auto var##_r = (expr);                    \
  if (!var##_r) return Err(var##_r.error()); \
  auto var = *var##_r

Result<v1::Command> BuildCommand(const std::string& verb, const Flags& f) {
  v1::Command c;
  if (verb == "report") {
    auto* r = c.mutable_report();
    TRY(category, f.Required("category"));
    TRY(grid, f.Required("grid"));
    TRY(source, f.Required("source"));
    r->set_category(category);
    r->set_condition(f.GetOr("condition", ""));
    r->mutable_place()->set_grid(grid);
    r->mutable_place()->set_address(f.GetOr("address", ""));
    if (f.Has("lat") != f.Has("lon"))
      return Err(Status::InvalidArgument("--lat and --lon go together", f.Has("lat") ? "lon" : "lat"));
    if (f.Has("lat")) {
      TRY(lat, ParseDouble("lat", *f.Get("lat")));
      TRY(lon, ParseDouble("lon", *f.Get("lon")));
      r->mutable_place()->set_lat(lat);
      r->mutable_place()->set_lon(lon);
      r->mutable_place()->set_has_coordinates(true);
    }
    TRY(src, ParseEnum<v1::Source>("source", source, v1::Source_Parse));
    r->set_source(src);
    if (f.Has("urgency")) {
      TRY(u, ParseEnum<v1::Urgency>("urgency", *f.Get("urgency"), v1::Urgency_Parse));
      r->set_urgency(u);
    }
    r->set_asset_id(f.GetOr("asset", ""));
    r->set_description(f.GetOr("description", ""));
    r->mutable_reporter()->set_name(f.GetOr("reporter", ""));
    r->mutable_reporter()->set_contact(f.GetOr("contact", ""));
    return c;
  }
  TRY(id, f.CaseId());
  if (verb == "register") c.mutable_register_()->set_case_id(id), c.mutable_register_()->set_condition(f.GetOr("condition", ""));
  else if (verb == "reject") c.mutable_reject()->set_case_id(id), c.mutable_reject()->set_reason(f.GetOr("reason", ""));
  else if (verb == "dispatch") c.mutable_dispatch()->set_case_id(id), c.mutable_dispatch()->set_department(f.GetOr("department", ""));
  else if (verb == "accept") c.mutable_accept()->set_case_id(id), c.mutable_accept()->set_work_order_id(f.GetOr("work-order", ""));
  else if (verb == "return") c.mutable_return_()->set_case_id(id), c.mutable_return_()->set_reason(f.GetOr("reason", ""));
  else if (verb == "resolve") {
    c.mutable_resolve()->set_case_id(id);
    std::stringstream ss(f.GetOr("evidence", ""));
    for (std::string e; std::getline(ss, e, ',');)
      if (!e.empty()) c.mutable_resolve()->add_evidence(e);
    c.mutable_resolve()->set_note(f.GetOr("note", ""));
  } else if (verb == "verify") {
    if (f.Has("pass") == f.Has("fail"))
      return Err(Status::InvalidArgument("verify needs exactly one of --pass or --fail", "pass"));
    c.mutable_verify()->set_case_id(id);
    c.mutable_verify()->set_passed(f.Has("pass"));
    c.mutable_verify()->set_reason(f.GetOr("reason", ""));
  } else if (verb == "close") c.mutable_close()->set_case_id(id);
  else if (verb == "reopen") c.mutable_reopen()->set_case_id(id), c.mutable_reopen()->set_reason(f.GetOr("reason", ""));
  else if (verb == "extend") {
    TRY(h, ParseInt("hours", f.GetOr("hours", "0")));
    c.mutable_request_extension()->set_case_id(id);
    c.mutable_request_extension()->set_hours(h);
    c.mutable_request_extension()->set_reason(f.GetOr("reason", ""));
  } else if (verb == "approve-extension") {
    TRY(h, ParseInt("hours", f.GetOr("hours", "0")));
    c.mutable_approve_extension()->set_case_id(id);
    c.mutable_approve_extension()->set_hours(h);
  } else if (verb == "deny-extension") c.mutable_deny_extension()->set_case_id(id), c.mutable_deny_extension()->set_reason(f.GetOr("reason", ""));
  else if (verb == "suspend") c.mutable_suspend()->set_case_id(id), c.mutable_suspend()->set_reason(f.GetOr("reason", ""));
  else if (verb == "resume") c.mutable_resume()->set_case_id(id);
  else if (verb == "merge") {
    TRY(into_s, f.Required("into"));
    Flags tmp;
    uint64_t into = std::strtoull(into_s.c_str(), nullptr, 10);
    if (into == 0) return Err(Status::InvalidArgument("--into " + into_s + " is not a case id", "into"));
    c.mutable_merge()->set_case_id(id);
    c.mutable_merge()->set_into_case_id(into);
  } else if (verb == "void") c.mutable_void_()->set_case_id(id), c.mutable_void_()->set_reason(f.GetOr("reason", ""));
  else if (verb == "note") c.mutable_note()->set_case_id(id), c.mutable_note()->set_text(f.GetOr("text", ""));
  else if (verb == "supervision-reply")
    c.mutable_supervision_reply()->set_case_id(id), c.mutable_supervision_reply()->set_text(f.GetOr("text", ""));
  return c;
}

Result<v1::Query> BuildQuery(const std::string& verb, const Flags& f) {
  v1::Query q;
  if (verb == "show") {
    TRY(id, f.CaseId());
    q.mutable_show()->set_case_id(id);
  } else if (verb == "list") {
    auto* l = q.mutable_list();
    if (f.Has("state")) {
      TRY(s, ParseEnum<v1::CaseState>("state", *f.Get("state"), v1::CaseState_Parse));
      l->set_state(s);
    }
    l->set_department(f.GetOr("department", ""));
    l->set_district(f.GetOr("district", ""));
    l->set_overdue(f.Has("overdue"));
    if (f.Has("light")) {
      TRY(light, ParseEnum<v1::TrafficLight>("light", *f.Get("light"), v1::TrafficLight_Parse));
      l->set_light(light);
    }
    TRY(min_level, ParseInt("min-level", f.GetOr("min-level", "0")));
    l->set_min_level(min_level);
    TRY(limit, ParseInt("limit", f.GetOr("limit", "100")));
    l->set_limit(limit);
    l->set_after_case_id(std::strtoull(f.GetOr("after", "0").c_str(), nullptr, 10));
  } else if (verb == "status") {
    q.mutable_status();
  } else if (verb == "deadletter") {
    // deadletter list [ID...] [--limit N] | retry ID... | retry --all | drop ID... | drop --all
    const auto& pos = f.positional();
    auto* d = q.mutable_dead_letters();
    const std::string action = pos.empty() ? "list" : pos[0];
    if (action == "list") d->set_action(v1::DeadLetters::LIST);
    else if (action == "retry") d->set_action(v1::DeadLetters::RETRY);
    else if (action == "drop") d->set_action(v1::DeadLetters::DROP);
    else
      return Err(Status::InvalidArgument("action '" + action + "' is not list, retry or drop", "action"));
    for (size_t i = 1; i < pos.size(); ++i) d->add_ids(pos[i]);
    d->set_all(f.Has("all"));
    if (action != "list" && d->ids().empty() != d->all())
      return Err(Status::InvalidArgument(action + " needs ids or --all, not both", "ids"));
    TRY(limit, ParseInt("limit", f.GetOr("limit", "100")));
    d->set_limit(limit);
    const char* user = std::getenv("USER");
    d->set_actor(f.GetOr("actor", user && *user ? user : "operator"));
  } else {
    q.mutable_closure();
  }
  return q;
}

bool IsQuery(const std::string& verb) {
  return verb == "show" || verb == "list" || verb == "status" || verb == "closure" ||
         verb == "deadletter";
}

}  // namespace

bool IsVerb(const std::string& verb) { return Specs().count(verb) > 0; }

int RunVerb(const std::string& verb, const Args& args) {
  const VerbSpec& spec = Specs().at(verb);
  std::set<std::string> values = spec.values;
  values.insert(kCommon.begin(), kCommon.end());
  auto flags = Flags::Parse(args, values, spec.switches);
  if (!flags) {
    std::fprintf(stderr, "casebus %s: %s\n", verb.c_str(), flags.error().message().c_str());
    return 2;
  }
  v1::Request req;
  req.set_version(1);
  if (IsQuery(verb)) {
    auto q = BuildQuery(verb, *flags);
    if (!q) {
      std::fprintf(stderr, "casebus %s: %s\n", verb.c_str(), q.error().message().c_str());
      return 2;
    }
    *req.mutable_query() = std::move(*q);
  } else {
    auto c = BuildCommand(verb, *flags);
    if (!c) {
      std::fprintf(stderr, "casebus %s: %s\n", verb.c_str(), c.error().message().c_str());
      return 2;
    }
    const char* user = std::getenv("USER");
    c->set_actor(flags->GetOr("actor", user && *user ? user : "operator"));
    c->set_request_id(flags->GetOr("request-id", RandomRequestId("cli")));
    *req.add_commands() = std::move(*c);
  }
  Client client(flags->GetOr("endpoint", DefaultEndpoint()));
  const long timeout = std::strtol(flags->GetOr("timeout-ms", "10000").c_str(), nullptr, 10);
  auto reply = client.Call(req, std::chrono::milliseconds(timeout));
  if (!reply) {
    std::fprintf(stderr, "casebus %s: %s\n", verb.c_str(), reply.error().message().c_str());
    return 1;
  }
  if (reply->has_error()) {
    std::fprintf(stderr, "casebus %s: %s\n", verb.c_str(), FormatResult(reply->error()).c_str());
    return 1;
  }
  if (!IsQuery(verb)) {
    const auto& r = reply->results(0);
    std::printf("%s\n", FormatResult(r).c_str());
    return r.code() == v1::OK ? 0 : 1;
  }
  const auto& q = reply->query();
  if (q.code() != v1::OK) {
    std::fprintf(stderr, "casebus %s: %s: %s\n", verb.c_str(), v1::Code_Name(q.code()).c_str(),
                 q.message().c_str());
    return 1;
  }
  const int off = q.utc_offset_minutes();
  if (verb == "show") std::fputs(FormatCase(q.found(), off).c_str(), stdout);
  if (verb == "list") std::fputs(FormatCaseList(q.cases(), off, SystemClock().Now()).c_str(), stdout);
  if (verb == "closure") {
    std::fputs(query::FormatClosureTable("Closure by department", q.by_department()).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fputs(query::FormatClosureTable("Closure by district", q.by_district()).c_str(), stdout);
  }
  if (verb == "status") {
    const auto& s = q.status();
    std::printf("healthy:            %s%s\ncases:              %llu (%llu open)\njournal seq:        %llu\n"
                "commands committed: %llu\nwork orders queued: %llu\ntimers scheduled:   %llu\n"
                "escalations fired:  %llu\n督办 open:           %llu\n",
                s.healthy() ? "yes" : "NO — ", s.unhealthy_reason().c_str(),
                static_cast<unsigned long long>(s.cases()), static_cast<unsigned long long>(s.open_cases()),
                static_cast<unsigned long long>(s.journal_seq()),
                static_cast<unsigned long long>(s.commands_committed()),
                static_cast<unsigned long long>(s.outbox_pending()),
                static_cast<unsigned long long>(s.timers()),
                static_cast<unsigned long long>(s.escalations()),
                static_cast<unsigned long long>(s.supervisions_open()));
    std::printf("dead letters:       %llu\n", static_cast<unsigned long long>(s.dead_letters()));
    std::fputs(FormatDeliveryLanes(s.delivery(), off, SystemClock().Now()).c_str(), stdout);
  }
  if (verb == "deadletter") {
    const auto& pos = flags->positional();
    if (pos.empty() || pos[0] == "list") std::fputs(FormatDeadLetters(q.dead_letters(), off).c_str(), stdout);
    else std::printf("%u dead letter(s) %s\n", q.affected(), pos[0] == "retry" ? "back in the outbox" : "dropped");
  }
  return 0;
}

}  // namespace casebus::cli

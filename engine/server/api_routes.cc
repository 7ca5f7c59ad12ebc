#include "engine/server/api_routes.h"

#include <boost/json.hpp>

#include <charconv>
#include <map>
#include <memory>

#include "engine/auth/policy.h"

namespace casebus::server {
namespace {

using Respond = HttpServer::Respond;

// URL action → the Command body's field.
const std::map<std::string, std::string, std::less<>>& Actions() {
  static const std::map<std::string, std::string, std::less<>> kActions = {
      {"register", "register"},
      {"reject", "reject"},
      {"dispatch", "dispatch"},
      {"accept", "accept"},
      {"return", "return"},
      {"extend", "request_extension"},
      {"requestExtension", "request_extension"},
      {"approveExtension", "approve_extension"},
      {"denyExtension", "deny_extension"},
      {"suspend", "suspend"},
      {"resume", "resume"},
      {"resolve", "resolve"},
      {"verify", "verify"},
      {"close", "close"},
      {"reopen", "reopen"},
      {"merge", "merge"},
      {"void", "void"},
      {"note", "note"},
      {"supervisionReply", "supervision_reply"},
  };
  return kActions;
}

std::string ActionList() {
  std::string out;
  for (const auto& [name, field] : Actions()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

bool ParseId(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out > 0;
}

HttpResponse Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// A refused body: code is the limit's name when a limit refused it ("max_json_depth: ...").
HttpResponse BodyError(const casebus::Status& st) {
  const std::string& m = st.message();
  const size_t colon = m.find(':');
  const std::string code = m.rfind("max_", 0) == 0 && colon != std::string::npos ? m.substr(0, colon) : "INVALID_ARGUMENT";
  return JsonError(400, st.field(), m, code);
}

// Shared by the handlers; lives as long as the server's routes.
struct Api {
  Engine& engine;
  Gatekeeper& gate;
  ApiOptions options;

  // Authenticates, then runs f(caller); else answers the refusal.
  template <typename F>
  void WithCaller(const HttpRequest& req, const Respond& respond, F&& f) {
    auto who = gate.Authenticate(req);
    if (auto* refusal = std::get_if<HttpResponse>(&who)) return respond(std::move(*refusal));
    f(std::get<v1::Caller>(who));
  }

  // Submits one command for `caller` and answers with its result.
  void SubmitCommand(const HttpRequest& req, const v1::Caller& caller, v1::Command cmd, const Respond& respond) {
    const std::string& key = req.header("idempotency-key");
    if (key.empty())
      return respond(JsonError(400, "Idempotency-Key",
                               "required header: a key of 1..128 bytes that a retry of this request repeats"));
    if (key.size() > 128) return respond(JsonError(400, "Idempotency-Key", "longer than 128 bytes"));
    cmd.set_request_id(key);
    cmd.set_actor(caller.name());
    *cmd.mutable_caller() = caller;
    const bool report = cmd.has_report();
    v1::Request request;
    request.set_version(1);
    *request.add_commands() = std::move(cmd);
    auto done = [this, req, caller, respond, report](v1::Reply&& reply) {
      if (reply.results_size() != 1) {
        const auto& e = reply.error();
        return respond(CodeError(e.code() == v1::OK ? v1::INTERNAL : e.code(), e.field(), e.message()));
      }
      const v1::CommandResult& r = reply.results(0);
      if (r.code() != v1::OK) {
        if (r.code() == v1::PERMISSION_DENIED || r.code() == v1::NOT_FOUND) gate.Denied(caller, req, r.message());
        return respond(CodeError(r.code(), r.field(), r.message()));
      }
      HttpResponse resp = Json(report && !r.duplicate() && !r.merged() ? 201 : 200, MessageToJson(r));
      if (report) resp.headers["Location"] = "/v1/cases/" + std::to_string(r.case_id());
      respond(std::move(resp));
    };
    if (!engine.Submit(std::move(request), done))
      respond(CodeError(engine.stopping() ? v1::UNAVAILABLE : v1::BUSY, "",
                        engine.stopping() ? "the engine is stopping" : "the engine's queue is full; retry later"));
  }

  // Runs a query for `caller`; on OK answers make(result).
  template <typename Make>
  void RunQuery(const HttpRequest& req, const v1::Caller& caller, v1::Query q, const Respond& respond, Make make) {
    *q.mutable_caller() = caller;
    const bool shows_case = q.has_show();
    engine.Query(std::move(q), [this, req, caller, respond, make, shows_case](v1::QueryResult r) {
      if (r.code() != v1::OK) {
        if (r.code() == v1::PERMISSION_DENIED || (r.code() == v1::NOT_FOUND && shows_case))
          gate.Denied(caller, req, r.message());
        return respond(CodeError(r.code(), "", r.message()));
      }
      respond(make(r));
    });
  }

  // Query parameters: each must be known; returns false (and answers) otherwise.
  bool OnlyParams(const HttpRequest& req, std::initializer_list<std::string_view> known, const Respond& respond) {
    for (const auto& [k, v] : req.query) {
      if (k.empty()) continue;
      bool ok = false;
      for (auto name : known) ok = ok || k == name;
      if (!ok) {
        std::string list;
        for (auto name : known) list += (list.empty() ? "" : ", ") + std::string(name);
        respond(JsonError(400, SafeText(k, 64),
                          list.empty() ? "unknown parameter; this resource takes none" : "unknown parameter; expected " + list));
        return false;
      }
    }
    return true;
  }

  // limit and after, shared by the lists. false: answered.
  bool Paging(const HttpRequest& req, v1::ListCases& list, const Respond& respond) {
    if (auto it = req.query.find("limit"); it != req.query.end()) {
      uint64_t n = 0;
      if (!ParseId(it->second, n)) return respond(JsonError(400, "limit", "must be a whole number from 1")), false;
      if (n > options.max_page_size)
        return respond(JsonError(400, "limit",
                                 "at most " + std::to_string(options.max_page_size) + " per page; page on with after",
                                 "max_page_size")),
               false;
      list.set_limit(static_cast<uint32_t>(n));
    } else {
      list.set_limit(std::min<uint32_t>(100, options.max_page_size));
    }
    if (auto it = req.query.find("after"); it != req.query.end()) {
      uint64_t id = 0;
      if (!ParseId(it->second, id)) return respond(JsonError(400, "after", "must be a case id")), false;
      list.set_after_case_id(id);
    }
    return true;
  }

  static bool Flag(const HttpRequest& req, const std::string& name, bool& out, const Respond& respond) {
    auto it = req.query.find(name);
    if (it == req.query.end()) return true;
    if (it->second == "true" || it->second == "1") out = true;
    else if (it->second == "false" || it->second == "0") out = false;
    else return respond(JsonError(400, name, "must be true or false")), false;
    return true;
  }

  void ListCases(const HttpRequest& req, const Respond& respond) {
    WithCaller(req, respond, [&](const v1::Caller& caller) {
      if (!OnlyParams(req, {"state", "department", "district", "category", "overdue", "light", "min_level", "open",
                            "closed", "by_deadline", "limit", "after"},
                      respond))
        return;
      v1::Query q;
      auto* l = q.mutable_list();
      if (!Paging(req, *l, respond)) return;
      if (auto it = req.query.find("state"); it != req.query.end()) {
        v1::CaseState s;
        std::string upper;
        for (char c : it->second) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
        if (!v1::CaseState_Parse(upper, &s) || s == v1::STATE_UNSPECIFIED)
          return respond(JsonError(400, "state", "not a case state (reported, registered, dispatched, accepted, ...)"));
        l->set_state(s);
      }
      if (auto it = req.query.find("light"); it != req.query.end()) {
        v1::TrafficLight t;
        std::string upper;
        for (char c : it->second) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
        if (!v1::TrafficLight_Parse(upper, &t) || t == v1::LIGHT_UNSPECIFIED)
          return respond(JsonError(400, "light", "not a traffic light (green, yellow, red)"));
        l->set_light(t);
      }
      if (auto it = req.query.find("min_level"); it != req.query.end()) {
        uint64_t n = 0;
        if (!ParseId(it->second, n) || n > 100) return respond(JsonError(400, "min_level", "must be 1..100"));
        l->set_min_level(static_cast<int32_t>(n));
      }
      for (const char* name : {"department", "district", "category"}) {
        auto it = req.query.find(name);
        if (it == req.query.end()) continue;
        if (it->second.size() > 64) return respond(JsonError(400, name, "longer than 64 bytes"));
        if (std::string_view(name) == "department") l->set_department(it->second);
        else if (std::string_view(name) == "district") l->set_district(it->second);
        else l->set_category(it->second);
      }
      bool overdue = false, open = false, closed = false, by_deadline = false;
      if (!Flag(req, "overdue", overdue, respond) || !Flag(req, "open", open, respond) ||
          !Flag(req, "closed", closed, respond) || !Flag(req, "by_deadline", by_deadline, respond))
        return;
      if (open && closed) return respond(JsonError(400, "closed", "open and closed exclude each other"));
      l->set_overdue(overdue);
      l->set_open_only(open);
      l->set_closed_only(closed);
      l->set_by_deadline(by_deadline);
      const uint32_t limit = l->limit();
      RunQuery(req, caller, std::move(q), respond, [limit, by_deadline](const v1::QueryResult& r) {
        std::string body = "{\"cases\":[";
        for (int i = 0; i < r.cases_size(); ++i) body += (i ? "," : "") + MessageToJson(r.cases(i));
        body += "]";
        if (!by_deadline && r.cases_size() == static_cast<int>(limit) && limit > 0)
          body += ",\"next_after\":\"" + std::to_string(r.cases(r.cases_size() - 1).id()) + "\"";
        return Json(200, body + "}");
      });
    });
  }

  void Report(const HttpRequest& req, const Respond& respond) {
    WithCaller(req, respond, [&](const v1::Caller& caller) {
      auto cmd = DecodeCommandJson("report", 0, req.body, options.json);
      if (!cmd) return respond(BodyError(cmd.error()));
      SubmitCommand(req, caller, std::move(*cmd), respond);
    });
  }

  // /v1/cases/{id} and /v1/cases/{id}:{action}
  void OneCase(const HttpRequest& req, const Respond& respond) {
    std::string_view rest = std::string_view(req.path).substr(std::string_view("/v1/cases/").size());
    std::string_view id_text = rest, action;
    if (const size_t colon = rest.find(':'); colon != std::string_view::npos) {
      id_text = rest.substr(0, colon);
      action = rest.substr(colon + 1);
    }
    uint64_t id = 0;
    if (!ParseId(id_text, id)) return respond(JsonError(404, "path", "no such resource: " + SafeText(req.path, 128)));
    if (action.empty()) {
      if (req.method != "GET")
        return respond(JsonError(405, "method", req.method + " is not allowed here; use GET, or POST to /v1/cases/" +
                                                    std::to_string(id) + ":<action>"));
      return WithCaller(req, respond, [&](const v1::Caller& caller) {
        if (!OnlyParams(req, {}, respond)) return;
        v1::Query q;
        q.mutable_show()->set_case_id(id);
        RunQuery(req, caller, std::move(q), respond, [](const v1::QueryResult& r) {
          return Json(200, "{\"case\":" + MessageToJson(r.found()) + "}");
        });
      });
    }
    if (req.method != "POST") {
      HttpResponse bad = JsonError(405, "method", req.method + " is not allowed here; use POST");
      bad.headers["Allow"] = "POST";
      return respond(std::move(bad));
    }
    auto it = Actions().find(action);
    if (it == Actions().end())
      return respond(JsonError(404, "action", "no such action \"" + SafeText(action, 64) + "\"; one of " + ActionList()));
    WithCaller(req, respond, [&](const v1::Caller& caller) {
      auto cmd = DecodeCommandJson(it->second, id, req.body, options.json);
      if (!cmd) return respond(BodyError(cmd.error()));
      SubmitCommand(req, caller, std::move(*cmd), respond);
    });
  }

  void WorkOrders(const HttpRequest& req, const Respond& respond) {
    WithCaller(req, respond, [&](const v1::Caller& caller) {
      if (!OnlyParams(req, {"department", "limit", "after"}, respond)) return;
      v1::Query q;
      auto* l = q.mutable_list();
      if (!Paging(req, *l, respond)) return;
      l->set_work_orders(true);
      if (auto it = req.query.find("department"); it != req.query.end()) l->set_department(it->second.substr(0, 64));
      const uint32_t limit = l->limit();
      RunQuery(req, caller, std::move(q), respond, [limit](const v1::QueryResult& r) {
        boost::json::array orders;
        for (const auto& c : r.cases()) {
          boost::json::object o;
          o["work_order_id"] = c.work_order_id();
          o["case_id"] = std::to_string(c.id());
          o["department"] = c.department();
          o["state"] = v1::CaseState_Name(c.state());
          o["category"] = c.category();
          o["description"] = c.description();
          o["grid"] = c.place().grid();
          o["address"] = c.place().address();
          o["urgency"] = v1::Urgency_Name(c.urgency());
          o["dispatched_at_ms"] = std::to_string(c.dispatched_at_ms());
          o["accept_deadline_ms"] = std::to_string(c.accept_deadline_ms());
          o["handle_deadline_ms"] = std::to_string(c.handle_deadline_ms());
          o["light"] = v1::TrafficLight_Name(c.light());
          orders.push_back(std::move(o));
        }
        boost::json::object out{{"work_orders", std::move(orders)}};
        if (r.cases_size() == static_cast<int>(limit) && limit > 0)
          out["next_after"] = std::to_string(r.cases(r.cases_size() - 1).id());
        return Json(200, boost::json::serialize(out));
      });
    });
  }

  void ShowStatus(const HttpRequest& req, const Respond& respond) {
    WithCaller(req, respond, [&](const v1::Caller& caller) {
      if (!OnlyParams(req, {}, respond)) return;
      v1::Query q;
      q.mutable_status();
      RunQuery(req, caller, std::move(q), respond,
               [](const v1::QueryResult& r) { return Json(200, MessageToJson(r.status())); });
    });
  }

  void DeadLetters(const HttpRequest& req, const Respond& respond, v1::DeadLetters::Action action) {
    WithCaller(req, respond, [&](const v1::Caller& caller) {
      v1::Query q;
      auto* d = q.mutable_dead_letters();
      if (action == v1::DeadLetters::LIST) {
        if (!OnlyParams(req, {"limit"}, respond)) return;
        if (auto it = req.query.find("limit"); it != req.query.end()) {
          uint64_t n = 0;
          if (!ParseId(it->second, n) || n > options.max_page_size)
            return respond(JsonError(400, "limit", "1.." + std::to_string(options.max_page_size), "max_page_size"));
          d->set_limit(static_cast<uint32_t>(n));
        }
      } else {
        if (casebus::Status st = JsonToMessage(req.body, *d, options.json); !st.ok())
          return respond(BodyError(st));
        if (d->action() != v1::DeadLetters::LIST && d->action() != action)
          return respond(JsonError(400, "action", "disagrees with the path"));
      }
      d->set_action(action);
      d->set_actor(caller.name());
      RunQuery(req, caller, std::move(q), respond, [action](const v1::QueryResult& r) {
        if (action != v1::DeadLetters::LIST) return Json(200, "{\"affected\":" + std::to_string(r.affected()) + "}");
        std::string body = "{\"dead_letters\":[";
        for (int i = 0; i < r.dead_letters_size(); ++i) body += (i ? "," : "") + MessageToJson(r.dead_letters(i));
        return Json(200, body + "]}");
      });
    });
  }

  void Reload(const HttpRequest& req, const Respond& respond) {
    WithCaller(req, respond, [&](const v1::Caller& caller) {
      if (auth::Authorize(caller, auth::Action::kReloadConfig, {}) != auth::Decision::kAllow) {
        gate.Denied(caller, req, "may not reload the config");
        return respond(CodeError(v1::PERMISSION_DENIED, "", std::string(auth::RoleName(caller.role())) + " " +
                                                                caller.name() + " may not reload the config"));
      }
      if (!options.reload) return respond(JsonError(501, "", "this server has no config file to reload"));
      casebus::Status st = options.reload();
      if (!st.ok()) return respond(JsonError(422, "config", st.message(), "config_invalid"));
      respond(Json(200, R"({"reloaded":true})"));
    });
  }
};

}  // namespace

void AddApiRoutes(HttpServer& http, Engine& engine, Gatekeeper& gate, ApiOptions options) {
  auto api = std::make_shared<Api>(Api{engine, gate, std::move(options)});
  http.Route("/v1/cases", {"GET", "POST"}, [api](const HttpRequest& req, Respond respond) {
    if (req.method == "POST") return api->Report(req, respond);
    api->ListCases(req, respond);
  });
  http.RoutePrefix("/v1/cases/", {"GET", "POST"},
                   [api](const HttpRequest& req, Respond respond) { api->OneCase(req, respond); });
  http.Route("/v1/workorders", {"GET"}, [api](const HttpRequest& req, Respond respond) { api->WorkOrders(req, respond); });
  http.Route("/v1/status", {"GET"}, [api](const HttpRequest& req, Respond respond) { api->ShowStatus(req, respond); });
  http.Route("/v1/deadletters", {"GET"}, [api](const HttpRequest& req, Respond respond) {
    api->DeadLetters(req, respond, v1::DeadLetters::LIST);
  });
  http.Route("/v1/deadletters:retry", {"POST"}, [api](const HttpRequest& req, Respond respond) {
    api->DeadLetters(req, respond, v1::DeadLetters::RETRY);
  });
  http.Route("/v1/deadletters:drop", {"POST"}, [api](const HttpRequest& req, Respond respond) {
    api->DeadLetters(req, respond, v1::DeadLetters::DROP);
  });
  http.Route("/v1/admin/reload", {"POST"}, [api](const HttpRequest& req, Respond respond) { api->Reload(req, respond); });
  http.Route("/v1/openapi.yaml", {"GET"}, [](const HttpRequest&, Respond respond) {
    HttpResponse r;
    r.content_type = "application/yaml";
    r.body = std::string(OpenApiYaml());
    respond(std::move(r));
  });
}

}  // namespace casebus::server

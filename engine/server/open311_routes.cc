#include "engine/server/open311_routes.h"

#include <boost/json.hpp>
#include <boost/url.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>

#include "engine/base/audit_chain.h"
#include "engine/base/time_format.h"
#include "engine/core/deduper.h"
#include "engine/query/report.h"

namespace casebus::server {
namespace {

constexpr const char* kBase = "/open311/v2/";
constexpr uint32_t kMaxRequests = 1000;   // per answer, as FixMyStreet's server
constexpr int kMaxIds = 100;              // service_request_id list
constexpr Millis kDefaultWindow = 90LL * 24 * 3600 * 1000;  // the spec's default: 90 days
constexpr double kMaxGridMeters = 2000;   // lat/long farther than this from every grid: outside

// One resource as ordered (field, value) pairs; a value that is nullopt is left out.
using Fields = std::vector<std::pair<std::string, std::string>>;

HttpResponse Render(bool xml, const std::string& list, const std::string& item, const std::vector<Fields>& items) {
  HttpResponse r;
  if (xml) {
    r.content_type = "text/xml; charset=utf-8";
    r.body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<" + list + ">";
    for (const auto& f : items) {
      r.body += "<" + item + ">";
      for (const auto& [k, v] : f) r.body += "<" + k + ">" + query::XmlEscape(v) + "</" + k + ">";
      r.body += "</" + item + ">";
    }
    r.body += "</" + list + ">\n";
  } else {
    boost::json::array a;
    for (const auto& f : items) {
      boost::json::object o;
      for (const auto& [k, v] : f) {
        if (k == "metadata") o[k] = v == "true";
        else if ((k == "lat" || k == "long") && !v.empty()) o[k] = std::strtod(v.c_str(), nullptr);
        else o[k] = v;
      }
      a.push_back(std::move(o));
    }
    r.body = boost::json::serialize(a);
  }
  return r;
}

// The spec's error format, in the request's format.
HttpResponse Error(bool xml, int status, const std::string& description) {
  HttpResponse r = Render(xml, "errors", "error", {{{"code", std::to_string(status)}, {"description", description}}});
  if (!xml) {  // the JSON form has code as a number
    boost::json::array a{boost::json::object{{"code", status}, {"description", description}}};
    r.body = boost::json::serialize(a);
  }
  r.status = status;
  return r;
}

// "services.json" → ("services", false); nullopt without .json / .xml.
std::optional<std::pair<std::string, bool>> SplitFormat(std::string_view rest) {
  for (auto [ext, xml] : {std::pair{".json", false}, std::pair{".xml", true}}) {
    const std::string_view e = ext;
    if (rest.size() > e.size() && rest.substr(rest.size() - e.size()) == e)
      return std::pair{std::string(rest.substr(0, rest.size() - e.size())), xml};
  }
  return std::nullopt;
}

// Form parameters of a POST (application/x-www-form-urlencoded), then the query string's for
// what the body lacks. nullopt: the body is not a form.
std::optional<std::map<std::string, std::string>> FormParams(const HttpRequest& req) {
  std::map<std::string, std::string> out;
  // name=value pairs joined by "&"; "+" is a space, %XX a byte. Brackets stay literal, as in
  // the spec's attribute[CODE]=value.
  auto decode = [](std::string_view s, std::string& into) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') {
        into.push_back(' ');
      } else if (s[i] == '%') {
        auto hex = [](char c) {
          return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        };
        if (i + 2 >= s.size()) return false;  // a "%" without two hex digits
        const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
        if (hi < 0 || lo < 0) return false;
        into.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      } else {
        into.push_back(s[i]);
      }
    }
    return true;
  };
  std::string_view body = req.body;
  const std::string& type = req.header("content-type");
  if (!body.empty() && type.rfind("application/x-www-form-urlencoded", 0) != 0) return std::nullopt;
  while (!body.empty()) {
    const size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string key, value;
    if (!decode(pair.substr(0, eq), key)) return std::nullopt;
    if (eq != std::string_view::npos && !decode(pair.substr(eq + 1), value)) return std::nullopt;
    out[std::move(key)] = std::move(value);
  }
  for (const auto& [k, v] : req.query) out.emplace(k, v);
  return out;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// What Open311 shows of the city config: rebuilt when a reload replaces the config, and held
// by each request (and its callbacks on the engine's thread) for its whole life.
struct Catalog {
  explicit Catalog(std::shared_ptr<const v1::CityConfig> cfg) : config(std::move(cfg)) {
    std::map<std::string, std::string> names;
    for (const auto& c : config->categories()) names[c.code()] = c.name();
    for (const auto& c : config->categories()) {
      category_names[c.code()] = c.name();
      if (c.parent().empty()) continue;  // a class, not a service one can request
      services.push_back(&c);
      group[c.code()] = names.count(c.parent()) ? names[c.parent()] : c.parent();
    }
    for (const auto& d : config->departments()) department_names[d.id()] = d.name();
    offset = config->calendar().utc_offset_minutes();
  }
  std::shared_ptr<const v1::CityConfig> config;
  std::vector<const v1::Category*> services;
  std::map<std::string, std::string> group, category_names, department_names;
  int offset = 0;
};

class Open311 {
 public:
  Open311(Engine& engine, Gatekeeper& gate) : engine_(engine), gate_(gate) {}

  // The catalog of the config in force.
  std::shared_ptr<const Catalog> Current() {
    auto config = engine_.config();
    std::lock_guard lock(catalog_mu_);
    if (!catalog_ || catalog_->config != config) catalog_ = std::make_shared<const Catalog>(std::move(config));
    return catalog_;
  }

  void Handle(const HttpRequest& req, HttpServer::Respond respond) {
    const std::string rest = req.path.substr(std::string(kBase).size());
    auto split = SplitFormat(rest);
    if (!split) return respond(Error(false, 404, "unknown resource; Open311 resources end in .json or .xml"));
    const auto& [name, xml] = *split;
    if (name == "services") return respond(Render(xml, "services", "service", ServiceList()));
    if (name.rfind("services/", 0) == 0) return respond(Definition(name.substr(9), xml));
    if (name == "requests") {
      if (req.method == "POST") return Create(req, xml, std::move(respond));
      return Requests(req, xml, std::move(respond));
    }
    if (name == "servicerequestupdates") {
      if (req.method != "POST") {
        HttpResponse r = Error(xml, 405, "servicerequestupdates takes POST: a back office pushing an update");
        r.headers["Allow"] = "POST";
        return respond(std::move(r));
      }
      return Update(req, xml, std::move(respond));
    }
    if (name.rfind("requests/", 0) == 0) return OneRequest(name.substr(9), xml, std::move(respond));
    respond(Error(xml, 404, "unknown resource " + name.substr(0, 100)));
  }

 private:
  std::vector<Fields> ServiceList() {
    auto cat = Current();
    std::vector<Fields> out;
    for (const auto* c : cat->services) {
      out.push_back({{"service_code", c->code()},
                     {"service_name", c->name()},
                     {"description", c->name()},
                     {"metadata", c->conditions_size() > 0 ? "true" : "false"},
                     {"type", "realtime"},
                     {"keywords", ""},
                     {"group", cat->group.at(c->code())}});
    }
    return out;
  }

  // A service definition: its 立案条件 (conditions) as one single-value list attribute.
  HttpResponse Definition(const std::string& code, bool xml) {
    auto cat = Current();
    const v1::Category* c = nullptr;
    for (const auto* s : cat->services)
      if (s->code() == code) c = s;
    if (!c) return Error(xml, 404, "no service_code " + code.substr(0, 64));
    if (xml) {
      HttpResponse r;
      r.content_type = "text/xml; charset=utf-8";
      r.body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<service_definition><service_code>" + query::XmlEscape(code) +
               "</service_code><attributes>";
      if (c->conditions_size() > 0) {
        r.body += "<attribute><variable>true</variable><code>condition</code><datatype>singlevaluelist</datatype>"
                  "<required>false</required><datatype_description></datatype_description><order>1</order>"
                  "<description>立案条件 condition</description><values>";
        for (const auto& k : c->conditions())
          r.body += "<value><key>" + query::XmlEscape(k.id()) + "</key><name>" + query::XmlEscape(k.name()) + "</name></value>";
        r.body += "</values></attribute>";
      }
      r.body += "</attributes></service_definition>\n";
      return r;
    }
    boost::json::array attributes;
    if (c->conditions_size() > 0) {
      boost::json::array values;
      for (const auto& k : c->conditions()) values.push_back(boost::json::object{{"key", k.id()}, {"name", k.name()}});
      attributes.push_back(boost::json::object{{"variable", true}, {"code", "condition"}, {"datatype", "singlevaluelist"},
                                               {"required", false}, {"datatype_description", ""}, {"order", 1},
                                               {"description", "立案条件 condition"}, {"values", values}});
    }
    HttpResponse r;
    r.body = boost::json::serialize(boost::json::object{{"service_code", code}, {"attributes", attributes}});
    return r;
  }

  static Fields RequestFields(const Catalog& catalog, const v1::Case& c) {
    const bool open = core::IsOpen(c.state()) && c.state() != v1::MERGED;
    std::string notes = v1::CaseState_Name(c.state());
    for (char& ch : notes) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (c.state() == v1::MERGED) notes = "duplicate of " + std::to_string(c.merged_into());
    Millis updated = 0;
    for (Millis t : {c.reported_at_ms(), c.registered_at_ms(), c.dispatched_at_ms(), c.accepted_at_ms(),
                     c.resolved_at_ms(), c.closed_at_ms()})
      updated = std::max(updated, t);
    auto dept = catalog.department_names.find(c.department());
    auto cat = catalog.category_names.find(c.category());
    Fields f = {{"service_request_id", std::to_string(c.id())},
                {"status", open ? "open" : "closed"},
                {"status_notes", notes},
                {"service_name", cat == catalog.category_names.end() ? c.category() : cat->second},
                {"service_code", c.category()},
                {"description", c.description()},
                {"agency_responsible", dept == catalog.department_names.end() ? c.department() : dept->second},
                {"service_notice", ""},
                {"requested_datetime", FormatIso(c.reported_at_ms(), catalog.offset)},
                {"updated_datetime", FormatIso(updated, catalog.offset)},
                {"expected_datetime", c.handle_deadline_ms() > 0 ? FormatIso(c.handle_deadline_ms(), catalog.offset) : ""},
                {"address", c.place().address()},
                {"address_id", c.place().grid()},
                {"zipcode", ""}};
    if (c.place().has_coordinates()) {
      char lat[32], lon[32];
      std::snprintf(lat, sizeof lat, "%.6f", c.place().lat());
      std::snprintf(lon, sizeof lon, "%.6f", c.place().lon());
      f.emplace_back("lat", lat);
      f.emplace_back("long", lon);
    }
    f.emplace_back("media_url", "");
    return f;
  }

  void OneRequest(const std::string& id_text, bool xml, HttpServer::Respond respond) {
    char* end = nullptr;
    const unsigned long long id = std::strtoull(id_text.c_str(), &end, 10);
    if (id_text.empty() || *end != '\0' || id == 0 || id_text.size() > 19)
      return respond(Error(xml, 404, "no service request " + id_text.substr(0, 32)));
    v1::Query q;
    q.mutable_show()->set_case_id(id);
    engine_.Query(std::move(q), [cat = Current(), xml, respond](v1::QueryResult r) {
      if (r.code() == v1::NOT_FOUND) return respond(Error(xml, 404, r.message()));
      if (r.code() != v1::OK) return respond(Error(xml, 503, r.message()));
      respond(Render(xml, "service_requests", "request", {RequestFields(*cat, r.found())}));
    });
  }

  void Requests(const HttpRequest& req, bool xml, HttpServer::Respond respond) {
    auto param = [&](const char* k) {
      auto it = req.query.find(k);
      return it == req.query.end() ? std::string() : it->second;
    };
    if (const std::string ids = param("service_request_id"); !ids.empty()) {
      std::vector<uint64_t> list;
      size_t start = 0;
      while (start <= ids.size()) {
        const size_t comma = std::min(ids.find(',', start), ids.size());
        const std::string one = ids.substr(start, comma - start);
        char* end = nullptr;
        const unsigned long long id = std::strtoull(one.c_str(), &end, 10);
        if (one.empty() || *end != '\0' || id == 0 || one.size() > 19)
          return respond(Error(xml, 400, "service_request_id: \"" + one.substr(0, 32) + "\" is not a request id"));
        list.push_back(id);
        start = comma + 1;
      }
      if (list.size() > kMaxIds)
        return respond(Error(xml, 400, "service_request_id: at most " + std::to_string(kMaxIds) + " ids"));
      return Gather(std::move(list), xml, std::move(respond));
    }
    v1::Query q;
    auto* l = q.mutable_list();
    l->set_limit(kMaxRequests);
    l->set_category(param("service_code"));
    const std::string status = param("status");
    if (status == "open") l->set_open_only(true);
    else if (status == "closed") l->set_closed_only(true);
    else if (!status.empty()) return respond(Error(xml, 400, "status: must be open or closed"));
    Millis from = 0, to = 0;
    for (auto [key, into] : {std::pair{"start_date", &from}, std::pair{"end_date", &to}}) {
      const std::string v = param(key);
      if (v.empty()) continue;
      auto t = ParseIso(v);
      if (!t) return respond(Error(xml, 400, std::string(key) + ": not a W3C date-time (e.g. 2026-11-02T09:00:00+08:00)"));
      *into = *t;
    }
    if (from > 0 && to > 0 && from > to) return respond(Error(xml, 400, "start_date: after end_date"));
    // The spec's default window: the 90 days before end_date (or now).
    if (from == 0) from = (to > 0 ? to : NowMs()) - kDefaultWindow;
    l->set_reported_from_ms(from);
    if (to > 0) l->set_reported_to_ms(to + 1);
    engine_.Query(std::move(q), [cat = Current(), xml, respond](v1::QueryResult r) {
      if (r.code() != v1::OK) return respond(Error(xml, 503, r.message()));
      std::vector<Fields> items;
      for (const auto& c : r.cases()) items.push_back(RequestFields(*cat, c));
      respond(Render(xml, "service_requests", "request", items));
    });
  }

  // Several ids: one show query each, answered together in the order asked; unknown ids left out.
  void Gather(std::vector<uint64_t> ids, bool xml, HttpServer::Respond respond) {
    struct State {
      std::mutex mu;
      std::vector<std::optional<v1::Case>> found;
      size_t left;
    };
    auto st = std::make_shared<State>();
    st->found.resize(ids.size());
    st->left = ids.size();
    for (size_t i = 0; i < ids.size(); ++i) {
      v1::Query q;
      q.mutable_show()->set_case_id(ids[i]);
      engine_.Query(std::move(q), [cat = Current(), st, i, xml, respond](v1::QueryResult r) {
        std::unique_lock lock(st->mu);
        if (r.code() == v1::OK) st->found[i] = std::move(*r.mutable_found());
        if (--st->left > 0) return;
        lock.unlock();
        std::vector<Fields> items;
        for (const auto& c : st->found)
          if (c) items.push_back(RequestFields(*cat, *c));
        respond(Render(xml, "service_requests", "request", items));
      });
    }
  }

  // The caller of a POST's api_key, or the refusal (in the spec's error format) already sent.
  std::optional<v1::Caller> Authenticate(const HttpRequest& req, const std::map<std::string, std::string>& params,
                                         bool xml, const HttpServer::Respond& respond) {
    auto key = params.find("api_key");
    if (key == params.end() || key->second.empty()) {
      respond(Error(xml, 401, "api_key: required to create requests or push updates"));
      return std::nullopt;
    }
    auto who = gate_.AuthenticateToken(req, key->second, "api_key");
    if (auto* refusal = std::get_if<HttpResponse>(&who)) {
      HttpResponse r = Error(xml, refusal->status,
                             refusal->status == 429 ? "api_key: too many requests; retry later"
                                                    : "api_key: not a valid key");
      r.headers = refusal->headers;
      respond(std::move(r));
      return std::nullopt;
    }
    return std::get<v1::Caller>(who);
  }

  // Submits `cmd` for `caller`; answers with make(result) or the spec's error.
  // retry_is_ok: the request_id names one update whatever command it became, so a reuse
  // (ALREADY_EXISTS) is a retry of an update already applied.
  template <typename Make>
  void Submit(const HttpRequest& req, v1::Command cmd, const v1::Caller& caller, bool xml,
              const HttpServer::Respond& respond, Make make, bool retry_is_ok = false) {
    cmd.set_actor(caller.name());
    *cmd.mutable_caller() = caller;
    v1::Request request;
    request.set_version(1);
    *request.add_commands() = std::move(cmd);
    auto done = [this, req, caller, xml, respond, make, retry_is_ok](v1::Reply&& reply) {
      const v1::CommandResult& r = reply.results_size() == 1 ? reply.results(0) : reply.error();
      if (r.code() == v1::ALREADY_EXISTS && retry_is_ok) return respond(make(r));
      if (r.code() != v1::OK) {
        if (r.code() == v1::PERMISSION_DENIED || r.code() == v1::NOT_FOUND) gate_.Denied(caller, req, r.message());
        const int status = r.code() == v1::INVALID_ARGUMENT ? 400 : HttpStatusOf(r.code());
        return respond(Error(xml, status, (r.field().empty() ? "" : r.field() + ": ") + r.message()));
      }
      respond(make(r));
    };
    if (!engine_.Submit(std::move(request), done)) respond(Error(xml, 503, "the engine is busy; retry later"));
  }

  // The grid nearest (lat, lon), if within kMaxGridMeters.
  static const v1::Grid* NearestGrid(const v1::CityConfig& city, double lat, double lon) {
    const v1::Grid* best = nullptr;
    double best_m = kMaxGridMeters;
    constexpr double kEarth = 6371000, kRad = M_PI / 180;
    for (const auto& g : city.grids()) {
      const double x = (g.lon() - lon) * kRad * std::cos((g.lat() + lat) / 2 * kRad);
      const double y = (g.lat() - lat) * kRad;
      const double m = std::sqrt(x * x + y * y) * kEarth;
      if (m <= best_m) best = &g, best_m = m;
    }
    return best;
  }

  // POST requests: a citizen's report.
  void Create(const HttpRequest& req, bool xml, HttpServer::Respond respond) {
    auto params = FormParams(req);
    if (!params) return respond(Error(xml, 400, "the body must be form-encoded (application/x-www-form-urlencoded)"));
    auto caller = Authenticate(req, *params, xml, respond);
    if (!caller) return;
    auto p = [&](const char* k) {
      auto it = params->find(k);
      return it == params->end() ? std::string() : it->second;
    };
    const std::string code = p("service_code");
    if (code.empty()) return respond(Error(xml, 400, "service_code: required"));
    auto catalog = Current();
    bool known = false;
    for (const auto* s : catalog->services) known = known || s->code() == code;
    if (!known) return respond(Error(xml, 400, "service_code: \"" + code.substr(0, 64) + "\" is not a service"));
    v1::Command cmd;
    auto* r = cmd.mutable_report();
    r->set_category(code);
    r->set_source(v1::OPEN311);
    r->set_description(p("description"));
    r->set_condition(p("attribute[condition]"));
    auto* place = r->mutable_place();
    place->set_address(p("address_string"));
    const std::string lat = p("lat"), lon = p("long"), address_id = p("address_id");
    if (!lat.empty() || !lon.empty()) {
      char *e1 = nullptr, *e2 = nullptr;
      const double la = std::strtod(lat.c_str(), &e1), lo = std::strtod(lon.c_str(), &e2);
      if (lat.empty() || lon.empty() || *e1 || *e2 || !std::isfinite(la) || !std::isfinite(lo) || la < -90 ||
          la > 90 || lo < -180 || lo > 180)
        return respond(Error(xml, 400, "lat/long: both required, degrees (-90..90, -180..180)"));
      place->set_lat(la);
      place->set_lon(lo);
      place->set_has_coordinates(true);
      if (address_id.empty()) {
        const v1::Grid* g = NearestGrid(*catalog->config, la, lo);
        if (!g) return respond(Error(xml, 400, "lat/long: not within 2 km of any grid of the city"));
        place->set_grid(g->code());
      }
    }
    if (!address_id.empty()) place->set_grid(address_id);
    if (place->grid().empty())
      return respond(Error(xml, 400, "location: lat/long or address_id (a grid code) is required; "
                                     "address_string alone cannot be placed"));
    std::string name = p("first_name");
    if (!p("last_name").empty()) name += (name.empty() ? "" : " ") + p("last_name");
    r->mutable_reporter()->set_name(name);
    r->mutable_reporter()->set_contact(!p("email").empty() ? p("email") : p("phone"));
    r->mutable_reporter()->set_source(v1::OPEN311);
    // A retry of the same POST with the same key is the same request.
    cmd.set_request_id("o311-" + Hex(AuditLink(0, caller->name() + "\n" + req.body)).substr(0, 40));
    Submit(req, std::move(cmd), *caller, xml, respond, [xml](const v1::CommandResult& res) {
      HttpResponse out = Render(xml, "service_requests", "request",
                                {{{"service_request_id", std::to_string(res.case_id())},
                                  {"service_notice", res.merged() ? "joined an open request for the same problem" : ""},
                                  {"account_id", ""}}});
      out.status = res.duplicate() || res.merged() ? 200 : 201;
      return out;
    });
  }

  // POST servicerequestupdates: a back office's update of one of its requests.
  void Update(const HttpRequest& req, bool xml, HttpServer::Respond respond) {
    auto params = FormParams(req);
    if (!params) return respond(Error(xml, 400, "the body must be form-encoded (application/x-www-form-urlencoded)"));
    auto caller = Authenticate(req, *params, xml, respond);
    if (!caller) return;
    auto p = [&](const char* k) {
      auto it = params->find(k);
      return it == params->end() ? std::string() : it->second;
    };
    char* end = nullptr;
    const std::string id_text = p("service_request_id");
    const unsigned long long id = std::strtoull(id_text.c_str(), &end, 10);
    if (id_text.empty() || *end || id == 0 || id_text.size() > 19)
      return respond(Error(xml, 400, "service_request_id: required, a request id"));
    const std::string update_id = p("update_id");
    if (update_id.empty() || update_id.size() > 64) return respond(Error(xml, 400, "update_id: required, 1..64 bytes"));
    const std::string status = Upper(p("status"));
    if (status.empty()) return respond(Error(xml, 400, "status: required (e.g. IN_PROGRESS, FIXED, NOT_RESPONSIBLE)"));
    const std::string text = p("description").empty() ? "status " + status : p("description");
    const std::string media = p("media_url");
    // Read the case first (as the caller: a foreign id answers 404), to turn the status into
    // the step the case can take.
    v1::Query q;
    q.mutable_show()->set_case_id(id);
    *q.mutable_caller() = *caller;
    engine_.Query(std::move(q), [this, req, xml, respond, caller = *caller, id, update_id, status, text,
                                 media](v1::QueryResult found) {
      if (found.code() != v1::OK) {
        gate_.Denied(caller, req, found.message());
        return respond(Error(xml, HttpStatusOf(found.code()), found.message()));
      }
      v1::Command cmd;
      // The update's identity: its id and content. The command it becomes depends on the case's
      // state, so a retry after the first applied may map to another command under this id.
      cmd.set_request_id("o311u-" + caller.name() + "-" + update_id + "-" +
                         Hex(AuditLink(0, status + "\n" + text + "\n" + media)).substr(0, 16));
      const v1::CaseState state = found.found().state();
      if ((status == "IN_PROGRESS" || status == "ACTION_SCHEDULED" || status == "INVESTIGATING") &&
          state == v1::DISPATCHED) {
        cmd.mutable_accept()->set_case_id(id);
      } else if (status == "FIXED" || status == "CLOSED") {
        cmd.mutable_resolve()->set_case_id(id);
        cmd.mutable_resolve()->add_evidence(media.empty() ? "open311-update:" + update_id : media.substr(0, 512));
        cmd.mutable_resolve()->set_note(text);
      } else if (status == "NOT_RESPONSIBLE" || status == "INTERNAL_REFERRAL") {
        cmd.mutable_return_()->set_case_id(id);
        cmd.mutable_return_()->set_reason(text);
      } else {
        cmd.mutable_note()->set_case_id(id);
        cmd.mutable_note()->set_text(text);
      }
      const std::string request_id = cmd.request_id();
      Submit(
          req, std::move(cmd), caller, xml, respond,
          [xml, request_id](const v1::CommandResult&) {
            return Render(xml, "service_request_updates", "request_update", {{{"update_id", request_id}}});
          },
          /*retry_is_ok=*/true);
    });
  }

  Millis NowMs() const { return engine_.now(); }

  Engine& engine_;
  Gatekeeper& gate_;
  std::mutex catalog_mu_;
  std::shared_ptr<const Catalog> catalog_;  // guarded by catalog_mu_
};

}  // namespace

void AddOpen311Routes(HttpServer& http, Engine& engine, Gatekeeper& gate) {
  auto open311 = std::make_shared<Open311>(engine, gate);
  http.RoutePrefix(kBase, {"GET", "POST"}, [open311](const HttpRequest& req, HttpServer::Respond respond) {
    open311->Handle(req, std::move(respond));
  });
}

}  // namespace casebus::server

#include "engine/server/open311_routes.h"

#include <boost/json.hpp>
#include <map>
#include <memory>
#include <mutex>

#include "engine/base/time_format.h"
#include "engine/core/deduper.h"
#include "engine/query/report.h"

namespace casebus::server {
namespace {

constexpr const char* kBase = "/open311/v2/";
constexpr uint32_t kMaxRequests = 1000;   // per answer, as FixMyStreet's server
constexpr int kMaxIds = 100;              // service_request_id list
constexpr Millis kDefaultWindow = 90LL * 24 * 3600 * 1000;  // the spec's default: 90 days

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

class Open311 {
 public:
  explicit Open311(Engine& engine) : engine_(engine) {
    const auto& cfg = engine.config();
    std::map<std::string, std::string> names;
    for (const auto& c : cfg.categories()) names[c.code()] = c.name();
    for (const auto& c : cfg.categories()) {
      category_names_[c.code()] = c.name();
      if (c.parent().empty()) continue;  // a class, not a service one can request
      services_.push_back(&c);
      group_[c.code()] = names.count(c.parent()) ? names[c.parent()] : c.parent();
    }
    for (const auto& d : cfg.departments()) department_names_[d.id()] = d.name();
    offset_ = cfg.calendar().utc_offset_minutes();
  }

  void Handle(const HttpRequest& req, HttpServer::Respond respond) {
    const std::string rest = req.path.substr(std::string(kBase).size());
    auto split = SplitFormat(rest);
    if (!split) return respond(Error(false, 404, "unknown resource; Open311 resources end in .json or .xml"));
    const auto& [name, xml] = *split;
    if (name == "services") return respond(Render(xml, "services", "service", ServiceList()));
    if (name.rfind("services/", 0) == 0) return respond(Definition(name.substr(9), xml));
    if (name == "requests") {
      if (req.method == "POST")
        return respond(Error(xml, 403, "creating requests needs an api_key; this server does not accept POST yet"));
      return Requests(req, xml, std::move(respond));
    }
    if (name.rfind("requests/", 0) == 0) return OneRequest(name.substr(9), xml, std::move(respond));
    respond(Error(xml, 404, "unknown resource " + name.substr(0, 100)));
  }

 private:
  std::vector<Fields> ServiceList() const {
    std::vector<Fields> out;
    for (const auto* c : services_) {
      out.push_back({{"service_code", c->code()},
                     {"service_name", c->name()},
                     {"description", c->name()},
                     {"metadata", c->conditions_size() > 0 ? "true" : "false"},
                     {"type", "realtime"},
                     {"keywords", ""},
                     {"group", group_.at(c->code())}});
    }
    return out;
  }

  // A service definition: its 立案条件 (conditions) as one single-value list attribute.
  HttpResponse Definition(const std::string& code, bool xml) const {
    const v1::Category* c = nullptr;
    for (const auto* s : services_)
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

  Fields RequestFields(const v1::Case& c) const {
    const bool open = core::IsOpen(c.state()) && c.state() != v1::MERGED;
    std::string notes = v1::CaseState_Name(c.state());
    for (char& ch : notes) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (c.state() == v1::MERGED) notes = "duplicate of " + std::to_string(c.merged_into());
    Millis updated = 0;
    for (Millis t : {c.reported_at_ms(), c.registered_at_ms(), c.dispatched_at_ms(), c.accepted_at_ms(),
                     c.resolved_at_ms(), c.closed_at_ms()})
      updated = std::max(updated, t);
    auto dept = department_names_.find(c.department());
    auto cat = category_names_.find(c.category());
    Fields f = {{"service_request_id", std::to_string(c.id())},
                {"status", open ? "open" : "closed"},
                {"status_notes", notes},
                {"service_name", cat == category_names_.end() ? c.category() : cat->second},
                {"service_code", c.category()},
                {"description", c.description()},
                {"agency_responsible", dept == department_names_.end() ? c.department() : dept->second},
                {"service_notice", ""},
                {"requested_datetime", FormatIso(c.reported_at_ms(), offset_)},
                {"updated_datetime", FormatIso(updated, offset_)},
                {"expected_datetime", c.handle_deadline_ms() > 0 ? FormatIso(c.handle_deadline_ms(), offset_) : ""},
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
    engine_.Query(std::move(q), [this, xml, respond](v1::QueryResult r) {
      if (r.code() == v1::NOT_FOUND) return respond(Error(xml, 404, r.message()));
      if (r.code() != v1::OK) return respond(Error(xml, 503, r.message()));
      respond(Render(xml, "service_requests", "request", {RequestFields(r.found())}));
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
    engine_.Query(std::move(q), [this, xml, respond](v1::QueryResult r) {
      if (r.code() != v1::OK) return respond(Error(xml, 503, r.message()));
      std::vector<Fields> items;
      for (const auto& c : r.cases()) items.push_back(RequestFields(c));
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
      engine_.Query(std::move(q), [this, st, i, xml, respond](v1::QueryResult r) {
        std::unique_lock lock(st->mu);
        if (r.code() == v1::OK) st->found[i] = std::move(*r.mutable_found());
        if (--st->left > 0) return;
        lock.unlock();
        std::vector<Fields> items;
        for (const auto& c : st->found)
          if (c) items.push_back(RequestFields(*c));
        respond(Render(xml, "service_requests", "request", items));
      });
    }
  }

  Millis NowMs() const { return engine_.now(); }

  Engine& engine_;
  std::vector<const v1::Category*> services_;
  std::map<std::string, std::string> group_, category_names_, department_names_;
  int offset_ = 0;
};

}  // namespace

void AddOpen311Routes(HttpServer& http, Engine& engine) {
  auto open311 = std::make_shared<Open311>(engine);
  http.RoutePrefix(kBase, {"GET", "POST"}, [open311](const HttpRequest& req, HttpServer::Respond respond) {
    open311->Handle(req, std::move(respond));
  });
}

}  // namespace casebus::server

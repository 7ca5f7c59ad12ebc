#include "adapters/open311/georeport.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <charconv>
#include <cstdio>

namespace casebus::open311 {
namespace {

namespace json = boost::json;

bool Unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string Escape(std::string_view s, bool space_as_plus) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (Unreserved(c)) {
      out += static_cast<char>(c);
    } else if (c == ' ' && space_as_plus) {
      out += '+';
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

std::string Number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : "0";
}

// The answer's array, whose first element must be an object.
Result<const json::object*> FirstObject(std::string_view body, json::value& holder) {
  boost::system::error_code ec;
  holder = json::parse(body, ec);
  if (ec) return Err(Status::InvalidArgument("the body is not JSON (" + ec.message() + ")"));
  const json::array* array = holder.if_array();
  if (array == nullptr) return Err(Status::InvalidArgument("the body is not a JSON array"));
  if (array->empty()) return Err(Status::InvalidArgument("the body is an empty array"));
  const json::object* first = array->front().if_object();
  if (first == nullptr)
    return Err(Status::InvalidArgument("the array's first element is not an object"));
  return first;
}

// A string or integer field as text; nullopt when absent or null; an error for other types.
Result<std::optional<std::string>> IdField(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (const auto* s = v->if_string()) return std::optional<std::string>(std::string(*s));
  if (const auto* i = v->if_int64()) return std::optional<std::string>(std::to_string(*i));
  if (const auto* u = v->if_uint64()) return std::optional<std::string>(std::to_string(*u));
  return Err(Status::InvalidArgument(std::string(name) + " is neither a string nor an integer"));
}

// A text field: "" when absent or null; an error for a non-string.
Result<std::string> TextField(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::string();
  if (const auto* s = v->if_string()) return std::string(*s);
  return Err(Status::InvalidArgument(std::string(name) + " is not a string"));
}

}  // namespace

std::string FormEscape(std::string_view s) { return Escape(s, true); }
std::string PathEscape(std::string_view s) { return Escape(s, false); }

bool UsableRemoteId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

std::string ServiceRequestForm(const v1::WorkOrder& order, const v1::Open311Adapter& config,
                               const std::string& api_key) {
  std::string service_code = order.category();
  for (const auto& sc : config.service_codes())
    if (sc.category() == order.category()) service_code = sc.service_code();
  std::string form;
  auto add = [&form](std::string_view name, std::string_view value) {
    if (!form.empty()) form += '&';
    form += FormEscape(name);
    form += '=';
    form += FormEscape(value);
  };
  add("api_key", api_key);
  if (!config.jurisdiction_id().empty()) add("jurisdiction_id", config.jurisdiction_id());
  add("service_code", service_code);
  const v1::Place& place = order.place();
  if (place.has_coordinates()) {
    add("lat", Number(place.lat()));
    add("long", Number(place.lon()));
  }
  if (!place.address().empty())
    add("address_string", place.address());
  else if (!place.has_coordinates())
    add("address_string", "grid " + place.grid());
  std::string description = order.description();
  if (!description.empty()) description += "\n\n";
  add("description", description + "casebus work order " + order.id());
  add("attribute[casebus_work_order]", order.id());
  return form;
}

Result<PostAnswer> ParsePostAnswer(std::string_view body) {
  json::value holder;
  auto first = FirstObject(body, holder);
  if (!first) return Err(first.error());
  auto id = IdField(**first, "service_request_id");
  if (!id) return Err(id.error());
  auto token = IdField(**first, "token");
  if (!token) return Err(token.error());
  PostAnswer a;
  a.service_request_id = id->value_or("");
  a.token = token->value_or("");
  if (a.service_request_id.empty() && a.token.empty())
    return Err(Status::InvalidArgument("the answer has neither a service_request_id nor a token"));
  if (!a.service_request_id.empty() && !UsableRemoteId(a.service_request_id))
    return Err(Status::InvalidArgument(
        "the service_request_id is empty, over 128 bytes or has control characters"));
  if (a.service_request_id.empty() && !UsableRemoteId(a.token))
    return Err(Status::InvalidArgument("the token is over 128 bytes or has control characters"));
  auto notice = TextField(**first, "service_notice");
  a.service_notice = notice ? *notice : "";
  return a;
}

std::optional<std::string> ParseErrorDescription(std::string_view body) {
  json::value holder;
  auto first = FirstObject(body, holder);
  if (!first) return std::nullopt;
  auto description = TextField(**first, "description");
  if (!description || description->empty()) return std::nullopt;
  return *description;
}

Result<std::string> ParseTokenAnswer(std::string_view body) {
  json::value holder;
  auto first = FirstObject(body, holder);
  if (!first) return Err(first.error());
  auto id = IdField(**first, "service_request_id");
  if (!id) return Err(id.error());
  if (!id->has_value() || (*id)->empty()) return std::string();
  if (!UsableRemoteId(**id))
    return Err(Status::InvalidArgument(
        "the service_request_id is over 128 bytes or has control characters"));
  return **id;
}

Result<RemoteStatus> ParseRequestStatus(std::string_view body,
                                        const std::string& service_request_id) {
  json::value holder;
  auto first = FirstObject(body, holder);
  if (!first) return Err(first.error());
  const json::object& o = **first;
  auto id = IdField(o, "service_request_id");
  if (!id) return Err(id.error());
  if (id->has_value() && **id != service_request_id)
    return Err(Status::InvalidArgument("the answer is about request " + **id + ", not " +
                                       service_request_id));
  auto status = TextField(o, "status");
  if (!status) return Err(status.error());
  std::string lower;
  for (unsigned char c : *status) lower += static_cast<char>(std::tolower(c));
  if (lower != "open" && lower != "closed")
    return Err(Status::InvalidArgument(
        "status is " +
        (status->empty() ? std::string("missing") : "\"" + status->substr(0, 64) + "\"") +
        ", neither open nor closed"));
  RemoteStatus r;
  r.closed = lower == "closed";
  for (auto [name, out] : {std::pair{"status_notes", &r.status_notes},
                           std::pair{"agency_responsible", &r.agency_responsible},
                           std::pair{"updated_datetime", &r.updated_datetime}}) {
    auto text = TextField(o, name);
    if (!text) return Err(text.error());
    *out = std::move(*text);
  }
  return r;
}

}  // namespace casebus::open311

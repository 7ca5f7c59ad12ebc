#include "engine/server/json_api.h"

#include <google/protobuf/util/json_util.h>

#include <boost/json/basic_parser_impl.hpp>

#include <set>
#include <vector>

namespace casebus::server {
namespace {

namespace json = boost::json;

// The SAX handler of the limit check: counts, measures and remembers each open object's keys;
// builds no value. Every callback returns false with ec set to stop at the first violation.
struct LimitHandler {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  const JsonLimits& limits;
  std::string problem;  // set with the failing callback
  size_t elements = 0;
  size_t part = 0;      // bytes of the string or key being read
  std::string key;      // the key being read
  std::vector<std::set<std::string>> keys;  // one set per open object

  bool Fail(json::error_code& ec, std::string why) {
    problem = std::move(why);
    ec = json::make_error_code(json::error::extra_data);
    return false;
  }
  bool Count(json::error_code& ec) {
    if (++elements > limits.max_elements)
      return Fail(ec, "max_json_elements: more than " + std::to_string(limits.max_elements) + " values");
    return true;
  }
  bool Measure(size_t n, json::error_code& ec) {
    if (n > limits.max_string_bytes)
      return Fail(ec, "max_json_string_bytes: a string longer than " + std::to_string(limits.max_string_bytes) +
                          " bytes");
    return true;
  }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code& ec) {
    keys.emplace_back();
    return Count(ec);
  }
  bool on_object_end(std::size_t, json::error_code&) {
    keys.pop_back();
    return true;
  }
  bool on_array_begin(json::error_code& ec) { return Count(ec); }
  bool on_array_end(std::size_t, json::error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t n, json::error_code& ec) {
    if (!Measure(n, ec)) return false;
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t n, json::error_code& ec) {
    if (!Measure(n, ec)) return false;
    key.append(s.data(), s.size());
    const bool fresh = keys.back().insert(std::move(key)).second;
    key.clear();
    if (!fresh) return Fail(ec, "duplicate key in an object");
    return Count(ec);
  }
  bool on_string_part(json::string_view, std::size_t n, json::error_code& ec) { return Measure(n, ec); }
  bool on_string(json::string_view, std::size_t n, json::error_code& ec) {
    return Measure(n, ec) && Count(ec);
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code& ec) { return Count(ec); }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code& ec) { return Count(ec); }
  bool on_double(double, json::string_view, json::error_code& ec) { return Count(ec); }
  bool on_bool(bool, json::error_code& ec) { return Count(ec); }
  bool on_null(json::error_code& ec) { return Count(ec); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

}  // namespace

namespace {
// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool ValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += len;
  }
  return true;
}
}  // namespace

Status CheckJsonBody(std::string_view body, const JsonLimits& limits) {
  if (!ValidUtf8(body)) return Status::InvalidArgument("not valid UTF-8 (RFC 8259 JSON must be)", "body");
  json::parse_options opt;
  opt.max_depth = static_cast<std::size_t>(limits.max_depth);
  json::basic_parser<LimitHandler> parser(opt, LimitHandler{limits, {}, 0, 0, {}, {}});
  json::error_code ec;
  const size_t used = parser.write_some(false, body.data(), body.size(), ec);
  // write_some stops after the first complete value: more than whitespace after it is not
  // one JSON value (found by tests/fuzz/http_request_fuzz.cc).
  if (!ec && used < body.size()) ec = json::make_error_code(json::error::extra_data);
  if (!ec) return Status::Ok();
  if (!parser.handler().problem.empty()) return Status::InvalidArgument(parser.handler().problem, "body");
  if (ec == json::error::too_deep)
    return Status::InvalidArgument("max_json_depth: JSON nested deeper than " + std::to_string(limits.max_depth) +
                                       " levels",
                                   "body");
  return Status::InvalidArgument("not valid JSON: " + ec.message(), "body");
}

Status JsonToMessage(std::string_view body, google::protobuf::Message& message, const JsonLimits& limits) {
  std::string_view text = body;
  while (!text.empty() && (text.front() == ' ' || text.front() == '\n' || text.front() == '\r' || text.front() == '\t'))
    text.remove_prefix(1);
  if (text.empty()) text = "{}";
  CASEBUS_RETURN_IF_ERROR(CheckJsonBody(text, limits));
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(google::protobuf::StringPiece(text.data(), text.size()),
                                                        &message, opts);
  if (!st.ok()) return Status::InvalidArgument(std::string(st.message()), "body");
  return Status::Ok();
}

Result<v1::Command> DecodeCommandJson(std::string_view action, uint64_t case_id, std::string_view body,
                                      const JsonLimits& limits) {
  v1::Command cmd;
  const auto* field = v1::Command::descriptor()->FindFieldByName(std::string(action));
  if (!field || !field->containing_oneof() || field->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE)
    return Err(Status::InvalidArgument("no such action: \"" + std::string(action) + "\"", "action"));
  google::protobuf::Message* sub = cmd.GetReflection()->MutableMessage(&cmd, field);
  if (Status st = JsonToMessage(body, *sub, limits); !st.ok()) return Err(std::move(st));
  const auto* id_field = sub->GetDescriptor()->FindFieldByName("case_id");
  if (id_field) {
    const auto* r = sub->GetReflection();
    const uint64_t in_body = r->GetUInt64(*sub, id_field);
    if (in_body != 0 && in_body != case_id)
      return Err(Status::InvalidArgument("case_id " + std::to_string(in_body) + " in the body disagrees with case " +
                                             std::to_string(case_id) + " in the path",
                                         std::string(action) + ".case_id"));
    r->SetUInt64(sub, id_field, case_id);
  }
  return cmd;
}

std::string MessageToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, opts);
  return out;
}

}  // namespace casebus::server

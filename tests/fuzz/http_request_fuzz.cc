// Fuzz target: the HTTP/JSON API's request decoding, bytes as they come off the socket:
// Boost.Beast's request parser with the server's limits (header 8 KiB, body 64 KiB), the
// target through boost::urls::parse_origin_form (path, query parameters), then the body
// through the API's JSON decoding (engine/server/json_api.h): POST /v1/cases is a report,
// /v1/cases/{id}:{action} a command on a case (action in the URL's lowerCamelCase).
//
// Checked beyond "no crash": the limit check agrees with a depth-limited boost::json::parse
// (one JSON value, depth ≤ 32); a decoded command's own JSON decodes back to the same command.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <google/protobuf/stubs/logging.h>

#include "engine/server/json_api.h"

namespace {

namespace http = boost::beast::http;
using casebus::server::JsonLimits;

constexpr size_t kHeaderLimit = 8 * 1024;
constexpr size_t kBodyLimit = 64 * 1024;

void Require(bool condition) {
  if (!condition) std::abort();
}

// "approveExtension" → "approve_extension": the Command body's field name.
std::string FieldName(std::string_view action) {
  std::string out;
  for (char c : action) {
    if (c >= 'A' && c <= 'Z') {
      out += '_';
      c = static_cast<char>(c - 'A' + 'a');
    }
    out += c;
  }
  return out;
}

// The command an API path names, as (action field, case id); nullopt when it names none.
std::optional<std::pair<std::string, uint64_t>> CommandOf(std::string_view path) {
  if (path == "/v1/cases") return std::pair<std::string, uint64_t>("report", 0);
  constexpr std::string_view kCases = "/v1/cases/";
  if (!path.starts_with(kCases)) return std::nullopt;
  path.remove_prefix(kCases.size());
  const size_t colon = path.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  uint64_t id = 0;
  auto [end, ec] = std::from_chars(path.data(), path.data() + colon, id);
  if (ec != std::errc() || end != path.data() + colon || id == 0) return std::nullopt;
  return std::pair<std::string, uint64_t>(FieldName(path.substr(colon + 1)), id);
}

void DecodeBody(std::string_view path, std::string_view body) {
  const JsonLimits limits;
  const bool within = casebus::server::CheckJsonBody(body, limits).ok();
  boost::json::parse_options depth_limited;
  depth_limited.max_depth = static_cast<std::size_t>(limits.max_depth);
  boost::json::error_code ec;
  const boost::json::value value = boost::json::parse(body, ec, {}, depth_limited);
  if (within) Require(!ec);
  auto target = CommandOf(path);
  if (!target) return;
  auto cmd = casebus::server::DecodeCommandJson(target->first, target->second, body, limits);
  if (!cmd) {
    Require(!cmd.error().message().empty());
    return;
  }
  // The command wraps the body one level deeper and may gain its case_id.
  JsonLimits roomier = limits;
  roomier.max_depth += 1;
  roomier.max_elements += 2;
  casebus::v1::Command back;
  Require(casebus::server::JsonToMessage(casebus::server::MessageToJson(*cmd), back, roomier).ok());
  Require(back.SerializeAsString() == cmd->SerializeAsString());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int,
                                     const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  // As http::read does: put() until done or an error; need_more means every byte has been
  // offered (the unconsumed rest may be offered again only with more behind it), so the
  // stream ends there.
  boost::beast::error_code ec;
  const char* next = reinterpret_cast<const char*>(data);
  size_t left = size;
  while (left > 0 && !parser.is_done()) {
    const size_t used = parser.put(boost::asio::const_buffer(next, left), ec);
    next += used;
    left -= used;
    if (ec || used == 0) break;
  }
  if ((ec == http::error::need_more || (!ec && !parser.is_done())) && parser.got_some()) {
    ec = {};
    parser.put_eof(ec);
  }
  if (ec || !parser.is_done()) return 0;
  const auto& req = parser.get();
  auto target = boost::urls::parse_origin_form(req.target());
  if (!target) return 0;
  const std::string path = target->path();
  for (auto param : target->params()) Require(param.key.size() <= req.target().size());
  DecodeBody(path, req.body());
  return 0;
}

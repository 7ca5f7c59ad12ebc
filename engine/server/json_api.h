#pragma once
// JSON request bodies of the HTTP API: checked against limits before anything is built from
// them, then read into protobuf messages by the protobuf JSON mapping (field names as in the
// .proto, lowerCamelCase accepted too; unknown fields refused).
//
// Limits (RELIABILITY.md §3, OWASP API4): nesting depth, element count, string length, valid
// UTF-8, no duplicate keys. The check is one pass of Boost.JSON's non-recursive SAX parser
// that builds nothing, so a hostile body costs its length and no more; an error names the
// limit ("max_json_depth: ...").
// Thread safety: pure functions.

#include <string>
#include <string_view>

#include <google/protobuf/message.h>

#include "casebus/v1/command.pb.h"
#include "engine/base/status.h"

namespace casebus::server {

struct JsonLimits {
  int max_depth = 32;              // max_json_depth
  size_t max_elements = 10000;     // max_json_elements: values, keys included
  size_t max_string_bytes = 16384; // max_json_string_bytes: one string or key
};

// OK when `body` is one JSON value within the limits; else InvalidArgument with field "body"
// and a reason that starts with the limit's name or says what is malformed.
Status CheckJsonBody(std::string_view body, const JsonLimits& limits);

// CheckJsonBody, then the protobuf JSON mapping into `message`. An empty body is {}.
Status JsonToMessage(std::string_view body, google::protobuf::Message& message, const JsonLimits& limits);

// The command of an API call: `action` is the Command body's field name ("report", "accept",
// "request_extension", ...), case_id (for every action but report) comes from the path and
// must not disagree with one in the body.
Result<v1::Command> DecodeCommandJson(std::string_view action, uint64_t case_id, std::string_view body,
                                      const JsonLimits& limits);

// A message as JSON (field names as in the .proto, enums by name, 64-bit integers as strings
// per the mapping).
std::string MessageToJson(const google::protobuf::Message& message);

}  // namespace casebus::server

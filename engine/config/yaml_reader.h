#pragma once
// Reads YAML text into any protobuf message, generically, by walking the yaml-cpp node tree
// alongside the message's Descriptor:
// - mapping keys are field names (an unknown key is a problem, with a "did you mean" hint);
// - scalars convert by field type, with range checks; enums are matched case-insensitively
//   against their value names (`clock: working_hours`);
// - a sequence fills a repeated field; a null value leaves a scalar or repeated field unset and
//   marks a message field present (so `spool:` selects that adapter kind);
// - at most one member of a oneof; duplicate keys are problems.
// Thread safety: a pure function of its arguments.

#include <google/protobuf/message.h>

#include <string_view>

#include "engine/config/problems.h"

namespace casebus::config {

// Nesting deeper than this is rejected before the reader recurses into it.
inline constexpr int kMaxYamlDepth = 64;

// Fills `message` from the single YAML document in `yaml`. Records in `lines` the line of every
// node it converts, keyed by field path, and adds every mistake to `problems` (syntax errors
// included, at the line yaml-cpp reports). Never throws. `message` may be partly filled when
// problems were found.
void ReadYaml(std::string_view yaml, google::protobuf::Message& message, SourceLines& lines,
              Problems& problems);

}  // namespace casebus::config

#pragma once
// The spool adapter: a department that takes its work orders as files.
//
// Layout under the department's directory:
//   <id>.json          one work order per file (protobuf JSON mapping), named by its id
//   inbox/*.json       the department's replies: one Command per file (JSON mapping)
//   inbox/done/        replies taken in
//   inbox/rejected/    replies refused, each with a <name>.reason file saying why
// Durability: write a temp file, fsync it, rename it into place, fsync the directory.

#include <string>
#include <string_view>

#include "engine/dispatch/adapter.h"

namespace casebus::adapters {

void RegisterSpoolAdapter(dispatch::AdapterRegistry& registry);

// Largest reply file taken in; a bigger one is rejected.
constexpr size_t kMaxSpoolReplyBytes = 64 * 1024;

// One reply file's bytes → the Command it asks for, acting as `department` whatever the file
// says (actor set, caller cleared). InvalidArgument with the reason the file is rejected when it is larger than
// kMaxSpoolReplyBytes, not a Command in the JSON mapping, has no request_id, or is not one of
// accept, return, resolve, request_extension, note, supervision_reply. Never throws.
Result<v1::Command> ParseSpoolReply(std::string_view bytes, const std::string& department);

}  // namespace casebus::adapters

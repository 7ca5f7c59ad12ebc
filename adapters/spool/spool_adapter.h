#pragma once
// The spool adapter: a department that takes its work orders as files.
//
// Layout under the department's directory:
//   <id>.json          one work order per file (protobuf JSON mapping), named by its id
//   inbox/*.json       the department's replies: one Command per file (JSON mapping)
//   inbox/done/        replies taken in
//   inbox/rejected/    replies refused, each with a <name>.reason file saying why
// Durability: write a temp file, fsync it, rename it into place, fsync the directory.

#include "engine/dispatch/adapter.h"

namespace casebus::adapters {

void RegisterSpoolAdapter(dispatch::AdapterRegistry& registry);

// Largest reply file taken in; a bigger one is rejected.
constexpr size_t kMaxSpoolReplyBytes = 64 * 1024;

}  // namespace casebus::adapters

#pragma once
// The journal's audit chain: each record carries the link of the one before it, and the link
// of a record is SHA-256(big-endian seq || the record's bytes) — bytes that include the
// previous link. Editing, deleting, inserting or reordering records breaks the chain at the
// first record touched; the store also keeps the head (the last link) so the tail is covered.
// Tamper-evident against edits that do not recompute every later link; an operator who wants
// more anchors the head elsewhere (it is in `casebus audit verify`'s output).

#include <cstdint>
#include <string>
#include <string_view>

namespace casebus {

// 32 bytes.
std::string AuditLink(uint64_t seq, std::string_view record_bytes);
// Lower-case hex, for people.
std::string Hex(std::string_view bytes);

}  // namespace casebus

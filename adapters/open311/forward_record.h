#pragma once
// ForwardRecord: what the open311 adapter knows about one forwarded work order — the remote
// service request it became, the remote status last seen, and the department replies that
// status produced, in order. RecordDirectory keeps one record per file,
// <dir>/<work order id>.json, written durably (temp file, fsync, rename, directory fsync), so
// a restarted engine neither forwards an order twice nor loses a reply.
//
// Invariants: replies only grow, in the order they must be applied (accept, notes, resolve);
// a reply's request_id is a function of the work order id and its content, so the engine
// recognises a reply it already took; once `closed`, the remote request is not polled again.
// Thread safety: values; RecordDirectory has no state beyond its path (callers serialise
// writes of one record).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adapters/open311/georeport.h"
#include "casebus/v1/command.pb.h"
#include "engine/base/status.h"

namespace casebus::open311 {

// One department reply waiting for, or already given, the engine's result.
struct QueuedReply {
  enum class Kind { kAccept, kNote, kResolve };
  Kind kind = Kind::kAccept;
  std::string
      request_id;        // "open311-<work order id>-accept" | "-note-<fnv64 of text>" | "-resolve"
  std::string text;      // note: the text; resolve: the note
  std::string evidence;  // resolve: "open311:<endpoint>requests/<id>"
  bool done = false;     // the engine took it (OK) or refused it for good
  std::string result;    // done: "OK" or the refusal, for people
};

struct ForwardRecord {
  std::string work_order_id;
  uint64_t case_id = 0;
  std::string remote_id;  // service_request_id; "" while only the token is known
  std::string token;
  int64_t forwarded_at_ms = 0;
  std::string status;  // last seen: "open" | "closed" | "" (not polled yet)
  std::string status_notes, agency_responsible, updated_datetime;
  bool closed = false;
  std::vector<QueuedReply> replies;

  // Takes in the remote request's status; queues a Note when the notes changed while open,
  // a Resolve when it closed. True when anything changed (the record must be saved).
  // `where` is the request's URL, the Resolve's evidence after "open311:".
  bool Observe(const RemoteStatus& remote, const std::string& where);
  // Queues the Accept (签收) of a freshly forwarded order.
  void QueueAccept();
  // The first reply not done, if any.
  const QueuedReply* NextReply() const;
  // The command the department sends for `reply`. REQUIRES: reply belongs to this record.
  v1::Command CommandFor(const QueuedReply& reply, const std::string& department) const;
};

// Cuts text to at most `max` bytes without splitting a UTF-8 sequence.
std::string Truncate(std::string text, size_t max);

class RecordDirectory {
 public:
  explicit RecordDirectory(std::string dir) : dir_(std::move(dir)) {}
  Status Create() const;  // the directory and its parents
  Status Save(const ForwardRecord& record) const;
  // Every record file; the ids of files that do not parse go to `unreadable`.
  Status LoadAll(std::map<std::string, ForwardRecord>& records,
                 std::vector<std::string>& unreadable) const;
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

// Work order ids become file names: [A-Za-z0-9_-]{1,64} only.
bool SafeName(const std::string& s);

// Writes <dir>/<name>: a temp file, fsync, rename into place, fsync of the directory.
Status WriteFileDurably(const std::string& dir, const std::string& name, const std::string& data);

}  // namespace casebus::open311

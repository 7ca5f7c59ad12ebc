#pragma once
// The checkpoint file, <data>/checkpoint: the CaseMachine's state (core's WriteCheckpoint) as
// of one journal record, so a restart restores it and replays only the records after it.
//
// Written when the engine stops cleanly. A checkpoint is never the truth, only a shortcut to
// it: the journal stays whole, a checkpoint older than the journal is used with the records
// after it (a crash after a clean stop), and one that fails a check is ignored with the reason
// logged and the journal replayed from its first record.
//
// Layout: a 64-byte header, then the body.
//   "CBCKPT02"  u64 journal seq  32-byte audit link of that record  u64 body bytes
//   u32 low half of the body's XXH3-64  u32 CRC-32 of the header's first 60 bytes (little-endian)
// A "CBCKPT01" file (the body's CRC-32 in place of XXH3) is still read.
// Written to checkpoint.tmp.<pid>, fdatasync'ed, renamed over the old one, and the directory fsync'ed:
// a crash leaves the old checkpoint or the new, never a torn one.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engine/base/status.h"

namespace casebus::server {

inline constexpr char kCheckpointFileName[] = "checkpoint";

struct CheckpointWritten {
  uint64_t bytes = 0;  // the whole file
};

// Writes the checkpoint of journal record `seq` (whose audit link is `link`): `body` is
// called once with a sink to write the machine's bytes into.
Result<CheckpointWritten> WriteCheckpointFile(
    const std::string& dir, uint64_t seq, std::string_view link,
    const std::function<void(const std::function<void(std::string_view)>& sink)>& body);

// A checkpoint file mapped into memory, its header and checksums checked.
class CheckpointFile {
 public:
  // NotFound when there is none; Corruption naming the check that failed.
  static Result<std::unique_ptr<CheckpointFile>> Open(const std::string& dir);
  ~CheckpointFile();
  CheckpointFile(const CheckpointFile&) = delete;
  CheckpointFile& operator=(const CheckpointFile&) = delete;

  uint64_t seq() const { return seq_; }
  const std::string& link() const { return link_; }
  std::string_view body() const { return body_; }
  uint64_t file_bytes() const { return size_; }

 private:
  CheckpointFile() = default;
  void* map_ = nullptr;
  size_t size_ = 0;
  uint64_t seq_ = 0;
  std::string link_;
  std::string_view body_;
};

}  // namespace casebus::server

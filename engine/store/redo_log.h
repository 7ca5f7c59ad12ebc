#pragma once
// RedoLog: the store's own write-ahead log of its group commits, written in place.
//
// Why: an acknowledgement needs one fdatasync. RocksDB's log grows with every write, so each
// of its syncs also commits the file's new size through the file system's journal; on this
// machine an append + fdatasync costs 0.33 ms at the median where an overwrite of blocks
// already on disk costs 0.14 ms (bench/RESULTS.md, ../shared/BASELINES.md F1/F2). RocksDB
// can recycle its log files into overwrites, but disables that under point-in-time recovery.
// So a commit writes its WriteBatch here first — into space already written with zeros — and
// syncs that; RocksDB then takes the same batch without a sync (a process crash loses nothing
// of it, the page cache keeps it). After a power cut the store's open reapplies every batch
// here that RocksDB lost (Store::Open).
//
// Layout: two segment files, <dir>/REDO-0 and REDO-1, each grown a chunk of zeros at a time
// (synced when grown) up to segment_bytes, then the other is reused from its start. A frame:
//   magic (4 bytes "CBR1") · payload length (4, LE) · commit seq (8, LE) ·
//   CRC-32 of the seq and the payload (4, LE) · payload
// Commit seqs rise by one per frame. Before a segment is reused, the caller makes RocksDB's
// own log durable (Rotate callback: DB::SyncWAL), so what the reused segment held is no longer
// needed. A scan reads a segment from its start while frames are whole and their seqs
// consecutive; a torn frame, zeros, or an older frame past the newest ones end it.
//
// Not thread-safe: the commit thread appends; Open scans before it starts.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engine/base/status.h"

namespace rocksdb {
class FileSystem;
class FSRandomRWFile;
}  // namespace rocksdb

namespace casebus::store {

struct RedoLogOptions {
  uint64_t segment_bytes = 64ull << 20;  // a segment is reused once this full
  uint64_t chunk_bytes = 1ull << 20;     // zeros written ahead at a time
};

class RedoLog {
 public:
  // Opens (creating when missing) the segments in `dir`. Nothing is scanned yet.
  static Result<std::unique_ptr<RedoLog>> Open(std::shared_ptr<rocksdb::FileSystem> fs,
                                               const std::string& dir, RedoLogOptions options = {});
  ~RedoLog();

  // fn(seq, payload) for every frame with seq > after, in seq order. Corruption when the frames
  // after `after` are not consecutive (a hole: something durable is missing).
  Status Scan(uint64_t after, const std::function<Status(uint64_t seq, std::string_view payload)>& fn);
  // Where appends go from now on: the next frame gets `next_seq`. Everything in the segments is
  // then treated as no longer needed (the caller has made it durable elsewhere).
  void Start(uint64_t next_seq);
  // Writes one frame and syncs it. `rotate` runs before a full segment's successor is reused
  // and must make every batch appended so far durable elsewhere; its failure fails the append.
  Status Append(std::string_view payload, const std::function<Status()>& rotate);
  uint64_t next_seq() const { return next_seq_; }
  uint64_t rotations() const { return rotations_; }
  uint64_t grown_chunks() const { return grown_chunks_; }

  static constexpr size_t kHeaderBytes = 20;

 private:
  struct Segment {
    std::string path;
    std::unique_ptr<rocksdb::FSRandomRWFile> file;
    uint64_t size = 0;  // bytes on disk (zeros or frames)
  };
  RedoLog() = default;
  // Makes `segment` at least `end` bytes long with zeros written and synced.
  Status Grow(Segment& segment, uint64_t end);

  std::shared_ptr<rocksdb::FileSystem> fs_;
  RedoLogOptions options_;
  Segment segments_[2];
  int current_ = 0;
  uint64_t offset_ = 0;  // in the current segment
  uint64_t next_seq_ = 1;
  uint64_t rotations_ = 0, grown_chunks_ = 0;
};

}  // namespace casebus::store

#include "engine/store/redo_log.h"

#include <rocksdb/file_system.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cstring>
#include <vector>

namespace casebus::store {
namespace {

constexpr char kMagic[4] = {'C', 'B', 'R', '1'};

void PutLE(char* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}
uint64_t GetLE(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint32_t FrameCrc(const char* seq_bytes, std::string_view payload) {
  boost::crc_32_type crc;
  crc.process_bytes(seq_bytes, 8);
  crc.process_bytes(payload.data(), payload.size());
  return crc.checksum();
}

Status Io(const rocksdb::IOStatus& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  return Status::IOError("redo log " + what + ": " + s.ToString());
}

}  // namespace

Result<std::unique_ptr<RedoLog>> RedoLog::Open(std::shared_ptr<rocksdb::FileSystem> fs,
                                               const std::string& dir, RedoLogOptions options) {
  std::unique_ptr<RedoLog> log(new RedoLog());
  log->fs_ = std::move(fs);
  options.chunk_bytes = std::max<uint64_t>(options.chunk_bytes, 4096);
  options.segment_bytes = std::max(options.segment_bytes, options.chunk_bytes);
  log->options_ = options;
  rocksdb::IOOptions io;
  rocksdb::FileOptions fo;
  bool created = false;
  for (int i = 0; i < 2; ++i) {
    Segment& seg = log->segments_[i];
    seg.path = dir + "/REDO-" + std::to_string(i);
    if (log->fs_->FileExists(seg.path, io, nullptr).IsNotFound()) {
      // Born with one chunk of zeros on disk, so the first frames overwrite written blocks.
      std::unique_ptr<rocksdb::FSWritableFile> w;
      std::string zeros(options.chunk_bytes, '\0');
      Status st = Io(log->fs_->NewWritableFile(seg.path + ".new", fo, &w, nullptr), "create " + seg.path);
      if (st.ok()) st = Io(w->Append(zeros, io, nullptr), "zero " + seg.path);
      if (st.ok()) st = Io(w->Sync(io, nullptr), "sync " + seg.path);
      if (st.ok()) st = Io(w->Close(io, nullptr), "close " + seg.path);
      if (st.ok()) st = Io(log->fs_->RenameFile(seg.path + ".new", seg.path, io, nullptr), "rename " + seg.path);
      if (!st.ok()) return Err(st);
      created = true;
    }
    Status st = Io(log->fs_->NewRandomRWFile(seg.path, fo, &seg.file, nullptr), "open " + seg.path);
    if (st.ok()) st = Io(log->fs_->GetFileSize(seg.path, io, &seg.size, nullptr), "size " + seg.path);
    if (!st.ok()) return Err(st);
  }
  if (created) {
    std::unique_ptr<rocksdb::FSDirectory> d;
    Status st = Io(log->fs_->NewDirectory(dir, io, &d, nullptr), "open " + dir);
    if (st.ok()) st = Io(d->Fsync(io, nullptr), "sync " + dir);
    if (!st.ok()) return Err(st);
  }
  return log;
}

RedoLog::~RedoLog() {
  for (auto& s : segments_)
    if (s.file) (void)s.file->Close(rocksdb::IOOptions(), nullptr);
}

Status RedoLog::Scan(uint64_t after,
                     const std::function<Status(uint64_t seq, std::string_view payload)>& fn) {
  struct Found {
    uint64_t seq;
    int segment;
    uint64_t offset;  // of the payload
    uint32_t length;
  };
  std::vector<Found> found;
  rocksdb::IOOptions io;
  std::string scratch, header(kHeaderBytes, '\0');
  for (int i = 0; i < 2; ++i) {
    Segment& seg = segments_[i];
    uint64_t offset = 0, prev = 0;
    while (offset + kHeaderBytes <= seg.size) {
      rocksdb::Slice got;
      Status st = Io(seg.file->Read(offset, kHeaderBytes, io, &got, header.data(), nullptr), "read " + seg.path);
      if (!st.ok()) return st;
      if (got.size() < kHeaderBytes || std::memcmp(got.data(), kMagic, 4) != 0) break;
      const uint32_t length = static_cast<uint32_t>(GetLE(got.data() + 4, 4));
      const uint64_t seq = GetLE(got.data() + 8, 8);
      const uint32_t crc = static_cast<uint32_t>(GetLE(got.data() + 16, 4));
      if (offset + kHeaderBytes + length > seg.size) break;  // torn: the frame runs off the end
      if (prev != 0 && seq != prev + 1) break;                // an older generation's frame
      if (seq > after) {
        // Only the frames that will be applied are read whole and checked.
        scratch.resize(length);
        rocksdb::Slice body;
        st = Io(seg.file->Read(offset + kHeaderBytes, length, io, &body, scratch.data(), nullptr), "read " + seg.path);
        if (!st.ok()) return st;
        char seq_bytes[8];
        PutLE(seq_bytes, seq, 8);
        if (body.size() != length || FrameCrc(seq_bytes, body.ToStringView()) != crc) break;  // torn
        found.push_back({seq, i, offset + kHeaderBytes, length});
      }
      prev = seq;
      offset += kHeaderBytes + length;
    }
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.seq < b.seq; });
  uint64_t expect = after + 1;
  for (const Found& f : found) {
    if (f.seq != expect) {
      return Status::Corruption("redo log: batch " + std::to_string(expect) + " is missing before batch " +
                                std::to_string(f.seq) + " (" + segments_[f.segment].path + " at byte " +
                                std::to_string(f.offset - kHeaderBytes) + ")");
    }
    scratch.resize(f.length);
    rocksdb::Slice body;
    Status st = Io(segments_[f.segment].file->Read(f.offset, f.length, io, &body, scratch.data(), nullptr),
                   "read " + segments_[f.segment].path);
    if (st.ok()) st = fn(f.seq, body.ToStringView());
    if (!st.ok()) return st;
    ++expect;
  }
  return Status::Ok();
}

void RedoLog::Start(uint64_t next_seq) {
  next_seq_ = next_seq;
  current_ = 0;
  offset_ = 0;
}

Status RedoLog::Grow(Segment& seg, uint64_t end) {
  if (end <= seg.size) return Status::Ok();
  const uint64_t chunk = options_.chunk_bytes;
  const uint64_t target = (end + chunk - 1) / chunk * chunk;
  static const std::string zeros(1 << 20, '\0');
  rocksdb::IOOptions io;
  for (uint64_t at = seg.size; at < target;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), target - at));
    Status st = Io(seg.file->Write(at, rocksdb::Slice(zeros.data(), n), io, nullptr), "grow " + seg.path);
    if (!st.ok()) return st;
    at += n;
  }
  // The new size reaches the disk now, once per chunk, not with every frame's sync.
  Status st = Io(seg.file->Sync(io, nullptr), "sync " + seg.path);
  if (!st.ok()) return st;
  grown_chunks_ += (target - seg.size) / chunk;
  seg.size = target;
  return Status::Ok();
}

Status RedoLog::Append(std::string_view payload, const std::function<Status()>& rotate) {
  const uint64_t frame = kHeaderBytes + payload.size();
  if (offset_ > 0 && offset_ + frame > options_.segment_bytes) {
    // The successor still holds older frames: the caller makes them durable elsewhere first.
    Status st = rotate();
    if (!st.ok()) return st;
    current_ = 1 - current_;
    offset_ = 0;
    ++rotations_;
  }
  Segment& seg = segments_[current_];
  Status st = Grow(seg, offset_ + frame);
  if (!st.ok()) return st;
  std::string bytes(frame, '\0');
  std::memcpy(bytes.data(), kMagic, 4);
  PutLE(bytes.data() + 4, payload.size(), 4);
  PutLE(bytes.data() + 8, next_seq_, 8);
  PutLE(bytes.data() + 16, FrameCrc(bytes.data() + 8, payload), 4);
  std::memcpy(bytes.data() + kHeaderBytes, payload.data(), payload.size());
  rocksdb::IOOptions io;
  st = Io(seg.file->Write(offset_, bytes, io, nullptr), "write " + seg.path);
  if (st.ok()) st = Io(seg.file->Sync(io, nullptr), "sync " + seg.path);
  if (!st.ok()) return st;
  offset_ += frame;
  ++next_seq_;
  return Status::Ok();
}

}  // namespace casebus::store

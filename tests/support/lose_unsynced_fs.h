#pragma once
// LoseUnsyncedFS: a simulated power cut (RELIABILITY.md R2), under RocksDB.
//
// It tracks, for every file written through it, the length a sync made durable (RocksDB only
// appends; random-access files are refused as not modelled). Cut() makes every later file
// operation fail (the machine is off: nothing more reaches the disk, and the store's close
// cannot write); Restore() then cuts each tracked file back to its synced length, as the disk
// would hold it after power came back. Crash() without Restore() is a process crash instead:
// nothing is undone (the page cache keeps what was written), and Revive() lets a new open go
// on with the tracking kept, so a later cut still takes back what is unsynced from before the
// crash.
//
// Not modelled: directory entries not yet covered by a directory fsync (RocksDB syncs its
// directories after creating files; a lost entry is the same as a file cut to length 0 for
// what is tested here).

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace casebus::testing {

class LoseUnsyncedFS : public rocksdb::FileSystemWrapper {
 public:
  explicit LoseUnsyncedFS(std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default())
      : FileSystemWrapper(std::move(base)) {}
  static const char* kClassName() { return "LoseUnsyncedFS"; }
  const char* Name() const override { return kClassName(); }

  // Power is cut: from now on every operation fails.
  void Cut() { off_.store(true); }
  // The process died, the machine did not: the same as Cut() until Revive().
  void Crash() { off_.store(true); }
  void Revive() { off_.store(false); }
  // After Cut(): every tracked file back to its durable content; the FS works again.
  void Restore() {
    std::lock_guard lock(mu_);
    for (auto& [path, t] : files_) {
      std::error_code ec;
      if (std::filesystem::exists(path, ec)) std::filesystem::resize_file(path, t.synced, ec);
    }
    off_.store(false);
  }
  // Bytes that a cut now would take back, over all tracked files.
  uint64_t unsynced_bytes() {
    std::lock_guard lock(mu_);
    uint64_t n = 0;
    for (auto& [path, t] : files_) n += t.size - t.synced;
    return n;
  }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* d) override {
    if (off_) return Off();
    auto s = target()->NewWritableFile(f, o, r, d);
    if (s.ok()) {
      std::lock_guard lock(mu_);
      files_[f] = Tracked{};
      *r = std::make_unique<Appended>(std::move(*r), this, f);
    }
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* d) override {
    if (off_) return Off();
    auto s = target()->ReopenWritableFile(f, o, r, d);
    if (s.ok()) {
      std::lock_guard lock(mu_);
      uint64_t size = std::filesystem::file_size(f);
      auto [it, fresh] = files_.try_emplace(f, Tracked{});
      if (fresh) it->second.synced = it->second.size = size;  // what was there: durable
      *r = std::make_unique<Appended>(std::move(*r), this, f);
    }
    return s;
  }
  rocksdb::IOStatus NewRandomRWFile(const std::string&, const rocksdb::FileOptions&,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>*, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("LoseUnsyncedFS: random-access writes are not modelled");
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string&, const std::string&, const rocksdb::FileOptions&,
                                      std::unique_ptr<rocksdb::FSWritableFile>*, rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("LoseUnsyncedFS: log recycling is not modelled");
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    if (off_) return Off();
    {
      std::lock_guard lock(mu_);
      files_.erase(f);
    }
    return target()->DeleteFile(f, o, d);
  }
  rocksdb::IOStatus RenameFile(const std::string& s, const std::string& t, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* d) override {
    if (off_) return Off();
    auto st = target()->RenameFile(s, t, o, d);
    if (st.ok()) {
      std::lock_guard lock(mu_);
      auto it = files_.find(s);
      if (it != files_.end()) {
        files_[t] = it->second;
        files_.erase(s);
      } else {
        files_.erase(t);
      }
    }
    return st;
  }
  rocksdb::IOStatus Truncate(const std::string& f, size_t size, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* d) override {
    if (off_) return Off();
    return target()->Truncate(f, size, o, d);
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                                 std::unique_ptr<rocksdb::FSDirectory>* r, rocksdb::IODebugContext* d) override {
    if (off_) return Off();
    return target()->NewDirectory(name, o, r, d);
  }

 private:
  struct Tracked {
    uint64_t size = 0, synced = 0;  // bytes appended, and how many of them a sync made durable
  };
  static rocksdb::IOStatus Off() { return rocksdb::IOStatus::IOError("LoseUnsyncedFS: the power is off"); }

  class Appended : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    Appended(std::unique_ptr<rocksdb::FSWritableFile>&& f, LoseUnsyncedFS* fs, std::string path)
        : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs), path_(std::move(path)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* d) override {
      if (fs_->off_) return Off();
      auto s = target()->Append(data, o, d);
      if (s.ok()) Grew(data.size());
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* d) override {
      if (fs_->off_) return Off();
      auto s = target()->Append(data, o, v, d);
      if (s.ok()) Grew(data.size());
      return s;
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                       rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::NotSupported("LoseUnsyncedFS: positioned appends are not modelled");
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                       const rocksdb::DataVerificationInfo&, rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::NotSupported("LoseUnsyncedFS: positioned appends are not modelled");
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
      if (fs_->off_) return Off();
      auto s = target()->Truncate(size, o, d);
      if (s.ok()) {
        std::lock_guard lock(fs_->mu_);
        auto& t = fs_->files_[path_];
        t.size = std::min(t.size, size);
        t.synced = std::min(t.synced, size);
      }
      return s;
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
      if (fs_->off_) return Off();
      return target()->Flush(o, d);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
      if (fs_->off_) return Off();
      auto s = target()->Sync(o, d);
      if (s.ok()) Synced();
      return s;
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
      if (fs_->off_) return Off();
      auto s = target()->Fsync(o, d);
      if (s.ok()) Synced();
      return s;
    }
    rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
      if (fs_->off_) return Off();
      return rocksdb::IOStatus::OK();  // no promise of durability: nothing to do
    }
    rocksdb::IOStatus Close(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
      if (fs_->off_) return Off();
      return target()->Close(o, d);
    }

   private:
    void Grew(uint64_t n) {
      std::lock_guard lock(fs_->mu_);
      fs_->files_[path_].size += n;
    }
    void Synced() {
      std::lock_guard lock(fs_->mu_);
      auto& t = fs_->files_[path_];
      t.synced = t.size;
    }
    LoseUnsyncedFS* fs_;
    std::string path_;
  };

  std::atomic<bool> off_{false};
  std::mutex mu_;
  std::map<std::string, Tracked> files_;
};

}  // namespace casebus::testing

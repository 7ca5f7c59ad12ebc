// engine/store/redo_log: the group commits' own write-ahead log, and the store's durability
// through it. The first tests drive RedoLog on real files; the last ones cut the power under a
// real Store (tests/support/lose_unsynced_fs.h) and check that every committed batch comes
// back, and that without syncs the same cut does lose batches (the harness has teeth).

#include "engine/store/redo_log.h"

#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/store/store.h"
#include "tests/support/lose_unsynced_fs.h"

namespace casebus::store {
namespace {

namespace fs = std::filesystem;
using Frames = std::vector<std::pair<uint64_t, std::string>>;

class RedoLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/casebus-redo-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<RedoLog> OpenOrDie(RedoLogOptions o = {}) {
    auto log = RedoLog::Open(rocksdb::FileSystem::Default(), dir_, o);
    EXPECT_TRUE(log.has_value()) << log.error().ToString();
    return log ? std::move(*log) : nullptr;
  }
  static Result<Frames> ScanAll(RedoLog& log, uint64_t after) {
    Frames out;
    Status st = log.Scan(after, [&](uint64_t seq, std::string_view bytes) {
      out.emplace_back(seq, std::string(bytes));
      return Status::Ok();
    });
    if (!st.ok()) return Err(st);
    return out;
  }
  static std::string Payload(uint64_t seq, size_t n = 100) {
    std::string p = "batch " + std::to_string(seq) + ":";
    p.resize(n, static_cast<char>('a' + seq % 26));
    return p;
  }
  static Status NoRotate() { return Status::Internal("this test expects no rotation"); }
  void Poke(const std::string& file, uint64_t offset, char byte) {
    std::fstream f(dir_ + "/" + file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(byte);
  }

  std::string dir_;
};

TEST_F(RedoLogTest, FramesComeBackInOrderAfterReopen) {
  {
    auto log = OpenOrDie();
    ASSERT_NE(log, nullptr);
    log->Start(1);
    for (uint64_t s = 1; s <= 100; ++s) ASSERT_TRUE(log->Append(Payload(s, 10 + s * 7), NoRotate).ok());
    EXPECT_EQ(log->next_seq(), 101u);
  }
  auto log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  auto all = ScanAll(*log, 0);
  ASSERT_TRUE(all) << all.error().ToString();
  ASSERT_EQ(all->size(), 100u);
  for (uint64_t s = 1; s <= 100; ++s) {
    EXPECT_EQ((*all)[s - 1].first, s);
    EXPECT_EQ((*all)[s - 1].second, Payload(s, 10 + s * 7));
  }
  // Only what is after `after`: what the caller already has durably is skipped.
  auto tail = ScanAll(*log, 60);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->size(), 40u);
  EXPECT_EQ(tail->front().first, 61u);
  auto none = ScanAll(*log, 100);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(RedoLogTest, SegmentsAreWrittenAheadWithZerosAChunkAtATime) {
  RedoLogOptions o;
  o.chunk_bytes = 64 << 10;
  o.segment_bytes = 1 << 20;
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  // Born one chunk long, so the first frames overwrite blocks already on disk.
  EXPECT_EQ(fs::file_size(dir_ + "/REDO-0"), 64u << 10);
  EXPECT_EQ(fs::file_size(dir_ + "/REDO-1"), 64u << 10);
  log->Start(1);
  for (uint64_t s = 1; s <= 100; ++s) ASSERT_TRUE(log->Append(Payload(s, 1000), NoRotate).ok());
  // 100 frames of 1,020 bytes: 102,000 bytes, so one more chunk, grown once.
  EXPECT_EQ(log->grown_chunks(), 1u);
  EXPECT_EQ(fs::file_size(dir_ + "/REDO-0"), 128u << 10);
  EXPECT_EQ(fs::file_size(dir_ + "/REDO-1"), 64u << 10);
}

TEST_F(RedoLogTest, ATornLastFrameEndsTheScanBeforeIt) {
  {
    auto log = OpenOrDie();
    log->Start(1);
    for (uint64_t s = 1; s <= 10; ++s) ASSERT_TRUE(log->Append(Payload(s), NoRotate).ok());
  }
  // Frame 10 starts at 9 × 120 bytes; flip a byte of its payload: its CRC no longer holds.
  Poke("REDO-0", 9 * 120 + RedoLog::kHeaderBytes + 50, '#');
  auto log = OpenOrDie();
  auto got = ScanAll(*log, 0);
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_EQ(got->size(), 9u);
  EXPECT_EQ(got->back().first, 9u);
}

TEST_F(RedoLogTest, ALengthRunningOffTheFileEndsTheScanWithoutReadingPastIt) {
  {
    auto log = OpenOrDie();
    log->Start(1);
    for (uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(log->Append(Payload(s), NoRotate).ok());
  }
  // Frame 3's length field says 4 GiB - 1.
  for (int i = 0; i < 4; ++i) Poke("REDO-0", 2 * 120 + 4 + i, '\xff');
  auto log = OpenOrDie();
  auto got = ScanAll(*log, 0);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), 2u);
}

TEST_F(RedoLogTest, GarbageSegmentsYieldNoFramesAndNoCrash) {
  { ASSERT_NE(OpenOrDie(), nullptr); }
  std::mt19937 rng(7);
  for (const char* name : {"REDO-0", "REDO-1"}) {
    std::ofstream out(dir_ + "/" + name, std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 200'000; ++i) out.put(static_cast<char>(rng()));
  }
  // A header of the right magic but a random rest, at the start of one of them.
  Poke("REDO-1", 0, 'C');
  Poke("REDO-1", 1, 'B');
  Poke("REDO-1", 2, 'R');
  Poke("REDO-1", 3, '1');
  auto log = OpenOrDie();
  ASSERT_NE(log, nullptr);
  auto got = ScanAll(*log, 0);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_TRUE(got->empty());
}

TEST_F(RedoLogTest, AFullSegmentIsReusedOnlyAfterTheRotateCallbackSucceeds) {
  RedoLogOptions o;
  o.chunk_bytes = 4096;
  o.segment_bytes = 8192;
  auto log = OpenOrDie(o);
  log->Start(1);
  std::vector<uint64_t> durable_at;  // next_seq when each rotation was asked for
  auto rotate = [&] {
    durable_at.push_back(log->next_seq());
    return Status::Ok();
  };
  // 1,000-byte payloads: 8 frames fill a segment.
  for (uint64_t s = 1; s <= 30; ++s) ASSERT_TRUE(log->Append(Payload(s, 1000), rotate).ok());
  ASSERT_EQ(durable_at.size(), 3u);
  EXPECT_EQ(durable_at, (std::vector<uint64_t>{9, 17, 25}));
  EXPECT_EQ(log->rotations(), 3u);
  log.reset();
  log = OpenOrDie(o);
  // Batches up to 24 were made durable elsewhere before their segment was reused.
  auto got = ScanAll(*log, 24);
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_EQ(got->size(), 6u);
  for (size_t i = 0; i < got->size(); ++i) {
    EXPECT_EQ((*got)[i].first, 25 + i);
    EXPECT_EQ((*got)[i].second, Payload(25 + i, 1000));
  }
  // Asking for more than the log still holds is a hole, named, not a silent gap.
  auto hole = ScanAll(*log, 10);
  ASSERT_FALSE(hole);
  EXPECT_EQ(hole.error().code(), StatusCode::kCorruption);
  EXPECT_NE(hole.error().message().find("batch 11 is missing"), std::string::npos) << hole.error().message();
}

TEST_F(RedoLogTest, AFailedRotationFailsTheAppendAndOverwritesNothing) {
  RedoLogOptions o;
  o.chunk_bytes = 4096;
  o.segment_bytes = 8192;
  auto log = OpenOrDie(o);
  log->Start(1);
  for (uint64_t s = 1; s <= 8; ++s) ASSERT_TRUE(log->Append(Payload(s, 1000), NoRotate).ok());
  Status st = log->Append(Payload(9, 1000), [] { return Status::IOError("SyncWAL: injected"); });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("injected"), std::string::npos);
  EXPECT_EQ(log->next_seq(), 9u);
  log.reset();
  log = OpenOrDie(o);
  auto got = ScanAll(*log, 0);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), 8u);
}

// --- The store under a power cut -------------------------------------------------------------

class PowerCutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/casebus-powercut-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/db";
    fs_ = std::make_shared<testing::LoseUnsyncedFS>();
    env_ = rocksdb::NewCompositeEnv(fs_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::unique_ptr<Store> Open(bool sync, RedoLogOptions redo = {}) {
    StoreOptions o;
    o.sync = sync;
    o.env = env_.get();
    o.redo = redo;
    auto st = Store::Open(dir_, o);
    EXPECT_TRUE(st.has_value()) << st.error().ToString();
    return st ? std::move(*st) : nullptr;
  }
  // Batch b: records "b.0", "b.1", an outbox row "o<b>", a ledger bucket "l<b % 5>" = b.
  static Status CommitBatch(Store& s, uint64_t b) {
    const std::string n = std::to_string(b);
    return s.Commit({n + ".0", n + ".1"}, {{"o" + n, "order " + n}}, {}, {}, {{"l" + std::to_string(b % 5), n}});
  }
  // Everything batches 1..n left, after a reopen with the plain file system.
  void ExpectBatches(uint64_t n) {
    auto st = Store::Open(dir_);
    ASSERT_TRUE(st.has_value()) << st.error().ToString();
    Store& s = **st;
    EXPECT_EQ(s.last_seq(), 2 * n);
    uint64_t records = 0;
    (void)s.ForEachJournal([&](uint64_t seq, std::string_view bytes) {
      const uint64_t b = (seq + 1) / 2;
      EXPECT_EQ(bytes, std::to_string(b) + "." + std::to_string((seq + 1) % 2)) << "record " << seq;
      ++records;
      return true;
    });
    EXPECT_EQ(records, 2 * n);
    uint64_t rows = 0;
    (void)s.ForEachOutbox([&](std::string_view, std::string_view) {
      ++rows;
      return true;
    });
    EXPECT_EQ(rows, n);
    for (uint64_t b = n > 5 ? n - 4 : 1; b <= n; ++b) {
      bool found = false;
      (void)s.ForEachLedger([&](std::string_view key, std::string_view value) {
        if (key == "l" + std::to_string(b % 5)) found = value == std::to_string(b);
        return true;
      });
      EXPECT_TRUE(found) << "ledger bucket l" << b % 5 << " is not batch " << b << "'s";
    }
  }

  std::string root_, dir_;
  std::shared_ptr<testing::LoseUnsyncedFS> fs_;
  std::unique_ptr<rocksdb::Env> env_;
};

TEST_F(PowerCutTest, EveryCommittedBatchSurvivesACut) {
  uint64_t redone = 0;
  {
    auto s = Open(true);
    ASSERT_NE(s, nullptr);
    for (uint64_t b = 1; b <= 50; ++b) ASSERT_TRUE(CommitBatch(*s, b).ok());
    // RocksDB took them unsynced: a cut now takes bytes back.
    EXPECT_GT(fs_->unsynced_bytes(), 0u);
    fs_->Cut();
  }
  fs_->Restore();
  {
    auto s = Store::Open(dir_);
    ASSERT_TRUE(s.has_value()) << s.error().ToString();
    redone = (*s)->redone_batches();
    EXPECT_EQ((*s)->commit_seq(), 50u);
  }
  // The cut took them from RocksDB; the redo log gave them back.
  EXPECT_GT(redone, 0u);
  ExpectBatches(50);
}

TEST_F(PowerCutTest, WithoutSyncTheSameCutLosesBatches) {
  {
    auto s = Open(false);
    ASSERT_NE(s, nullptr);
    for (uint64_t b = 1; b <= 50; ++b) ASSERT_TRUE(CommitBatch(*s, b).ok());
    fs_->Cut();
  }
  fs_->Restore();
  auto s = Store::Open(dir_);
  ASSERT_TRUE(s.has_value()) << s.error().ToString();
  EXPECT_LT((*s)->last_seq(), 100u) << "the harness took nothing back: it cannot tell sync from no sync";
  EXPECT_EQ((*s)->redone_batches(), 0u);
}

TEST_F(PowerCutTest, CutsAcrossReusedSegmentsLoseNothing) {
  RedoLogOptions small;
  small.chunk_bytes = 4096;
  small.segment_bytes = 16384;
  uint64_t committed = 0;
  for (int round = 0; round < 3; ++round) {
    {
      auto s = Open(true, small);
      ASSERT_NE(s, nullptr);
      for (int i = 0; i < 400; ++i) ASSERT_TRUE(CommitBatch(*s, ++committed).ok());
      // Rotated from the first segment to the second and back: one of them was reused.
      EXPECT_GE(s->redo_log()->rotations(), 2u) << "segments of 16 KiB should have been reused";
      fs_->Cut();
    }
    fs_->Restore();
  }
  ExpectBatches(committed);
}

TEST_F(PowerCutTest, ACrashThenACutAfterTheRestartLosesNothing) {
  // A process crash leaves RocksDB's unsynced log in the page cache; the restarted store
  // recovers from it and starts overwriting the redo log. A power cut after that must not
  // take back the batches from before the crash: the open wrote RocksDB's memtables out first.
  {
    auto s = Open(true);
    ASSERT_NE(s, nullptr);
    for (uint64_t b = 1; b <= 40; ++b) ASSERT_TRUE(CommitBatch(*s, b).ok());
    fs_->Crash();  // its close cannot write: nothing is flushed
  }
  fs_->Revive();
  {
    auto s = Open(true);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->redone_batches(), 0u) << "a process crash loses nothing RocksDB was given";
    EXPECT_EQ(s->last_seq(), 80u);
    for (uint64_t b = 41; b <= 45; ++b) ASSERT_TRUE(CommitBatch(*s, b).ok());
    fs_->Cut();
  }
  fs_->Restore();
  ExpectBatches(45);
}

}  // namespace
}  // namespace casebus::store

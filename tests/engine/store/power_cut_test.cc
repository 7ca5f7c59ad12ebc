// engine/store under a simulated power cut (RELIABILITY.md R2): a real Store on RocksDB, its
// files under tests/support/lose_unsynced_fs.h, which on Cut() stops every write and on
// Restore() puts each file back to what its last sync made durable. Every committed batch
// must come back; the same cut without syncs must lose batches, or the harness proves nothing.

#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "engine/store/store.h"
#include "tests/support/lose_unsynced_fs.h"

namespace casebus::store {
namespace {

namespace fs = std::filesystem;

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
  std::unique_ptr<Store> Open(bool sync) {
    StoreOptions o;
    o.sync = sync;
    o.env = env_.get();
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
  {
    auto s = Open(true);
    ASSERT_NE(s, nullptr);
    for (uint64_t b = 1; b <= 50; ++b) ASSERT_TRUE(CommitBatch(*s, b).ok());
    fs_->Cut();  // the close that follows cannot write (no flush of the memtables)
  }
  fs_->Restore();
  ExpectBatches(50);
}

TEST_F(PowerCutTest, WithoutSyncTheSameCutLosesBatches) {
  {
    auto s = Open(false);
    ASSERT_NE(s, nullptr);
    for (uint64_t b = 1; b <= 50; ++b) ASSERT_TRUE(CommitBatch(*s, b).ok());
    EXPECT_GT(fs_->unsynced_bytes(), 0u);
    fs_->Cut();
  }
  fs_->Restore();
  auto s = Store::Open(dir_);
  ASSERT_TRUE(s.has_value()) << s.error().ToString();
  EXPECT_LT((*s)->last_seq(), 100u) << "the harness took nothing back: it cannot tell sync from no sync";
}

TEST_F(PowerCutTest, RepeatedCutsLoseNothing) {
  uint64_t committed = 0;
  for (int round = 0; round < 3; ++round) {
    {
      auto s = Open(true);
      ASSERT_NE(s, nullptr);
      EXPECT_EQ(s->last_seq(), 2 * committed) << "round " << round;
      for (int i = 0; i < 150; ++i) ASSERT_TRUE(CommitBatch(*s, ++committed).ok());
      fs_->Cut();
    }
    fs_->Restore();
  }
  ExpectBatches(committed);
}

TEST_F(PowerCutTest, ACrashThenACutAfterTheRestartLosesNothing) {
  // A process crash leaves RocksDB's log as it was; the restart recovers from it and serves
  // from memtables without flushing them (avoid_flush_during_recovery). A power cut after
  // that must not take back the batches from before the crash.
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
    EXPECT_EQ(s->last_seq(), 80u);
    for (uint64_t b = 41; b <= 45; ++b) ASSERT_TRUE(CommitBatch(*s, b).ok());
    fs_->Cut();
  }
  fs_->Restore();
  ExpectBatches(45);
}

}  // namespace
}  // namespace casebus::store

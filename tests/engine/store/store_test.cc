// engine/store: the journal and the outbox on RocksDB. Every test opens a real store in its own
// temporary directory, and most close and reopen it: what counts is what comes back.

#include "engine/store/store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace casebus::store {
namespace {

namespace fs = std::filesystem;

using Journal = std::vector<std::pair<uint64_t, std::string>>;
using Outbox = std::map<std::string, std::string>;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/casebus-store-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/db";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<Store> OpenOrDie(StoreOptions options = {}) {
    auto st = Store::Open(dir_, options);
    EXPECT_TRUE(st.has_value()) << st.error().ToString();
    return st ? std::move(*st) : nullptr;
  }

  static Journal ReadJournal(const Store& s) {
    Journal out;
    Status st = s.ForEachJournal([&](uint64_t seq, std::string_view bytes) {
      out.emplace_back(seq, std::string(bytes));
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  static Outbox ReadOutbox(const Store& s) {
    Outbox out;
    std::vector<std::string> order;
    Status st = s.ForEachOutbox([&](std::string_view id, std::string_view bytes) {
      order.emplace_back(id);
      out.emplace(std::string(id), std::string(bytes));
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end())) << "outbox scan is not in key order";
    return out;
  }

  std::string root_;
  std::string dir_;
};

TEST_F(StoreTest, FreshStoreIsEmptyAndHealthy) {
  auto s = OpenOrDie();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->last_seq(), 0u);
  EXPECT_TRUE(s->healthy());
  EXPECT_EQ(s->unhealthy_reason(), "");
  EXPECT_TRUE(ReadJournal(*s).empty());
  EXPECT_TRUE(ReadOutbox(*s).empty());
}

TEST_F(StoreTest, CommitAssignsConsecutiveSeqsAndSurvivesReopen) {
  {
    auto s = OpenOrDie();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Commit({"r1", "r2", "r3"}, {{"7-1", "wo7"}, {"3-1", "wo3"}}).ok());
    EXPECT_EQ(s->last_seq(), 3u);
    ASSERT_TRUE(s->Commit({"r4", "r5"}, {}).ok());
    EXPECT_EQ(s->last_seq(), 5u);
  }
  auto s = OpenOrDie();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->last_seq(), 5u);
  EXPECT_EQ(ReadJournal(*s),
            (Journal{{1, "r1"}, {2, "r2"}, {3, "r3"}, {4, "r4"}, {5, "r5"}}));
  EXPECT_EQ(ReadOutbox(*s), (Outbox{{"3-1", "wo3"}, {"7-1", "wo7"}}));
  // Numbering goes on after the restored tail, it does not restart.
  ASSERT_TRUE(s->Commit({"r6"}, {}).ok());
  EXPECT_EQ(s->last_seq(), 6u);
  EXPECT_EQ(ReadJournal(*s).back(), (std::pair<uint64_t, std::string>{6, "r6"}));
}

TEST_F(StoreTest, SeqOrderHoldsPastOneByte) {
  // Keys are big-endian, so seq 256 must sort after 255, not after 1.
  StoreOptions unsynced;
  unsynced.sync = false;
  auto s = OpenOrDie(unsynced);
  ASSERT_NE(s, nullptr);
  std::vector<std::string> records;
  for (int i = 1; i <= 300; ++i) records.push_back("r" + std::to_string(i));
  ASSERT_TRUE(s->Commit(records, {}).ok());
  s.reset();
  s = OpenOrDie();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->last_seq(), 300u);
  Journal j = ReadJournal(*s);
  ASSERT_EQ(j.size(), 300u);
  for (size_t i = 0; i < j.size(); ++i) {
    EXPECT_EQ(j[i].first, i + 1);
    EXPECT_EQ(j[i].second, "r" + std::to_string(i + 1));
  }
}

TEST_F(StoreTest, RecordsAreBytesNotCStrings) {
  const std::string binary("a\0b\xff\x00z", 6);
  {
    auto s = OpenOrDie();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Commit({binary}, {{"1-1", binary}}).ok());
  }
  auto s = OpenOrDie();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(ReadJournal(*s), (Journal{{1, binary}}));
  EXPECT_EQ(ReadOutbox(*s), (Outbox{{"1-1", binary}}));
}

TEST_F(StoreTest, ScansStopWhenTheCallbackSaysSo) {
  auto s = OpenOrDie();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Commit({"a", "b", "c"}, {{"x", "1"}, {"y", "2"}, {"z", "3"}}).ok());
  int seen = 0;
  ASSERT_TRUE(s->ForEachJournal([&](uint64_t, std::string_view) { return ++seen < 2; }).ok());
  EXPECT_EQ(seen, 2);
  seen = 0;
  ASSERT_TRUE(s->ForEachOutbox([&](std::string_view, std::string_view) { return ++seen < 1; }).ok());
  EXPECT_EQ(seen, 1);
}

TEST_F(StoreTest, MarkDeliveredRemovesOutboxRows) {
  {
    auto s = OpenOrDie();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Commit({"r1"}, {{"1-1", "a"}, {"2-1", "b"}, {"3-1", "c"}}).ok());
    ASSERT_TRUE(s->MarkDelivered({"1-1", "3-1"}).ok());
    EXPECT_EQ(ReadOutbox(*s), (Outbox{{"2-1", "b"}}));
    // An id that is not (or no longer) there is not an error: deliveries repeat.
    EXPECT_TRUE(s->MarkDelivered({"1-1", "no-such-order"}).ok());
    EXPECT_TRUE(s->MarkDelivered({}).ok());
    EXPECT_TRUE(s->healthy());
  }
  auto s = OpenOrDie();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(ReadOutbox(*s), (Outbox{{"2-1", "b"}}));
  // Delivery never touches the journal.
  EXPECT_EQ(ReadJournal(*s), (Journal{{1, "r1"}}));
}

TEST_F(StoreTest, OutboxRowRewrittenByALaterCommitKeepsTheLatestBytes) {
  auto s = OpenOrDie();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Commit({"r1"}, {{"1-1", "first"}}).ok());
  ASSERT_TRUE(s->Commit({"r2"}, {{"1-1", "second"}}).ok());
  EXPECT_EQ(ReadOutbox(*s), (Outbox{{"1-1", "second"}}));
}

TEST_F(StoreTest, EmptyCommitIsFine) {
  auto s = OpenOrDie();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Commit({"r1"}, {}).ok());
  EXPECT_TRUE(s->Commit({}, {}).ok());
  EXPECT_EQ(s->last_seq(), 1u);
  EXPECT_TRUE(s->healthy());
  // Outbox rows alone take no sequence number.
  EXPECT_TRUE(s->Commit({}, {{"9-1", "w"}}).ok());
  EXPECT_EQ(s->last_seq(), 1u);
  EXPECT_EQ(ReadJournal(*s), (Journal{{1, "r1"}}));
  EXPECT_EQ(ReadOutbox(*s), (Outbox{{"9-1", "w"}}));
  ASSERT_TRUE(s->Commit({"r2"}, {}).ok());
  EXPECT_EQ(s->last_seq(), 2u);
}

TEST_F(StoreTest, PutJournalRawOverwriteAndDeleteAreVisible) {
  {
    auto s = OpenOrDie();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Commit({"r1", "r2", "r3", "r4"}, {}).ok());
    ASSERT_TRUE(s->PutJournalRaw(2, "tampered").ok());
    ASSERT_TRUE(s->PutJournalRaw(3, "").ok());  // empty bytes delete the record
    EXPECT_EQ(ReadJournal(*s), (Journal{{1, "r1"}, {2, "tampered"}, {4, "r4"}}));
    EXPECT_EQ(s->last_seq(), 4u);
  }
  auto s = OpenOrDie();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(ReadJournal(*s), (Journal{{1, "r1"}, {2, "tampered"}, {4, "r4"}}));
  EXPECT_EQ(s->last_seq(), 4u);
}

TEST_F(StoreTest, OpenOnARegularFileFailsWithAStatus) {
  { std::ofstream(dir_) << "not a database\n"; }
  auto s = Store::Open(dir_);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), StatusCode::kIOError) << s.error().ToString();
  EXPECT_NE(s.error().message().find(dir_), std::string::npos) << s.error().message();
  // The file is left as it was.
  std::ifstream in(dir_);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "not a database");
}

TEST_F(StoreTest, OpenBelowARegularFileFails) {
  { std::ofstream(dir_) << "x"; }
  auto s = Store::Open(dir_ + "/db");
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find(dir_), std::string::npos) << s.error().message();
}

TEST_F(StoreTest, SecondOpenOfALiveStoreFailsInsteadOfSharingIt) {
  auto first = OpenOrDie();
  ASSERT_NE(first, nullptr);
  auto second = Store::Open(dir_);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), StatusCode::kIOError) << second.error().ToString();
  // The first one is untouched by the attempt.
  EXPECT_TRUE(first->Commit({"r1"}, {}).ok());
  EXPECT_EQ(first->last_seq(), 1u);
}

TEST_F(StoreTest, GarbledManifestPointerFailsToOpenWithoutCrashing) {
  { ASSERT_NE(OpenOrDie(), nullptr); }
  { std::ofstream(dir_ + "/CURRENT", std::ios::trunc) << "MANIFEST-999999\n"; }
  auto s = Store::Open(dir_);
  ASSERT_FALSE(s.has_value());
  EXPECT_FALSE(s.error().message().empty());
}

}  // namespace
}  // namespace casebus::store

// The ledger the engine stores behind the journal equals a recount of the journal up to the
// record it is stamped with; a row changed behind its back is found, named, and repaired by a
// rebuild; the engine itself notices a stale ledger at open and rewrites it from the journal,
// and catches up a ledger a crash left behind.

#include <gtest/gtest.h>

#include "adapters/register_all.h"
#include "engine/server/ledger_check.h"
#include "engine/store/store.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus::server::testing {
namespace {

class LedgerCheckTest : public ::testing::Test {
 protected:
  void SetUp() override { adapters::RegisterAllAdapters(registry_); }

  void RunSomeCases() { RunClosedLoop(SampleCity(), dir_.path(), clock_, registry_, 6); }
  // The same, by an engine that wrote its ledger once (with its first batch) and then stopped
  // the way kill -9 would, leaving the ledger behind the journal. With a checkpoint, the one
  // a clean stop writes, which is newer than the ledger's stamp.
  void RunSomeCasesAndCrash(bool checkpoint) {
    EngineOptions o;
    o.ledger_write_every_ms = 3'600'000;
    o.ledger_on_stop = false;
    o.checkpoint_on_stop = checkpoint;
    RunClosedLoop(SampleCity(), dir_.path(), clock_, registry_, 6, o);
  }
  Result<uint64_t> LedgerSeq() {
    auto store = store::Store::Open(dir_.path() + "/db");
    if (!store) return Err(store.error());
    return (*store)->GetLedgerSeq();
  }

  // Adds `delta` closed cases to the first stored bucket of a named unit of `of` (the
  // department dimension by default).
  std::string Tamper(int64_t delta, core::Dim of = core::Dim::kDepartment) {
    auto store = store::Store::Open(dir_.path() + "/db");
    EXPECT_TRUE(store) << store.error().ToString();
    std::string key, value;
    (void)(*store)->ForEachLedger([&](std::string_view k, std::string_view v) {
      core::Dim dim;
      std::string unit;
      int32_t day;
      if (!core::Ledger::ParseKey(k, dim, unit, day) || dim != of || unit.empty()) return true;
      key = k;
      value = v;
      return false;
    });
    EXPECT_FALSE(key.empty()) << "no bucket of that dimension stored";
    core::Counts counts{};
    EXPECT_TRUE(core::Ledger::ParseValue(value, counts));
    counts[core::kClosed] += delta;
    EXPECT_TRUE((*store)->Commit({}, {}, {}, {}, {{key, core::Ledger::EncodeValue(counts)}}).ok());
    return key;
  }

  TempDir dir_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
};

TEST_F(LedgerCheckTest, TheStoredLedgerEqualsARecountOfTheJournal) {
  RunSomeCases();
  auto check = CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr);
  ASSERT_TRUE(check) << check.error().ToString();
  EXPECT_GT(check->records, 20u);
  EXPECT_EQ(check->as_of, check->journal_records);  // a clean stop leaves it level
  EXPECT_EQ(check->records, check->journal_records);
  EXPECT_EQ(check->cases, 6u);
  EXPECT_GE(check->durable_buckets, 8u);  // every dimension has a bucket
  EXPECT_EQ(check->differences, 0u);
}

TEST_F(LedgerCheckTest, ATamperedRowIsFoundNamedAndRebuilt) {
  RunSomeCases();
  Tamper(+7);
  auto check = CheckLedger(SampleCity(), dir_.path(), /*rewrite=*/false, 10, nullptr);
  ASSERT_TRUE(check);
  ASSERT_EQ(check->differences, 1u);
  ASSERT_EQ(check->first.size(), 1u);
  EXPECT_EQ(check->first[0].dim, core::Dim::kDepartment);
  EXPECT_EQ(check->first[0].counter, core::kClosed);
  EXPECT_EQ(check->first[0].maintained - check->first[0].recomputed, 7);
  // Verify changes nothing; rebuild repairs.
  EXPECT_EQ(CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr)->differences, 1u);
  auto rebuilt = CheckLedger(SampleCity(), dir_.path(), /*rewrite=*/true, 10, nullptr);
  ASSERT_TRUE(rebuilt);
  EXPECT_EQ(rebuilt->differences, 1u);
  EXPECT_GT(rebuilt->rewritten, 0u);
  EXPECT_EQ(CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr)->differences, 0u);
}

TEST_F(LedgerCheckTest, TheEngineRewritesAStaleLedgerAtOpen) {
  RunSomeCases();
  Tamper(-3);
  {
    EngineOptions o;
    o.data_dir = dir_.path();
    auto engine = Engine::Open(SampleCity(), o, clock_, registry_);
    ASSERT_TRUE(engine) << engine.error().ToString();
    EXPECT_EQ((*engine)->stats().ledger_differences, 1u);
    // Its answers come from the journal, not from the stale row.
    v1::Query q;
    q.mutable_metrics()->set_group_by(v1::BY_DEPARTMENT);
    (*engine)->Start();
    v1::Request req;
    req.set_version(1);
    *req.mutable_query() = q;
    const v1::Reply reply = (*engine)->Call(std::move(req));
    int64_t closed = 0;
    for (const auto& r : reply.query().metrics().rows()) closed += r.closed();
    EXPECT_EQ(closed, 3);
    (*engine)->Stop();
  }
  EXPECT_EQ(CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr)->differences, 0u);
}

TEST_F(LedgerCheckTest, ALedgerACrashLeftBehindIsComparedAtItsStampAndCaughtUp) {
  RunSomeCasesAndCrash(/*checkpoint=*/false);
  auto check = CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr);
  ASSERT_TRUE(check) << check.error().ToString();
  ASSERT_GT(check->as_of, 0u);
  ASSERT_LT(check->as_of, check->journal_records) << "the ledger was written once, with the first batch";
  EXPECT_EQ(check->records, check->as_of);
  EXPECT_EQ(check->cases, 1u);  // the first report's batch
  EXPECT_EQ(check->differences, 0u);
  // Behind or not, a changed row is found: the recount stops at the stamp. (The ledger as of
  // the first report has no department yet: a district's row.)
  Tamper(+2, core::Dim::kDistrict);
  EXPECT_EQ(CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr)->differences, 1u);
  {
    EngineOptions o;
    o.data_dir = dir_.path();
    auto engine = Engine::Open(SampleCity(), o, clock_, registry_);
    ASSERT_TRUE(engine) << engine.error().ToString();
    const EngineStats st = (*engine)->stats();
    EXPECT_EQ(st.ledger_seq, check->as_of);
    EXPECT_EQ(st.ledger_behind, check->journal_records - check->as_of);
    EXPECT_TRUE(st.ledger_compared);  // no checkpoint: the replay passed the stamp
    EXPECT_EQ(st.ledger_differences, 1u) << "the tampered row, found in the middle of the replay";
  }
  // Caught up at the open and level after its clean stop.
  auto after = CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->as_of, after->journal_records);
  EXPECT_EQ(after->cases, 6u);
  EXPECT_EQ(after->differences, 0u);
}

TEST_F(LedgerCheckTest, ALedgerStampedBeforeTheCheckpointIsCaughtUpNotCompared) {
  RunSomeCasesAndCrash(/*checkpoint=*/true);
  auto stamp = LedgerSeq();
  ASSERT_TRUE(stamp) << stamp.error().ToString();
  EngineOptions o;
  o.data_dir = dir_.path();
  {
    auto engine = Engine::Open(SampleCity(), o, clock_, registry_);
    ASSERT_TRUE(engine) << engine.error().ToString();
    const EngineStats st = (*engine)->stats();
    EXPECT_GT(st.checkpoint_seq, *stamp);
    EXPECT_EQ(st.ledger_seq, *stamp);
    EXPECT_GT(st.ledger_behind, 0u);
    EXPECT_FALSE(st.ledger_compared);
  }
  auto after = CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->as_of, after->journal_records);
  EXPECT_EQ(after->differences, 0u);
}

TEST_F(LedgerCheckTest, ARebuildStampsALedgerLeftBehindLevelWithTheJournal) {
  RunSomeCasesAndCrash(/*checkpoint=*/false);
  auto before = CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr);
  ASSERT_TRUE(before);
  ASSERT_LT(before->as_of, before->journal_records);
  auto rebuilt = CheckLedger(SampleCity(), dir_.path(), /*rewrite=*/true, 10, nullptr);
  ASSERT_TRUE(rebuilt);
  EXPECT_EQ(rebuilt->differences, 0u);  // as of the stamp
  EXPECT_GT(rebuilt->rewritten, 0u);    // the rest of the journal's counters
  EXPECT_EQ(*LedgerSeq(), rebuilt->journal_records);
  auto after = CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr);
  EXPECT_EQ(after->differences, 0u);
  EXPECT_EQ(after->cases, 6u);
}

TEST_F(LedgerCheckTest, AnOpenDataDirectoryIsRefusedWithAClearError) {
  RunSomeCases();
  auto engine = StartedEngine(SampleCity(), dir_.path(), clock_, registry_);
  ASSERT_TRUE(engine);
  auto check = CheckLedger(SampleCity(), dir_.path(), false, 10, nullptr);
  ASSERT_FALSE(check);
  EXPECT_NE(check.error().message().find("lock"), std::string::npos) << check.error().message();
  engine->Stop();
}

}  // namespace
}  // namespace casebus::server::testing

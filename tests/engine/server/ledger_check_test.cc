// The ledger the engine stores with every batch equals a recount from the journal; a row
// changed behind its back is found, named, and repaired by a rebuild; the engine itself
// notices a stale ledger at open and rewrites it from the journal.

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

  // Adds `delta` closed cases to the first stored bucket of the department dimension.
  std::string Tamper(int64_t delta) {
    auto store = store::Store::Open(dir_.path() + "/db");
    EXPECT_TRUE(store) << store.error().ToString();
    std::string key, value;
    (void)(*store)->ForEachLedger([&](std::string_view k, std::string_view v) {
      core::Dim dim;
      std::string unit;
      int32_t day;
      if (!core::Ledger::ParseKey(k, dim, unit, day) || dim != core::Dim::kDepartment || unit.empty()) return true;
      key = k;
      value = v;
      return false;
    });
    EXPECT_FALSE(key.empty()) << "no department bucket stored";
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

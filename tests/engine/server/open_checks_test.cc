// What the engine checks at open besides the journal: the durable timer (`due`) rows against
// the timers the restored or replayed cases imply, with or without a checkpoint; a row missing,
// added or changed behind its back is counted. The store's rows are read on a thread of their
// own while the cases are restored (Engine::Recover), so these also cover that hand-over.

#include <gtest/gtest.h>

#include <filesystem>

#include "adapters/register_all.h"
#include "engine/server/checkpoint_file.h"
#include "engine/store/store.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus::server::testing {
namespace {

class OpenChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    adapters::RegisterAllAdapters(registry_);
    RunClosedLoop(SampleCity(), dir_.path(), clock_, registry_, 6);  // 3 stay open
  }

  std::vector<store::Store::DueKey> DueRows() {
    auto store = store::Store::Open(dir_.path() + "/db");
    EXPECT_TRUE(store) << store.error().ToString();
    std::vector<store::Store::DueKey> rows;
    if (!store) return rows;
    EXPECT_TRUE((*store)->ForEachDue([&](const store::Store::DueKey& k) {
      rows.push_back(k);
      return true;
    }).ok());
    return rows;
  }

  void ChangeDueRows(const store::Store::DueChanges& changes) {
    auto store = store::Store::Open(dir_.path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    ASSERT_TRUE((*store)->Commit({}, {}, changes, {}, {}).ok());
  }

  EngineStats OpenAndStop() {
    EngineOptions o;
    o.data_dir = dir_.path();
    auto engine = Engine::Open(SampleCity(), o, clock_, registry_);
    EXPECT_TRUE(engine) << engine.error().ToString();
    if (!engine) return {};
    (*engine)->WaitForOpenChecks();
    const EngineStats stats = (*engine)->stats();
    EXPECT_FALSE(stats.timer_check_pending);
    EXPECT_EQ(stats.timer_check_error, "");
    (*engine)->Stop();
    return stats;
  }

  TempDir dir_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
};

TEST_F(OpenChecksTest, TimerRowsMatchFromTheCheckpointAndFromTheJournal) {
  const auto rows = DueRows();
  ASSERT_GE(rows.size(), 3u);  // each open case has a running clock

  const EngineStats restored = OpenAndStop();
  EXPECT_GT(restored.checkpoint_seq, 0u) << restored.checkpoint_ignored;
  EXPECT_EQ(restored.checkpoint_cases, 6u);
  EXPECT_EQ(restored.timer_rows, rows.size());
  EXPECT_EQ(restored.timer_mismatches, 0u);
  EXPECT_EQ(restored.ledger_differences, 0u);
  EXPECT_GT(restored.open_checkpoint_seconds, 0.0);
  EXPECT_GE(restored.open_checks_seconds, 0.0);

  std::filesystem::remove(std::filesystem::path(dir_.path()) / kCheckpointFileName);
  const EngineStats replayed = OpenAndStop();
  EXPECT_EQ(replayed.checkpoint_seq, 0u);
  EXPECT_GT(replayed.replayed_records, 20u);
  EXPECT_EQ(replayed.timer_rows, rows.size());
  EXPECT_EQ(replayed.timer_mismatches, 0u);
  EXPECT_EQ(replayed.ledger_differences, 0u);
}

TEST_F(OpenChecksTest, AMissingTimerRowIsCounted) {
  const auto rows = DueRows();
  ASSERT_FALSE(rows.empty());
  ChangeDueRows({{rows.front(), false}});
  const EngineStats stats = OpenAndStop();
  EXPECT_EQ(stats.timer_rows, rows.size() - 1);
  EXPECT_EQ(stats.timer_mismatches, 1u);
}

TEST_F(OpenChecksTest, AnAddedTimerRowIsCounted) {
  const auto rows = DueRows();
  ChangeDueRows({{{rows.back().at_ms + 1, 999, 0}, true}});
  const EngineStats stats = OpenAndStop();
  EXPECT_EQ(stats.timer_rows, rows.size() + 1);
  EXPECT_EQ(stats.timer_mismatches, 1u);
}

TEST_F(OpenChecksTest, AChangedTimerRowIsCountedThoughTheCountIsRight) {
  const auto rows = DueRows();
  ASSERT_FALSE(rows.empty());
  store::Store::DueKey moved = rows.front();
  moved.at_ms += 60'000;  // the same case and stage, a minute later
  ChangeDueRows({{rows.front(), false}, {moved, true}});
  const EngineStats stats = OpenAndStop();
  EXPECT_EQ(stats.timer_rows, rows.size());
  EXPECT_EQ(stats.timer_mismatches, 1u);
}

}  // namespace
}  // namespace casebus::server::testing

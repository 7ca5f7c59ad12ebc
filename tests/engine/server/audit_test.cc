// The journal's audit chain: intact after real work, and every kind of tampering directly in
// RocksDB — editing, deleting, inserting and reordering records, at the start, in the middle
// and at the end — is found by `audit verify` at the record where it happened; the engine
// refuses to open a journal whose tail no longer matches the chain head.

#include <gtest/gtest.h>

#include "adapters/register_all.h"
#include "casebus/v1/journal.pb.h"
#include "engine/server/audit_check.h"
#include "engine/store/store.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus::server::testing {
namespace {

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    adapters::RegisterAllAdapters(registry_);
    RunClosedLoop(SampleCity(), dir_.path(), clock_, registry_, 4);
    auto store = store::Store::Open(dir_.path() + "/db");
    ASSERT_TRUE(store);
    last_ = (*store)->last_seq();
    ASSERT_GE(last_, 16u);  // 4 reports, registers, dispatches + 2 × 4 closing steps
  }

  AuditReport Verify() {
    auto r = VerifyAudit(dir_.path(), nullptr);
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? *r : AuditReport{};
  }

  // Direct access to the journal, as an attacker with the files would have.
  template <typename F>
  void WithStore(F&& f) {
    auto store = store::Store::Open(dir_.path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    f(**store);
  }
  std::string Get(store::Store& s, uint64_t seq) {
    auto b = s.GetJournal(seq);
    EXPECT_TRUE(b) << seq;
    return b ? *b : std::string();
  }
  // The record at seq with its request id changed (still a well-formed record).
  std::string Edited(store::Store& s, uint64_t seq) {
    v1::JournalRecord r;
    EXPECT_TRUE(r.ParseFromString(Get(s, seq)));
    r.set_request_id(r.request_id() + "-forged");
    return r.SerializeAsString();
  }

  TempDir dir_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
  uint64_t last_ = 0;
};

TEST_F(AuditTest, TheChainIsIntactAfterRealWorkAndRestarts) {
  // A second run on the same data goes on from the last link.
  RunClosedLoop(SampleCity(), dir_.path(), clock_, registry_, 0);
  auto engine = StartedEngine(SampleCity(), dir_.path(), clock_, registry_);
  ASSERT_TRUE(engine);
  ASSERT_EQ(engine->Call(Req({Report("later", Grid(20))})).results(0).code(), v1::OK);
  engine->Stop();
  engine.reset();
  const AuditReport r = Verify();
  EXPECT_TRUE(r.intact) << r.reason;
  EXPECT_EQ(r.records, last_ + 1);
  EXPECT_EQ(r.unchained, 0u);
  EXPECT_EQ(r.head.size(), 64u);
}

TEST_F(AuditTest, AnEditedRecordIsFoundAtTheNextLink) {
  const uint64_t k = last_ / 2;
  WithStore([&](store::Store& s) { ASSERT_TRUE(s.PutJournalRaw(k, Edited(s, k)).ok()); });
  const AuditReport r = Verify();
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.broken_at, k + 1) << r.reason;
  EXPECT_NE(r.reason.find("record " + std::to_string(k) + " was changed"), std::string::npos) << r.reason;
}

TEST_F(AuditTest, EditingTheFirstOrTheLastRecordIsFoundToo) {
  WithStore([&](store::Store& s) { ASSERT_TRUE(s.PutJournalRaw(1, Edited(s, 1)).ok()); });
  EXPECT_EQ(Verify().broken_at, 2u);
  WithStore([&](store::Store& s) { ASSERT_TRUE(s.PutJournalRaw(1, Edited(s, 1)).ok()); });
  TempDir other;
  RunClosedLoop(SampleCity(), other.path(), clock_, registry_, 2);
  auto fresh = store::Store::Open(other.path() + "/db");
  ASSERT_TRUE(fresh);
  const uint64_t n = (*fresh)->last_seq();
  ASSERT_TRUE((*fresh)->PutJournalRaw(n, Edited(**fresh, n)).ok());
  fresh->reset();
  auto r = VerifyAudit(other.path(), nullptr);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->intact);
  EXPECT_EQ(r->broken_at, n);
  EXPECT_NE(r->reason.find("chain head"), std::string::npos) << r->reason;
}

TEST_F(AuditTest, ADeletedRecordIsFound) {
  const uint64_t k = last_ / 2;
  WithStore([&](store::Store& s) { ASSERT_TRUE(s.PutJournalRaw(k, "").ok()); });
  const AuditReport r = Verify();
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.broken_at, k) << r.reason;
  EXPECT_NE(r.reason.find("missing"), std::string::npos) << r.reason;
}

TEST_F(AuditTest, DeletingTheLastRecordsIsFoundByTheHead) {
  WithStore([&](store::Store& s) {
    ASSERT_TRUE(s.PutJournalRaw(last_, "").ok());
    ASSERT_TRUE(s.PutJournalRaw(last_ - 1, "").ok());
  });
  const AuditReport r = Verify();
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.broken_at, last_ - 1) << r.reason;
  // And the engine will not build on such a journal.
  EngineOptions o;
  o.data_dir = dir_.path();
  auto e = Engine::Open(SampleCity(), o, clock_, registry_);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("audit"), std::string::npos) << e.error().message();
}

TEST_F(AuditTest, AnInsertedRecordIsFound) {
  // Shift records k..last up by one and put a forged record at k, as an insertion must.
  const uint64_t k = last_ / 2;
  WithStore([&](store::Store& s) {
    for (uint64_t seq = last_; seq >= k; --seq) ASSERT_TRUE(s.PutJournalRaw(seq + 1, Get(s, seq)).ok());
    ASSERT_TRUE(s.PutJournalRaw(k, Edited(s, k + 1)).ok());
  });
  // The forger copied a valid link into the inserted record, so it passes; the record after
  // it (the original k) still carries the link of k − 1, and the chain breaks there.
  const AuditReport r = Verify();
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.broken_at, k + 1) << r.reason;
}

TEST_F(AuditTest, AppendingARecordIsFoundByTheHead) {
  WithStore([&](store::Store& s) { ASSERT_TRUE(s.PutJournalRaw(last_ + 1, Edited(s, last_)).ok()); });
  const AuditReport r = Verify();
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.broken_at, last_ + 1) << r.reason;
}

TEST_F(AuditTest, SwappedRecordsAreFound) {
  const uint64_t k = last_ / 2;
  WithStore([&](store::Store& s) {
    const std::string a = Get(s, k), b = Get(s, k + 1);
    ASSERT_TRUE(s.PutJournalRaw(k, b).ok());
    ASSERT_TRUE(s.PutJournalRaw(k + 1, a).ok());
  });
  const AuditReport r = Verify();
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.broken_at, k) << r.reason;
}

TEST_F(AuditTest, GarbageInARecordIsFound) {
  const uint64_t k = 3;
  WithStore([&](store::Store& s) { ASSERT_TRUE(s.PutJournalRaw(k, std::string("\xff\xff\xff\xff", 4)).ok()); });
  const AuditReport r = Verify();
  EXPECT_FALSE(r.intact);
  EXPECT_EQ(r.broken_at, k) << r.reason;
}

}  // namespace
}  // namespace casebus::server::testing

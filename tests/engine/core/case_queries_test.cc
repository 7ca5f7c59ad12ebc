// CaseMachine::Answer (show, list, closure table, status) and Replay on one small scripted
// scenario whose counts are worked out by hand below; request ids as idempotency keys.

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>

#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "engine/core/replay_journal.h"
#include "tests/engine/core/machine_fixture.h"

namespace casebus::core {
namespace {

using ::google::protobuf::util::MessageDifferencer;

// Monday 2026-11-02 (SmallCity, +08:00). Drain clogs have 4 working hours to handle, so a drain
// clog dispatched Monday 09:00 is due Monday 14:30; parking has 1 working hour.
//   1 drain   @A1 → drainage   resolved 11:00, verified, closed          closed on time
//   2 drain   @A3 → drainage   resolved 16:00, verified, closed          closed late
//   3 drain   @A2 → drainage   dispatched, never resolved                overdue from 14:30
//   4 parking @B1 → enforce    resolved, failed verification (rework), resolved again
//   5 drain   @A4 → municipal, returned, re-dispatched → drainage, then suspended
//   6 property@B2              registered, never dispatched
//   7 parking @B2              merged into 4
// As of Tuesday 12:00:
//   drainage  registered 4 dispatched 4 due 3 (1, 2 closed; 3 overdue) closed 2 on time 1
//             overdue_open 1 rework 0 returned 1 (5); 5 is suspended, so not due
//   enforce   registered 1 dispatched 1 due 1 (4 resolved) closed 0 rework 1
//   district 320501 = drainage's row; district 320502: cases 4 and 6 (7 is merged):
//             registered 2 dispatched 1 due 1 closed 0 rework 1
class CaseQueriesTest : public MachineTest {
 protected:
  Effects Step(v1::Command c, std::string_view at) {
    Effects fx = Run(std::move(c), At(at));
    records_.push_back(fx.record);
    return fx;
  }
  void Script() {
    auto report = [&](const char* category, const char* grid) {
      return Step(cmd::Report(category, grid), "2026-11-02T09:00:00+08:00").result.case_id();
    };
    const char* m9 = "2026-11-02T09:00:00+08:00";
    const std::pair<const char*, const char*> reports[] = {
        {kDrainClog, kGridA1}, {kDrainClog, kGridA3}, {kDrainClog, kGridA2}, {kParking, kGridB1},
        {kDrainClog, kGridA4}, {kProperty, kGridB2},  {kParking, kGridB2}};
    for (auto [category, grid] : reports) {
      uint64_t id = report(category, grid);
      Step(cmd::Register(id), m9);
      if (id <= 5) Step(cmd::Dispatch(id), m9);
    }
    for (uint64_t id : {1, 2, 4}) Step(cmd::Accept(id), "2026-11-02T09:05:00+08:00");
    Step(cmd::Resolve(1), "2026-11-02T11:00:00+08:00");
    Step(cmd::Resolve(2), "2026-11-02T16:00:00+08:00");
    for (uint64_t id : {1, 2}) {
      Step(cmd::Verify(id, true), "2026-11-02T16:30:00+08:00");
      Step(cmd::Close(id), "2026-11-02T16:40:00+08:00");
    }
    Step(cmd::Resolve(4), "2026-11-02T09:30:00+08:00");
    Step(cmd::Verify(4, false, "car still there"), "2026-11-02T09:40:00+08:00");
    Step(cmd::Accept(4), "2026-11-02T09:45:00+08:00");
    Step(cmd::Resolve(4), "2026-11-02T10:00:00+08:00");
    Step(cmd::Return(5), "2026-11-02T09:10:00+08:00");
    Step(cmd::Dispatch(5), "2026-11-02T09:20:00+08:00");
    Step(cmd::Suspend(5), "2026-11-02T09:30:00+08:00");
    Step(cmd::Merge(7, 4), "2026-11-02T10:30:00+08:00");
    // Refusals and retries leave records without events; Replay must cope with them.
    Step(cmd::Close(3), "2026-11-02T10:40:00+08:00");
    v1::Command note = cmd::Note(3);
    note.set_request_id("note-3");
    Step(note, "2026-11-02T10:50:00+08:00");
    Step(note, "2026-11-02T10:51:00+08:00");
  }
  v1::QueryResult Closure(std::string_view as_of) {
    v1::Query q;
    q.mutable_closure()->set_as_of_ms(At(as_of));
    return machine_->Answer(q, At("2026-11-09T00:00:00+08:00"));
  }
  std::vector<uint64_t> List(const v1::ListCases& filter, std::string_view now) {
    v1::Query q;
    *q.mutable_list() = filter;
    v1::QueryResult r = machine_->Answer(q, At(now));
    EXPECT_EQ(r.code(), v1::OK);
    std::vector<uint64_t> ids;
    for (const auto& c : r.cases()) {
      EXPECT_EQ(c.history_size(), 0) << "lists carry no history";
      ids.push_back(c.id());
    }
    return ids;
  }
  std::vector<v1::JournalRecord> records_;
};

const v1::ClosureRow* Row(const google::protobuf::RepeatedPtrField<v1::ClosureRow>& rows,
                          std::string_view key) {
  for (const auto& r : rows)
    if (r.key() == key) return &r;
  ADD_FAILURE() << "no closure row " << key;
  return nullptr;
}

void ExpectRow(const v1::ClosureRow* r, int registered, int dispatched, int due, int closed,
               int on_time, int overdue_open, int rework, int returned) {
  ASSERT_NE(r, nullptr);
  SCOPED_TRACE(r->key());
  EXPECT_EQ(r->registered(), registered);
  EXPECT_EQ(r->dispatched(), dispatched);
  EXPECT_EQ(r->due(), due);
  EXPECT_EQ(r->closed(), closed);
  EXPECT_EQ(r->closed_on_time(), on_time);
  EXPECT_EQ(r->overdue_open(), overdue_open);
  EXPECT_EQ(r->rework(), rework);
  EXPECT_EQ(r->returned(), returned);
}

TEST_F(CaseQueriesTest, ScriptReachesTheStatesItDescribes) {
  Script();
  const v1::CaseState want[] = {v1::CLOSED,    v1::CLOSED,     v1::DISPATCHED, v1::RESOLVED,
                                v1::SUSPENDED, v1::REGISTERED, v1::MERGED};
  for (uint64_t id = 1; id <= 7; ++id) EXPECT_EQ(Get(id).state(), want[id - 1]) << "case " << id;
  EXPECT_TRUE(Get(1).closed_on_time());
  EXPECT_FALSE(Get(2).closed_on_time());
  EXPECT_EQ(Get(5).department(), "drainage");
  EXPECT_EQ(Get(4).report_count(), 2);
}

TEST_F(CaseQueriesTest, ClosureTableCountsByDepartmentAndDistrict) {
  Script();
  v1::QueryResult r = Closure("2026-11-03T12:00:00+08:00");
  ASSERT_EQ(r.code(), v1::OK);
  EXPECT_EQ(r.by_department_size(), 9);  // every department has a row, even an empty one
  ExpectRow(Row(r.by_department(), "drainage"), 4, 4, 3, 2, 1, 1, 0, 1);
  EXPECT_DOUBLE_EQ(Row(r.by_department(), "drainage")->closure_rate(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(Row(r.by_department(), "drainage")->on_time_closure_rate(), 1.0 / 3.0);
  EXPECT_EQ(Row(r.by_department(), "drainage")->name(), "排水公司");
  ExpectRow(Row(r.by_department(), "enforce"), 1, 1, 1, 0, 0, 0, 1, 0);
  EXPECT_DOUBLE_EQ(Row(r.by_department(), "enforce")->closure_rate(), 0.0);
  ExpectRow(Row(r.by_department(), "municipal"), 0, 0, 0, 0, 0, 0, 0, 0);
  ExpectRow(Row(r.by_department(), "housing"), 0, 0, 0, 0, 0, 0, 0, 0);
  EXPECT_DOUBLE_EQ(Row(r.by_department(), "housing")->closure_rate(), 0.0);  // due = 0

  ASSERT_EQ(r.by_district_size(), 2);
  ExpectRow(Row(r.by_district(), "320501"), 4, 4, 3, 2, 1, 1, 0, 1);
  ExpectRow(Row(r.by_district(), "320502"), 2, 1, 1, 0, 0, 0, 1, 0);
  EXPECT_EQ(Row(r.by_district(), "320502")->name(), "西区");
  EXPECT_EQ(r.utc_offset_minutes(), 480);
}

TEST_F(CaseQueriesTest, ClosureTableCountsOverdueAsOfItsInstant) {
  Script();
  // Monday 14:00: case 3's deadline (14:30) has not passed, so it is neither due nor overdue.
  ExpectRow(Row(Closure("2026-11-02T14:00:00+08:00").by_department(), "drainage"), 4, 4, 2, 2, 1, 0,
            0, 1);
  // as_of 0 means now.
  v1::Query q;
  q.mutable_closure();
  ExpectRow(Row(machine_->Answer(q, At("2026-11-02T14:29:00+08:00")).by_department(), "drainage"),
            4, 4, 2, 2, 1, 0, 0, 1);
  ExpectRow(Row(machine_->Answer(q, At("2026-11-02T14:31:00+08:00")).by_department(), "drainage"),
            4, 4, 3, 2, 1, 1, 0, 1);
  // Cases reported after as_of are left out.
  ExpectRow(Row(Closure("2026-11-02T08:59:00+08:00").by_department(), "drainage"), 0, 0, 0, 0, 0, 0,
            0, 0);
}

TEST_F(CaseQueriesTest, ListFilters) {
  Script();
  const char* tue12 = "2026-11-03T12:00:00+08:00";
  v1::ListCases f;
  EXPECT_EQ(List(f, tue12), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7}));
  f.set_state(v1::CLOSED);
  EXPECT_EQ(List(f, tue12), (std::vector<uint64_t>{1, 2}));
  f.Clear();
  f.set_department("drainage");
  EXPECT_EQ(List(f, tue12), (std::vector<uint64_t>{1, 2, 3, 5}));
  f.Clear();
  f.set_district("320502");
  EXPECT_EQ(List(f, tue12), (std::vector<uint64_t>{4, 6, 7}));
  f.Clear();
  f.set_overdue(true);  // open past the handle deadline; suspended case 5 is not counted
  EXPECT_EQ(List(f, tue12), (std::vector<uint64_t>{3}));
  EXPECT_EQ(List(f, "2026-11-02T14:00:00+08:00"), (std::vector<uint64_t>{}));
  f.Clear();
  f.set_limit(2);
  EXPECT_EQ(List(f, tue12), (std::vector<uint64_t>{1, 2}));
  f.set_after_case_id(2);
  EXPECT_EQ(List(f, tue12), (std::vector<uint64_t>{3, 4}));
}

TEST_F(CaseQueriesTest, ShowAndStatus) {
  Script();
  v1::Query show;
  show.mutable_show()->set_case_id(4);
  v1::QueryResult r = machine_->Answer(show, Monday9());
  ASSERT_EQ(r.code(), v1::OK);
  EXPECT_TRUE(MessageDifferencer::Equals(r.found(), Get(4)));
  EXPECT_GT(r.found().history_size(), 0);
  show.mutable_show()->set_case_id(99);
  r = machine_->Answer(show, Monday9());
  EXPECT_EQ(r.code(), v1::NOT_FOUND);
  EXPECT_EQ(r.message(), "case 99 does not exist");

  v1::Query status;
  status.mutable_status();
  r = machine_->Answer(status, Monday9());
  EXPECT_EQ(r.status().cases(), 7u);
  EXPECT_EQ(r.status().open_cases(), 4u);  // 3, 4, 5, 6

  EXPECT_EQ(machine_->Answer(v1::Query(), Monday9()).code(), v1::INVALID_ARGUMENT);
}

TEST_F(CaseQueriesTest, ReplayOfTheJournalRebuildsTheSameCases) {
  Script();
  auto fresh = CaseMachine::Create(casebus::testing::SmallCity());
  ASSERT_TRUE(fresh.has_value());
  CaseMachine& replica = **fresh;
  for (const auto& record : records_) replica.Replay(record);

  ASSERT_EQ(replica.case_count(), machine_->case_count());
  std::vector<uint64_t> ids;
  machine_->ForEachCase([&](const v1::Case& c) { ids.push_back(c.id()); });
  for (uint64_t id : ids) {
    std::optional<v1::Case> original = machine_->CaseWithHistory(id);
    std::optional<v1::Case> copy = replica.CaseWithHistory(id);
    ASSERT_TRUE(copy.has_value()) << "case " << id;
    EXPECT_GT(original->history_size(), 0) << "case " << id;
    EXPECT_TRUE(MessageDifferencer::Equals(*copy, *original))
        << "case " << id << "\noriginal:\n"
        << original->DebugString() << "replayed:\n"
        << copy->DebugString();
  }
  EXPECT_EQ(replica.next_case_id(), machine_->next_case_id());

  // Request ids survive replay: a retry is recognised, a reuse refused.
  v1::Command note = cmd::Note(3);
  note.set_request_id("note-3");
  Effects retry = replica.Execute(note, At("2026-11-03T09:00:00+08:00"));
  EXPECT_EQ(retry.result.code(), v1::OK);
  EXPECT_TRUE(retry.result.duplicate());
  EXPECT_EQ(retry.result.case_id(), 3u);
  EXPECT_FALSE(retry.Changed());
  note.mutable_note()->set_text("something else");
  EXPECT_EQ(replica.Execute(note, At("2026-11-03T09:00:00+08:00")).result.code(),
            v1::ALREADY_EXISTS);

  // The replica goes on where the original stopped: same next id, same duplicate detection.
  v1::Command again = cmd::Report(kDrainClog, kGridA2);
  again.set_request_id("late-report");
  Effects a = machine_->Execute(again, At("2026-11-02T18:00:00+08:00"));
  Effects b = replica.Execute(again, At("2026-11-02T18:00:00+08:00"));
  EXPECT_TRUE(a.result.merged());
  EXPECT_EQ(a.result.case_id(), 3u);
  EXPECT_TRUE(MessageDifferencer::Equals(a.result, b.result));
}

// Checkpoints (checkpoint.cc): a machine restored from one, with the journal after it
// replayed, is the machine that replayed the whole journal.
class CheckpointTest : public CaseQueriesTest {
 protected:
  // The script, then the ladder steps due by Tuesday noon (escalations, supervision).
  void ScriptWithEscalations() {
    Script();
    for (Effects& fx : machine_->FireDue(At("2026-11-03T08:00:00+08:00"))) records_.push_back(fx.record);
  }
  // Thousands of cases (enough that a bulk replay schedules their timers on a second thread):
  // reports, some registered, dispatched, accepted or resolved, and the ladder steps due six
  // hours on.
  void ScriptThousands();
  static std::string CheckpointOf(const CaseMachine& m) {
    std::string bytes;
    m.WriteCheckpoint([&](std::string_view piece) { bytes.append(piece); });
    return bytes;
  }
  static std::unique_ptr<CaseMachine> Fresh() {
    auto m = CaseMachine::Create(casebus::testing::SmallCity());
    EXPECT_TRUE(m.has_value());
    return m ? std::move(*m) : nullptr;
  }
  // As recovery replays: history entries encoded beforehand, the reported cases taken.
  // Recovery prepares from the bytes read; the entries equal those made from the parsed record.
  static void ReplayPrepared(CaseMachine& m, const v1::JournalRecord& r) {
    const std::string bytes = r.SerializeAsString();
    CaseMachine::PreparedRecord p, q;
    ASSERT_TRUE(p.record.ParseFromString(bytes));
    q.record = p.record;
    CaseMachine::Prepare(p, bytes);
    CaseMachine::Prepare(q);
    ASSERT_TRUE(p.prepared);
    for (int i = 0; i < r.events_size(); ++i)
      ASSERT_EQ(p.history[static_cast<size_t>(i)], q.history[static_cast<size_t>(i)]) << r.DebugString();
    m.Replay(p);
  }
  static v1::StatusReply StatusOf(const CaseMachine& m) {
    v1::Query q;
    q.mutable_status();
    return m.Answer(q, At("2026-11-03T08:00:00+08:00")).status();
  }
  // Everything a user or the engine can observe of the two machines is the same.
  void ExpectSameMachine(const CaseMachine& copy, const CaseMachine& original) {
    ASSERT_EQ(copy.case_count(), original.case_count());
    original.ForEachCase([&](const v1::Case& c) {
      std::optional<v1::Case> a = original.CaseWithHistory(c.id()), b = copy.CaseWithHistory(c.id());
      ASSERT_TRUE(b.has_value()) << "case " << c.id();
      EXPECT_TRUE(MessageDifferencer::Equals(*a, *b))
          << "case " << c.id() << "\noriginal:\n" << a->DebugString() << "copy:\n" << b->DebugString();
    });
    EXPECT_EQ(copy.next_case_id(), original.next_case_id());
    EXPECT_EQ(copy.remembered_requests(), original.remembered_requests());
    EXPECT_EQ(copy.ScheduledTimers(), original.ScheduledTimers());
    EXPECT_EQ(copy.NextDueAt(), original.NextDueAt());
    size_t differences = 0;
    const auto diff = CompareLedgers(copy.ledger(), original.ledger(), 3, differences);
    EXPECT_EQ(differences, 0u) << (diff.empty() ? "" : std::string(DimName(diff[0].dim)) + " " + diff[0].key);
    EXPECT_TRUE(MessageDifferencer::Equals(StatusOf(copy), StatusOf(original)))
        << StatusOf(copy).DebugString() << "vs\n" << StatusOf(original).DebugString();
  }
};

TEST_F(CheckpointTest, RestoredMachineIsTheOriginal) {
  ScriptWithEscalations();
  ASSERT_GT(StatusOf(*machine_).escalations(), 0u) << "the script should escalate something";
  const std::string bytes = CheckpointOf(*machine_);
  auto copy = Fresh();
  ASSERT_TRUE(copy->RestoreCheckpoint(bytes).ok());
  ExpectSameMachine(*copy, *machine_);
  EXPECT_EQ(CheckpointOf(*copy), bytes) << "a restored machine writes the same checkpoint";

  // It goes on as the original would: retries answered, reuses refused, duplicates merged,
  // new cases numbered on, the same ladder steps fired at the same instants.
  const Millis later = At("2026-11-03T08:30:00+08:00");
  v1::Command note = cmd::Note(3);
  note.set_request_id("note-3");
  Effects retry = copy->Execute(note, later);
  EXPECT_TRUE(retry.result.duplicate());
  EXPECT_EQ(retry.result.case_id(), 3u);
  note.mutable_note()->set_text("something else");
  EXPECT_EQ(copy->Execute(note, later).result.code(), v1::ALREADY_EXISTS);
  auto both = [&](v1::Command c, const std::string& request_id) {
    c.set_request_id(request_id);
    Effects a = machine_->Execute(c, later), b = copy->Execute(c, later);
    EXPECT_EQ(a.result.code(), v1::OK) << a.result.message();
    EXPECT_TRUE(MessageDifferencer::Equals(a.result, b.result)) << a.result.DebugString() << b.result.DebugString();
    EXPECT_TRUE(MessageDifferencer::Equals(a.record, b.record));
    return a.result;
  };
  EXPECT_TRUE(both(cmd::Report(kDrainClog, kGridA2), "late-report").merged());
  const uint64_t id = both(cmd::Report(kRoadDamage, kGridA4), "new-report").case_id();
  EXPECT_EQ(id, 8u);
  both(cmd::Register(id), "new-register");
  both(cmd::Dispatch(id), "new-dispatch");
  std::vector<Effects> fa = machine_->FireDue(At("2026-11-10T12:00:00+08:00"));
  std::vector<Effects> fb = copy->FireDue(At("2026-11-10T12:00:00+08:00"));
  ASSERT_EQ(fa.size(), fb.size());
  EXPECT_GT(fa.size(), 0u) << "case 8 is overdue a week later";
  for (size_t i = 0; i < fa.size(); ++i)
    EXPECT_TRUE(MessageDifferencer::Equals(fa[i].record, fb[i].record)) << fa[i].record.DebugString();
  ExpectSameMachine(*copy, *machine_);
}

// A restored case stays as the checkpoint's bytes until it is used: queries scan it parsed on
// the side, a use parses it for good, idle slices parse the rest, and the bytes are let go when
// the last case is parsed.
TEST_F(CheckpointTest, RestoredCasesStayPackedUntilUsedAndTheBytesAreLetGoAfter) {
  ScriptWithEscalations();
  const std::string bytes = CheckpointOf(*machine_);
  auto copy = Fresh();
  auto owned = std::make_shared<std::string>(bytes);
  std::weak_ptr<std::string> watch = owned;
  ASSERT_TRUE(copy->RestoreCheckpoint(*owned, owned).ok());
  owned.reset();
  ASSERT_FALSE(watch.expired()) << "the machine keeps the bytes its cases point into";
  const size_t n = copy->case_count();
  ASSERT_GT(n, 3u);
  EXPECT_EQ(copy->restored_unparsed(), n);
  // Written back from the packed bytes, unchanged; counts and timers need no case parsed.
  EXPECT_EQ(CheckpointOf(*copy), bytes);
  EXPECT_TRUE(MessageDifferencer::Equals(StatusOf(*copy), StatusOf(*machine_)));
  EXPECT_EQ(copy->ScheduledTimers(), machine_->ScheduledTimers());
  EXPECT_EQ(copy->restored_unparsed(), n);
  // A list scans every case and parses only those it returns.
  v1::Query list;
  list.mutable_list()->set_limit(2);
  list.mutable_list()->set_by_deadline(true);
  const Millis now = At("2026-11-03T08:00:00+08:00");
  const v1::QueryResult a = machine_->Answer(list, now), b = copy->Answer(list, now);
  ASSERT_EQ(b.cases_size(), 2);
  EXPECT_TRUE(MessageDifferencer::Equals(a, b)) << a.DebugString() << "vs\n" << b.DebugString();
  EXPECT_EQ(copy->restored_unparsed(), n - 2);
  // Idle slices parse the rest, in id order; the last lets the bytes go.
  const size_t left = copy->ParseRestored(1);
  EXPECT_EQ(left, n - 3);
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(copy->ParseRestored(n), 0u);
  EXPECT_TRUE(watch.expired()) << "no case points into the checkpoint any more";
  ExpectSameMachine(*copy, *machine_);
  EXPECT_EQ(CheckpointOf(*copy), bytes);

  // Cases parsed by use alone let the bytes go as well.
  auto used = Fresh();
  owned = std::make_shared<std::string>(bytes);
  watch = owned;
  ASSERT_TRUE(used->RestoreCheckpoint(*owned, owned).ok());
  owned.reset();
  for (uint64_t id = 1; id < n; ++id) ASSERT_NE(used->Find(id), nullptr);
  EXPECT_FALSE(watch.expired());
  ASSERT_NE(used->Find(n), nullptr);
  EXPECT_EQ(used->restored_unparsed(), 0u);
  EXPECT_TRUE(watch.expired()) << "the last use lets the checkpoint go";
  ExpectSameMachine(*used, *machine_);
}

// Without an owner the machine keeps a copy: the caller's bytes may go at once.
TEST_F(CheckpointTest, RestoreWithoutAnOwnerKeepsItsOwnCopy) {
  ScriptWithEscalations();
  auto copy = Fresh();
  {
    std::string bytes = CheckpointOf(*machine_);
    ASSERT_TRUE(copy->RestoreCheckpoint(bytes).ok());
    std::fill(bytes.begin(), bytes.end(), '\xff');
  }
  ASSERT_EQ(copy->restored_unparsed(), copy->case_count());
  ExpectSameMachine(*copy, *machine_);
}

TEST_F(CheckpointTest, CheckpointAtAnyRecordPlusTheRestEqualsTheWholeJournal) {
  ScriptWithEscalations();
  ASSERT_GT(records_.size(), 30u);
  for (size_t k = 0; k <= records_.size(); ++k) {
    SCOPED_TRACE("checkpoint after " + std::to_string(k) + " records");
    auto before = Fresh();
    for (size_t i = 0; i < k; ++i) before->Replay(records_[i]);
    auto after = Fresh();
    ASSERT_TRUE(after->RestoreCheckpoint(CheckpointOf(*before)).ok());
    for (size_t i = k; i < records_.size(); ++i) after->Replay(records_[i]);
    ExpectSameMachine(*after, *machine_);
    if (HasFatalFailure()) return;
  }
}

// A bulk replay (recovery's: the cases' indexes taken out as each case is first touched and put
// back at the end; records prepared on the side) makes the machine the per-event replay makes:
// after a checkpoint at any record, paused mid-way (the ledger is compared there) and at its end.
TEST_F(CheckpointTest, BulkReplayAfterAnyCheckpointEqualsTheWholeJournal) {
  ScriptWithEscalations();
  ASSERT_GT(records_.size(), 30u);
  for (size_t k = 0; k <= records_.size(); k += 3) {
    SCOPED_TRACE("checkpoint after " + std::to_string(k) + " records");
    auto before = Fresh();
    for (size_t i = 0; i < k; ++i) before->Replay(records_[i]);
    auto bulk = Fresh();
    ASSERT_TRUE(bulk->RestoreCheckpoint(CheckpointOf(*before)).ok());
    const size_t pause = k + (records_.size() - k) / 2;
    bulk->BeginBulkReplay();
    for (size_t i = k; i < pause; ++i) bulk->Replay(records_[i]);
    bulk->EndBulkReplay();
    for (size_t i = k; i < pause; ++i) before->Replay(records_[i]);
    ExpectSameMachine(*bulk, *before);
    bulk->BeginBulkReplay();
    for (size_t i = pause; i < records_.size(); ++i) ReplayPrepared(*bulk, records_[i]);
    EXPECT_TRUE(bulk->bulk_replaying());
    bulk->EndBulkReplay();
    EXPECT_FALSE(bulk->bulk_replaying());
    ExpectSameMachine(*bulk, *machine_);
    if (HasFatalFailure()) return;
  }
  // The whole journal in bulk goes on as the original: duplicates merged, the same steps fired.
  auto bulk = Fresh();
  bulk->BeginBulkReplay();
  for (const auto& r : records_) ReplayPrepared(*bulk, r);
  bulk->EndBulkReplay();
  ExpectSameMachine(*bulk, *machine_);
  v1::Command late = cmd::Report(kDrainClog, kGridA2);
  late.set_request_id("late-report");
  const Millis at = At("2026-11-03T08:30:00+08:00");
  Effects a = machine_->Execute(late, at), b = bulk->Execute(late, at);
  EXPECT_TRUE(a.result.merged());
  EXPECT_TRUE(MessageDifferencer::Equals(a.result, b.result)) << a.result.DebugString() << b.result.DebugString();
  std::vector<Effects> fa = machine_->FireDue(At("2026-11-10T12:00:00+08:00"));
  std::vector<Effects> fb = bulk->FireDue(At("2026-11-10T12:00:00+08:00"));
  ASSERT_EQ(fa.size(), fb.size());
  EXPECT_GT(fa.size(), 0u);
  for (size_t i = 0; i < fa.size(); ++i) EXPECT_TRUE(MessageDifferencer::Equals(fa[i].record, fb[i].record));
  ExpectSameMachine(*bulk, *machine_);
}

// Bytes cut short or damaged where the record's events should be (which a read that parsed
// cannot give) are not trusted: the entries are encoded from the parsed record instead.
TEST_F(CheckpointTest, PrepareFromBytesThatDoNotMatchFallsBackToTheRecord) {
  Script();
  const v1::JournalRecord& r = records_.front();
  ASSERT_GT(r.events_size(), 0);
  CaseMachine::PreparedRecord want;
  want.record = r;
  CaseMachine::Prepare(want);
  const std::string good = r.SerializeAsString();
  for (const std::string& bytes : {std::string(), good.substr(0, good.size() / 2), std::string("\x22\xff\xff", 3),
                                   std::string(64, '\xff'), good + std::string(3, '\xff')}) {
    CaseMachine::PreparedRecord p;
    p.record = r;
    CaseMachine::Prepare(p, bytes);
    ASSERT_TRUE(p.prepared);
    for (int i = 0; i < r.events_size(); ++i) EXPECT_EQ(p.history[static_cast<size_t>(i)], want.history[static_cast<size_t>(i)]);
  }
}

// Recovery's replay (core/replay_journal.h): read and parsed on one thread, replayed in bulk on
// the caller's; `after` sees every record in order and may pause the bulk replay; a record that
// does not parse stops it there, naming its seq, with the records before it replayed.
TEST_F(CheckpointTest, ReplayJournalOnTwoThreadsEqualsTheWholeJournal) {
  ScriptWithEscalations();
  std::vector<std::string> bytes;
  for (const auto& r : records_) bytes.push_back(r.SerializeAsString());
  auto read = [&](const JournalSink& sink) {
    for (size_t i = 0; i < bytes.size(); ++i)
      if (!sink(i + 1, bytes[i])) break;
    return Status::Ok();
  };
  auto copy = Fresh();
  std::vector<uint64_t> seen;
  const uint64_t pause_at = bytes.size() / 2;
  uint64_t replayed = 0;
  ASSERT_TRUE(ReplayJournal(*copy, read, [&](uint64_t seq) {
    seen.push_back(seq);
    if (seq != pause_at) return;
    copy->EndBulkReplay();  // as the open does to compare the ledger
    copy->BeginBulkReplay();
  }, replayed).ok());
  EXPECT_EQ(replayed, bytes.size());
  ASSERT_EQ(seen.size(), bytes.size());
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
  EXPECT_FALSE(copy->bulk_replaying());
  ExpectSameMachine(*copy, *machine_);

  bytes[20] = "\xff\xff\xff";
  auto damaged = Fresh();
  Status s = ReplayJournal(*damaged, read, nullptr, replayed);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("journal record 21 does not parse"), std::string::npos) << s.ToString();
  EXPECT_EQ(replayed, 20u);
  EXPECT_FALSE(damaged->bulk_replaying());
  auto twenty = Fresh();
  for (size_t i = 0; i < 20; ++i) twenty->Replay(records_[i]);
  ExpectSameMachine(*damaged, *twenty);
  // The reader's own failure comes back as it was.
  auto failing = Fresh();
  s = ReplayJournal(*failing, [](const JournalSink&) { return Status::Corruption("scan journal: bad block"); }, nullptr, replayed);
  EXPECT_EQ(s.message(), "scan journal: bad block");
  EXPECT_EQ(replayed, 0u);
}

// Enough cases that the bulk replay schedules their timers on a second thread.
TEST_F(CheckpointTest, BulkReplayOfThousandsOfCasesEqualsTheReplay) {
  ScriptThousands();
  ASSERT_GT(machine_->case_count(), 4096u);
  auto bulk = Fresh();
  bulk->BeginBulkReplay();
  for (size_t i = 0; i < records_.size(); ++i) {
    if (i % 2) ReplayPrepared(*bulk, records_[i]);
    else bulk->Replay(records_[i]);
  }
  bulk->EndBulkReplay();
  ExpectSameMachine(*bulk, *machine_);
}

// A damaged record stops the replay there, naming it, with every record before it replayed,
// whichever thread parses it: the reader when it is far ahead (the replay slowed by `after`),
// the replaying thread when the reader is the slower (each read slowed), as it hands records
// over unparsed then.
TEST_F(CheckpointTest, ADamagedRecordStopsTheReplayWhicheverThreadParsesIt) {
  ScriptThousands();
  const size_t k = 3000;  // records_[k] is damaged: journal record k + 1
  ASSERT_GT(records_.size(), k + 2048);
  std::vector<std::string> bytes;
  for (const auto& r : records_) bytes.push_back(r.SerializeAsString());
  bytes[k] = "\xff\xff\xff";
  auto want = Fresh();
  for (size_t i = 0; i < k; ++i) want->Replay(records_[i]);
  for (bool slow_reader : {true, false}) {
    SCOPED_TRACE(slow_reader ? "the reader slower" : "the replay slower");
    auto read = [&](const JournalSink& sink) {
      for (size_t i = 0; i < bytes.size(); ++i) {
        if (slow_reader) std::this_thread::sleep_for(std::chrono::microseconds(20));
        if (!sink(i + 1, bytes[i])) break;
      }
      return Status::Ok();
    };
    auto after = [&](uint64_t) {
      if (!slow_reader) std::this_thread::sleep_for(std::chrono::microseconds(20));
    };
    auto machine = Fresh();
    uint64_t replayed = 0;
    Status s = ReplayJournal(*machine, read, after, replayed);
    EXPECT_EQ(s.code(), StatusCode::kCorruption);
    EXPECT_NE(s.message().find("journal record " + std::to_string(k + 1) + " does not parse"), std::string::npos)
        << s.ToString();
    EXPECT_EQ(replayed, k);
    EXPECT_FALSE(machine->bulk_replaying());
    ExpectSameMachine(*machine, *want);
  }
}

void CheckpointTest::ScriptThousands() {
  const char* grids[] = {kGridA1, kGridA2, kGridA3, kGridA4, kGridB1, kGridB2};
  const char* categories[] = {kDrainClog, kParking, kRoadDamage, kProperty};
  Millis now = Monday9();
  for (int i = 0; i < 6000; ++i) {
    now += 7'000;  // 7 s
    v1::Command report = cmd::ReportAt(categories[i % 4], grids[i % 6], 31.3 + (i % 97) * 1e-3, 120.6 + (i % 89) * 1e-3);
    Effects fx = Run(report, now);
    records_.push_back(fx.record);
    const uint64_t id = fx.result.case_id();
    if (fx.result.merged() || i % 5 == 4) continue;  // some stay reported
    records_.push_back(Run(cmd::Register(id), now).record);
    if (i % 3 == 0) continue;
    records_.push_back(Run(cmd::Dispatch(id), now).record);
    if (i % 7 == 0) records_.push_back(Run(cmd::Accept(id), now).record);
    if (i % 11 == 0) records_.push_back(Run(cmd::Resolve(id), now).record);
  }
  for (Effects& fx : machine_->FireDue(now + 6 * kHour)) records_.push_back(fx.record);
}

TEST_F(CheckpointTest, DamagedBytesAreRefusedWholeAndNeverCrash) {
  google::protobuf::LogSilencer quiet;  // damaged strings make protobuf log each parse
  ScriptWithEscalations();
  const std::string bytes = CheckpointOf(*machine_);
  // Every truncation misses the end mark at least. (A sample: a fresh machine per restore
  // costs its calendar's prefix sums.)
  ASSERT_GT(bytes.size(), 1000u);
  for (size_t n = 0; n < bytes.size(); n += n < 64 || n + 64 > bytes.size() ? 1 : 17) {
    Status s = Fresh()->RestoreCheckpoint(std::string_view(bytes).substr(0, n));
    ASSERT_EQ(s.code(), StatusCode::kCorruption) << "prefix of " << n << " bytes: " << s.ToString();
    ASSERT_NE(s.message().find("at byte"), std::string::npos) << s.message();
  }
  // A flipped byte is refused or, where it lands in bytes no check covers (a description),
  // restores; the file's checksum is what catches those (server/checkpoint_file).
  size_t refused = 0;
  for (size_t i = 0; i < bytes.size(); i += i < 64 ? 1 : 7) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
    Status s = Fresh()->RestoreCheckpoint(damaged);
    ASSERT_TRUE(s.ok() || s.code() == StatusCode::kCorruption) << "byte " << i << ": " << s.ToString();
    refused += s.ok() ? 0 : 1;
  }
  EXPECT_GT(refused, 0u);
  // Trailing bytes, another format, counts the bytes cannot hold.
  EXPECT_EQ(Fresh()->RestoreCheckpoint(bytes + "x").code(), StatusCode::kCorruption);
  std::string other = bytes;
  other[4] = 2;  // format 2
  EXPECT_NE(Fresh()->RestoreCheckpoint(other).message().find("format 2"), std::string::npos);
  const std::string huge("CBMC\x01\x10\x00\xff\xff\xff\xff\x0f", 12);
  Status s = Fresh()->RestoreCheckpoint(huge);
  EXPECT_NE(s.message().find("case count"), std::string::npos) << s.ToString();
  // Cases are 1..n: a next id that disagrees is damage.
  s = Fresh()->RestoreCheckpoint(std::string("CBMC\x01\x05\x00\x02", 8));
  EXPECT_NE(s.message().find("next case id 5 after 2 cases"), std::string::npos) << s.ToString();
  EXPECT_EQ(Fresh()->RestoreCheckpoint("").code(), StatusCode::kCorruption);
  // Only into a machine that has seen nothing.
  EXPECT_EQ(machine_->RestoreCheckpoint(bytes).code(), StatusCode::kFailedPrecondition);
}

using RequestIdTest = MachineTest;

TEST_F(RequestIdTest, SameRequestIdReturnsTheOriginalResult) {
  v1::Command report = cmd::Report(kDrainClog, kGridA1);
  report.set_request_id("intake-1");
  Effects first = Ok(report, Monday9());
  Effects retry = Run(report, Monday9() + kMinute);
  EXPECT_EQ(retry.result.code(), v1::OK);
  EXPECT_TRUE(retry.result.duplicate());
  EXPECT_EQ(retry.result.case_id(), first.result.case_id());
  EXPECT_EQ(retry.result.request_id(), "intake-1");
  EXPECT_FALSE(retry.Changed());
  EXPECT_TRUE(retry.work_orders.empty());
  EXPECT_EQ(machine_->case_count(), 1u);
  EXPECT_EQ(Get(1).history_size(), 1);

  v1::Command other = cmd::Report(kDrainClog, kGridA3);
  other.set_request_id("intake-1");
  Effects reused = Run(other, Monday9() + 2 * kMinute);
  EXPECT_EQ(reused.result.code(), v1::ALREADY_EXISTS);
  EXPECT_EQ(reused.result.field(), "request_id");
  EXPECT_FALSE(reused.Changed());
  EXPECT_EQ(machine_->case_count(), 1u);
}

// The config's window (SmallCity: the default, 168 h): a retry inside it gets the first
// result, a reuse with other content is refused; after it the id is forgotten, in the
// original and in a replica that replayed the journal alike.
TEST_F(RequestIdTest, RequestIdsAreRememberedForTheWindowThenForgotten) {
  ASSERT_EQ(machine_->config().intake().request_id_window_hours(), 168);
  constexpr Millis kWindow = 168 * kHour;
  std::vector<v1::JournalRecord> journal;
  auto run = [&](const v1::Command& c, Millis at) {
    Effects fx = Run(c, at);
    if (fx.Changed()) journal.push_back(fx.record);
    return fx;
  };
  v1::Command report = cmd::Report(kDrainClog, kGridA1);
  report.set_request_id("hotline-7");
  ASSERT_EQ(run(report, Monday9()).result.case_id(), 1u);
  EXPECT_EQ(machine_->remembered_requests(), 1u);

  Effects late_retry = run(report, Monday9() + kWindow);  // the window's last instant
  EXPECT_TRUE(late_retry.result.duplicate());
  EXPECT_EQ(late_retry.result.case_id(), 1u);
  v1::Command other = cmd::Report(kDrainClog, kGridA3);
  other.set_request_id("hotline-7");
  EXPECT_EQ(run(other, Monday9() + kWindow).result.code(), v1::ALREADY_EXISTS);

  // One millisecond later the id is forgotten: the same bytes are a new report, and a new
  // case (case 1 was reported a week ago, past the 24 h dedup window).
  Effects after = run(report, Monday9() + kWindow + 1);
  EXPECT_EQ(after.result.code(), v1::OK);
  EXPECT_FALSE(after.result.duplicate());
  EXPECT_EQ(after.result.case_id(), 2u);
  EXPECT_EQ(machine_->remembered_requests(), 1u) << "the old entry is gone, the new one kept";

  auto replica = CaseMachine::Create(casebus::testing::SmallCity());
  ASSERT_TRUE(replica.has_value());
  for (const auto& r : journal) (*replica)->Replay(r);
  EXPECT_EQ((*replica)->remembered_requests(), 1u);
  Effects replayed_retry = (*replica)->Execute(report, Monday9() + kWindow + 2);
  EXPECT_TRUE(replayed_retry.result.duplicate());
  EXPECT_EQ(replayed_retry.result.case_id(), 2u) << "the replica remembers the newer use";
}

TEST_F(RequestIdTest, RetriedDispatchReturnsItsWorkOrder) {
  uint64_t id = Reported();
  Ok(cmd::Register(id), Monday9());
  v1::Command dispatch = cmd::Dispatch(id);
  dispatch.set_request_id("dispatch-1");
  Effects first = Ok(dispatch, Monday9());
  Effects retry = Run(dispatch, Monday9() + kMinute);
  EXPECT_TRUE(retry.result.duplicate());
  EXPECT_EQ(retry.result.department(), first.result.department());
  EXPECT_EQ(retry.result.work_order_id(), first.result.work_order_id());
}

}  // namespace
}  // namespace casebus::core

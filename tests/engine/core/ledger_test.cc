// The maintained ledger must equal a count of the cases at every instant: the deadline timer
// (EV_OVERDUE) moves a case into 应结案 and overdue-open exactly when the scan would.

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "engine/core/ledger.h"
#include "tests/engine/core/machine_fixture.h"

namespace casebus::core {
namespace {

using Rows = std::map<std::string, v1::ClosureRow>;

Rows Scan(const CaseMachine& m, Millis as_of, bool by_department) {
  Rows rows;
  m.ForEachCase([&](const v1::Case& c) {
    if (c.state() == v1::MERGED) return;
    if (by_department) {
      if (!c.department().empty()) CountCase(rows[c.department()], c, as_of);
    } else {
      CountCase(rows[c.place().grid().substr(0, 6)], c, as_of);
    }
  });
  return rows;
}

// The counters of a row only (no name, rates or rank).
v1::ClosureRow CountersOf(const v1::ClosureRow& r) {
  v1::ClosureRow out;
  out.set_key(r.key());
  AddTo(out, CountsFrom(r));
  return out;
}

Rows FromAnswer(const google::protobuf::RepeatedPtrField<v1::ClosureRow>& answer) {
  Rows rows;
  for (const auto& r : answer) {
    if (CountsFrom(r) != Counts{}) rows[r.key()] = CountersOf(r);
  }
  return rows;
}

Rows Comparable(Rows rows) {
  Rows out;
  for (auto& [k, r] : rows) {
    r.set_key(k);
    if (CountsFrom(r) != Counts{}) out[k] = CountersOf(r);
  }
  return out;
}

TEST_F(MachineTest, LedgerEqualsACountOfTheCasesAtEveryInstant) {
  std::mt19937 rng(20261127);
  const std::vector<std::string> categories = {kDrainClog, kWellCover, kParking, kRoadDamage};
  const std::vector<std::string> grids = {kGridA1, kGridA2, kGridB1, kGridA4};
  std::vector<uint64_t> open;
  Millis now = Monday9();
  int checks = 0;
  for (int step = 0; step < 3000; ++step) {
    now += std::uniform_int_distribution<int>(1, 40)(rng) * kMinute;
    for (auto& fx : (*machine_).FireDue(now)) (void)fx;
    const int roll = std::uniform_int_distribution<int>(0, 9)(rng);
    if (roll < 3 || open.empty()) {
      v1::Command r = cmd::Report(categories[rng() % categories.size()], grids[rng() % grids.size()]);
      auto fx = Run(r, now);
      if (fx.result.code() == v1::OK && !fx.result.merged()) {
        Run(cmd::Register(fx.result.case_id()), now);
        Run(cmd::Dispatch(fx.result.case_id()), now);
        open.push_back(fx.result.case_id());
      }
    } else {
      const uint64_t id = open[rng() % open.size()];
      const v1::Case* c = (*machine_).Find(id);
      const std::string dept = c->department();
      v1::Command next;
      bool act = true;
      switch (c->state()) {
        case v1::DISPATCHED: next = roll < 8 ? cmd::Accept(id) : cmd::Return(id); break;
        case v1::RETURNED: next = cmd::Dispatch(id); break;
        case v1::ACCEPTED: next = roll < 8 ? cmd::Resolve(id) : cmd::Suspend(id); break;
        case v1::SUSPENDED: next = cmd::Resume(id); break;
        case v1::RESOLVED: next = cmd::Verify(id, roll != 9, roll == 9 ? "still there" : ""); break;
        case v1::VERIFIED: next = cmd::Close(id); break;
        default: act = false; break;
      }
      if (next.has_accept() || next.has_return_() || next.has_resolve()) next.set_actor(dept);
      if (act) (void)Run(next, now);
    }
    if (step % 50 == 0) {
      v1::Query q;
      q.mutable_closure();
      const v1::QueryResult answer = (*machine_).Answer(q, now);
      EXPECT_EQ(FromAnswer(answer.by_department()).size(),
                Comparable(Scan((*machine_), now, true)).size());
      for (const auto& [k, row] : Comparable(Scan((*machine_), now, true)))
        EXPECT_EQ(FromAnswer(answer.by_department())[k].DebugString(), row.DebugString())
            << "department " << k << " at step " << step;
      for (const auto& [k, row] : Comparable(Scan((*machine_), now, false)))
        EXPECT_EQ(FromAnswer(answer.by_district())[k].DebugString(), row.DebugString())
            << "district " << k << " at step " << step;
      // And the maintained day buckets equal a recount of every case's current fields.
      size_t differences = 0;
      const auto diff = CompareLedgers((*machine_).ledger(), (*machine_).Recount(), 5, differences);
      EXPECT_EQ(differences, 0u) << "first: " << (diff.empty() ? "" : diff[0].key) << " "
                                 << (diff.empty() ? "" : std::string(CounterName(diff[0].counter)));
      ++checks;
    }
  }
  EXPECT_EQ(checks, 60);
  // The scenario did reach the interesting states.
  const v1::QueryResult final_answer = [&] {
    v1::Query q;
    q.mutable_closure();
    return (*machine_).Answer(q, now);
  }();
  int64_t overdue = 0, closed = 0;
  for (const auto& r : final_answer.by_district()) overdue += r.overdue_open(), closed += r.closed();
  EXPECT_GT(closed, 0);
  EXPECT_GT(overdue, 0) << "the scenario should leave some cases overdue";
}

}  // namespace
}  // namespace casebus::core

namespace casebus::core {
namespace {

// An event reuses the case's previous ledger keys (Of's hint) — but after a reload that moves
// a category to another class, the next event counts the case under the new class, as a fresh
// lookup would.
TEST_F(MachineTest, LedgerClassFollowsAReloadedCategoryTreeAtTheNextEvent) {
  v1::CityConfig cfg = machine_->config();
  Ledger ledger(cfg, machine_->calendar());
  v1::Case c;
  c.set_id(1);
  c.set_category("200101");  // 下水道堵塞, class 2001
  c.mutable_place()->set_grid("320501001001001");
  c.set_source(v1::INSPECTOR);
  c.set_state(v1::REGISTERED);
  c.set_reported_at_ms(Monday9());
  c.set_registered_at_ms(Monday9());
  const Ledger::Contribution first = ledger.Of(&c);
  ledger.Add(first);
  auto classes = [&ledger] {
    std::map<std::string, int64_t> out;
    for (const auto& [k, counts] : ledger.Totals(Dim::kClass)) out[k] = counts[kRegistered];
    return out;
  };
  EXPECT_EQ(classes(), (std::map<std::string, int64_t>{{"2001", 1}}));

  // Unchanged config: the hint keeps every key, the case stays where it was.
  c.set_department("drainage");
  c.set_state(v1::DISPATCHED);
  const Ledger::Contribution second = ledger.Of(&c, &first.keys);
  EXPECT_EQ(second.keys[static_cast<int>(Dim::kClass)], first.keys[static_cast<int>(Dim::kClass)]);
  ledger.Move(first, second);
  EXPECT_EQ(classes(), (std::map<std::string, int64_t>{{"2001", 1}}));

  // Reload: 200101 now sits under 3001.
  for (auto& k : *cfg.mutable_categories())
    if (k.code() == "200101") k.set_parent("3001");
  ledger.SetClasses(cfg);
  c.set_state(v1::ACCEPTED);
  const Ledger::Contribution third = ledger.Of(&c, &second.keys);
  ledger.Move(second, third);
  EXPECT_EQ(classes(), (std::map<std::string, int64_t>{{"3001", 1}}));
}

}  // namespace
}  // namespace casebus::core

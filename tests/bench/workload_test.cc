// The benchmark workload: plans are deterministic, request ids unique per client, the shares
// follow the Mix, and casebus accepts every step of every plan — the proof that the load the
// benchmarks measure is legal and realistic.

#include "bench/workload/workload.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "engine/base/time_format.h"
#include "engine/core/case_machine.h"
#include "engine/core/command_check.h"
#include "engine/core/deduper.h"
#include "tests/support/test_city.h"

namespace casebus::bench {
namespace {

bool Has(const CasePlan& p, StepKind k) {
  return std::find(p.steps.begin(), p.steps.end(), k) != p.steps.end();
}

std::string Bytes(const v1::Command& c) { return c.SerializeAsString(); }

TEST(WorkloadTest, SameSeedGivesTheSamePlansAndCommands) {
  auto city = casebus::testing::SampleCity();
  Generator a(*city, 42, 3), b(*city, 42, 3), other_seed(*city, 43, 3);
  int differ = 0;
  for (int i = 0; i < 2000; ++i) {
    CasePlan p = a.NextCase(), q = b.NextCase(), r = other_seed.NextCase();
    ASSERT_EQ(p.n, q.n);
    ASSERT_EQ(p.category, q.category);
    ASSERT_EQ(p.grid, q.grid);
    ASSERT_EQ(p.lat, q.lat);
    ASSERT_EQ(p.lon, q.lon);
    ASSERT_EQ(p.source, q.source);
    ASSERT_EQ(p.duplicate, q.duplicate);
    ASSERT_EQ(p.steps, q.steps);
    for (size_t s = 0; s < p.steps.size(); ++s)
      ASSERT_EQ(Bytes(a.Command(p, s, 100 + i)), Bytes(b.Command(q, s, 100 + i)));
    differ += p.category != r.category || p.grid != r.grid || p.steps != r.steps;
  }
  EXPECT_GT(differ, 1000) << "another seed should give other plans";
}

TEST(WorkloadTest, ClientsNeverShareARequestId) {
  auto city = casebus::testing::SampleCity();
  std::unordered_set<std::string> ids;
  size_t commands = 0;
  for (int client = 0; client < 8; ++client) {
    Generator g(*city, 7, client);
    for (int i = 0; i < 1000; ++i) {
      CasePlan p = g.NextCase();
      for (size_t s = 0; s < p.steps.size(); ++s, ++commands)
        ids.insert(g.Command(p, s, 1).request_id());
    }
  }
  EXPECT_EQ(ids.size(), commands);
}

TEST(WorkloadTest, SharesFollowTheMix) {
  auto city = casebus::testing::SampleCity();
  const Mix mix;
  Generator g(*city, 1, 0, mix);
  constexpr int kCases = 100'000;
  int duplicate = 0, misroute = 0, failed = 0, voided = 0, steps = 0;
  std::map<v1::Source, int> sources;
  std::map<std::string, int> classes;  // by the code's first four digits
  std::set<std::string> grids;
  for (int i = 0; i < kCases; ++i) {
    CasePlan p = g.NextCase();
    ASSERT_EQ(p.steps.front(), StepKind::kReport);
    duplicate += p.duplicate;
    misroute += Has(p, StepKind::kReturn);
    failed += Has(p, StepKind::kVerifyFail);
    voided += Has(p, StepKind::kVoid);
    ++sources[p.source];
    ++classes[p.category.substr(0, 4)];
    grids.insert(p.grid);
    steps += static_cast<int>(p.steps.size());
    if (p.duplicate) {
      EXPECT_EQ(p.steps.size(), 1u);
    }
  }
  auto share = [&](int n) { return static_cast<double>(n) / kCases; };
  EXPECT_NEAR(share(duplicate), mix.duplicate, 0.01);
  EXPECT_NEAR(share(misroute), mix.misroute, 0.01);
  EXPECT_NEAR(share(failed), mix.failed_verify, 0.01);
  EXPECT_NEAR(share(voided), mix.void_after_register, 0.01);
  EXPECT_NEAR(share(sources[v1::INSPECTOR]), mix.inspector, 0.01);
  EXPECT_NEAR(share(sources[v1::HOTLINE]), mix.hotline, 0.01);
  EXPECT_NEAR(share(sources[v1::APP]), mix.app, 0.01);
  EXPECT_NEAR(share(sources[v1::SENSOR]), 1 - mix.inspector - mix.hotline - mix.app, 0.01);
  EXPECT_NEAR(static_cast<double>(steps) / kCases, g.MeanStepsPerCase(), 0.05);
  // Jiangmen's July 2024 volumes (DOMAIN.md §5) over ~13.5k cases: street order and
  // advertising dominate; misroutes lean a little toward classes with a second department.
  EXPECT_NEAR(share(classes["2005"]), 7921.0 / 13487, 0.02);
  EXPECT_NEAR(share(classes["2002"]), 3620.0 / 13487, 0.02);
  EXPECT_NEAR(share(classes["2001"]), 1420.0 / 13487, 0.02);
  EXPECT_GT(classes["1001"], 0) << "the other classes share the rest";
  EXPECT_EQ(grids.size(), static_cast<size_t>(city->grids_size())) << "every grid gets cases";
}

// Only planned duplicates may merge: a report lies so close to its grid's centroid that two
// grids' reports are never within the dedup radius, and eight clients reuse a (category, grid)
// only long after its last case (here: ≥ 1,000 cases of the client later).
TEST(WorkloadTest, OnlyDuplicatesComeWithinTheDedupRadius) {
  auto city = casebus::testing::SampleCity();
  double nearest = 1e9;
  for (const auto& a : city->grids())
    for (const auto& b : city->grids())
      if (&a != &b)
        nearest = std::min(nearest, core::DistanceMetres(a.lat(), a.lon(), b.lat(), b.lon()));
  const double slack = (nearest - city->dedup().radius_m()) / 2;
  ASSERT_GT(slack, 0);
  std::map<std::string, const v1::Grid*> grids;
  for (const auto& g : city->grids()) grids[g.code()] = &g;

  constexpr int kClients = 8;
  std::vector<Generator> generators;
  for (int c = 0; c < kClients; ++c) generators.emplace_back(*city, 3, c, Mix{}, kClients);
  std::map<std::pair<std::string, std::string>, uint64_t> last_use;  // (category, grid) → round
  for (uint64_t round = 0; round < 10'000; ++round) {
    for (auto& g : generators) {
      CasePlan p = g.NextCase();
      const v1::Grid& grid = *grids.at(p.grid);
      ASSERT_LT(core::DistanceMetres(p.lat, p.lon, grid.lat(), grid.lon()), slack);
      if (p.duplicate) continue;
      auto [it, fresh] = last_use.try_emplace({p.category, p.grid}, round);
      if (!fresh) {
        ASSERT_GE(round - it->second, 1000u) << p.category << " at " << p.grid;
        it->second = round;
      }
    }
  }
}

TEST(WorkloadTest, EveryCommandPassesTheEnginesFieldRules) {
  auto city = casebus::testing::SampleCity();
  Generator g(*city, 5, 1);
  std::set<StepKind> seen;
  for (int i = 0; i < 20'000; ++i) {
    CasePlan p = g.NextCase();
    for (size_t s = 0; s < p.steps.size(); ++s) {
      v1::Command c = g.Command(p, s, s == 0 ? 0 : p.n + 1);
      Status st = core::CheckCommand(c);
      ASSERT_TRUE(st.ok()) << StepName(p.steps[s]) << ": " << st.message();
      EXPECT_EQ(core::TargetCase(c), s == 0 ? 0 : p.n + 1);
      EXPECT_LE(c.request_id().size(), 128u);
      seen.insert(p.steps[s]);
    }
  }
  EXPECT_EQ(seen.size(), 10u) << "every step kind was built";
}

// Four clients, each with 64 cases open at once, take turns one command at a time — the way
// the benchmarks interleave them — on one CaseMachine: every step is answered OK, a duplicate
// merges into the very case it repeats, a misroute's second dispatch goes elsewhere, and
// every case ends closed or voided.
TEST(WorkloadTest, CasebusAcceptsEveryStepOfTwoThousandPlans) {
  auto city = casebus::testing::SampleCity();
  auto machine = core::CaseMachine::Create(city);
  ASSERT_TRUE(machine.has_value()) << machine.error().message();
  core::CaseMachine& m = **machine;

  struct Walk {
    CasePlan plan;
    size_t step = 0;
    uint64_t case_id = 0;
    std::string first_department;
    bool open = false;
  };
  constexpr int kClients = 4, kOpen = 64, kPlansPerClient = 500;
  std::vector<Generator> generators;
  std::vector<std::vector<Walk>> walks(kClients, std::vector<Walk>(kOpen));
  std::vector<int> drawn(kClients, 0);
  for (int c = 0; c < kClients; ++c) generators.emplace_back(*city, 11, c, Mix{}, kClients);
  // Open cases by exact point: what a duplicate must merge into.
  std::map<std::tuple<std::string, double, double>, uint64_t> open_at;

  Millis now = *ParseIso("2026-11-02T09:00:00+08:00");
  int commands = 0, merged = 0, ended = 0, redispatched = 0;
  for (bool busy = true; busy;) {
    busy = false;
    for (int slot = 0; slot < kOpen; ++slot) {
      for (int c = 0; c < kClients; ++c) {
        Walk& w = walks[c][slot];
        if (!w.open) {
          if (drawn[c] == kPlansPerClient) continue;
          w = Walk{generators[c].NextCase(), 0, 0, {}, true};
          ++drawn[c];
        }
        busy = true;
        const StepKind kind = w.plan.steps[w.step];
        v1::Command cmd = generators[c].Command(w.plan, w.step, w.case_id);
        core::Effects fx = m.Execute(cmd, now += 1000);
        ++commands;
        ASSERT_EQ(fx.result.code(), v1::OK)
            << "client " << c << " case " << w.plan.n << " step " << w.step << " ("
            << StepName(kind) << "), category " << w.plan.category << " at " << w.plan.grid << ": "
            << fx.result.message();
        const auto point = std::make_tuple(w.plan.category, w.plan.lat, w.plan.lon);
        if (kind == StepKind::kReport) {
          ASSERT_EQ(fx.result.merged(), w.plan.duplicate)
              << "case " << w.plan.n << " of client " << c << ", category " << w.plan.category;
          if (w.plan.duplicate) {
            auto it = open_at.find(point);
            ASSERT_NE(it, open_at.end()) << "a duplicate of no open case";
            EXPECT_EQ(fx.result.case_id(), it->second);
            ++merged;
            w.open = false;
            continue;
          }
          w.case_id = fx.result.case_id();
          open_at[point] = w.case_id;
        }
        if (kind == StepKind::kDispatch) {
          ASSERT_FALSE(fx.result.department().empty());
          if (w.first_department.empty()) {
            w.first_department = fx.result.department();
          } else {
            EXPECT_NE(fx.result.department(), w.first_department);
            ++redispatched;
          }
        }
        if (++w.step == w.plan.steps.size()) {
          const v1::CaseState state = m.Find(w.case_id)->state();
          EXPECT_TRUE(state == v1::CLOSED || state == v1::VOIDED) << core::StateName(state);
          open_at.erase(point);
          w.open = false;
          ++ended;
        }
      }
    }
  }
  EXPECT_EQ(merged + ended, kClients * kPlansPerClient);
  EXPECT_GT(merged, 20);        // ~3 % of 2,000
  EXPECT_GT(redispatched, 40);  // ~5 %
  EXPECT_GT(commands, 7 * kClients * kPlansPerClient - 1000);
}

}  // namespace
}  // namespace casebus::bench

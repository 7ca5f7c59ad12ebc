// RequestTable against a plain std::unordered_map model: random puts, lookups and forgetting
// across growth, chunk boundaries and long ids.

#include "engine/core/request_table.h"

#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

namespace casebus::core {
namespace {

RequestTable::Entry EntryFor(uint64_t n) {
  RequestTable::Entry e;
  e.payload_hash = n * 7919;
  e.case_id = n;
  e.work_order_case = n % 3 == 0 ? n : 0;
  e.work_order_n = static_cast<uint32_t>(n % 5);
  e.department = static_cast<int32_t>(n % 11) - 1;
  e.merged = n % 13 == 0;
  return e;
}

void ExpectSame(const RequestTable::Entry* got, const RequestTable::Entry& want, const std::string& id) {
  ASSERT_NE(got, nullptr) << id;
  EXPECT_EQ(got->payload_hash, want.payload_hash) << id;
  EXPECT_EQ(got->case_id, want.case_id) << id;
  EXPECT_EQ(got->work_order_case, want.work_order_case) << id;
  EXPECT_EQ(got->work_order_n, want.work_order_n) << id;
  EXPECT_EQ(got->department, want.department) << id;
  EXPECT_EQ(got->merged, want.merged) << id;
}

// What the table should hold: each id's entry and when it was added, and the ids in the order
// they were added (the forgetting order).
struct Model {
  std::unordered_map<std::string, std::pair<Millis, RequestTable::Entry>> ids;
  std::multimap<Millis, std::string> order;

  void Put(const std::string& id, Millis now, const RequestTable::Entry& e) {
    auto it = ids.find(id);
    if (it != ids.end()) {  // used again: a new place in the forgetting order
      auto [from, to] = order.equal_range(it->second.first);
      for (auto o = from; o != to; ++o)
        if (o->second == id) {
          order.erase(o);
          break;
        }
    }
    ids[id] = {now, e};
    order.emplace(now, id);
  }
  // Forgets the ids added before `before`, each passed to forgotten(id).
  template <typename F>
  void ForgetBefore(Millis before, F&& forgotten) {
    while (!order.empty() && order.begin()->first < before) {
      forgotten(order.begin()->second);
      ids.erase(order.begin()->second);
      order.erase(order.begin());
    }
  }
};

TEST(RequestTableTest, FindsWhatWasPutAndNothingElse) {
  RequestTable t;
  EXPECT_EQ(t.Find("a"), nullptr);
  t.Put("a", 1, EntryFor(1));
  t.Put("ab", 1, EntryFor(2));
  t.Put("", 1, EntryFor(3));  // the machine never remembers "", but the table copes
  ExpectSame(t.Find("a"), EntryFor(1), "a");
  ExpectSame(t.Find("ab"), EntryFor(2), "ab");
  ExpectSame(t.Find(""), EntryFor(3), "");
  EXPECT_EQ(t.Find("b"), nullptr);
  EXPECT_EQ(t.Find("a "), nullptr);
  EXPECT_EQ(t.size(), 3u);
}

TEST(RequestTableTest, PutAgainReplacesTheEntryAndTheWindowRunsFromTheLastUse) {
  RequestTable t;
  t.Put("x", 10, EntryFor(1));
  t.Put("y", 20, EntryFor(2));
  t.Put("x", 30, EntryFor(9));  // used again: remembered from 30
  ExpectSame(t.Find("x"), EntryFor(9), "x");
  EXPECT_EQ(t.size(), 2u);
  t.ForgetBefore(25);
  EXPECT_EQ(t.Find("y"), nullptr);
  ExpectSame(t.Find("x"), EntryFor(9), "x");
  EXPECT_EQ(t.size(), 1u);
  std::vector<std::pair<std::string, Millis>> walked;
  t.ForEach([&](std::string_view id, Millis at, const RequestTable::Entry&) { walked.emplace_back(id, at); });
  EXPECT_EQ(walked, (std::vector<std::pair<std::string, Millis>>{{"x", 30}}));
  t.ForgetBefore(31);
  EXPECT_EQ(t.Find("x"), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

TEST(RequestTableTest, MatchesAModelUnderRandomPutsAndForgetting) {
  std::mt19937_64 rng(20261127);
  RequestTable t;
  Model m;
  auto& model = m.ids;
  auto& order = m.order;
  Millis now = 0;
  Millis forgotten_before = 0;
  for (uint64_t n = 1; n <= 300'000; ++n) {
    now += static_cast<Millis>(rng() % 3);
    // Ids of varied length, some long (near the intake's 128-byte limit), some repeated.
    std::string id = "r" + std::to_string(rng() % 400'000);
    if (n % 97 == 0) id += std::string(100 + rng() % 28, 'x');
    m.Put(id, now, EntryFor(n));
    t.Put(id, now, EntryFor(n));
    if (n % 1000 == 0) {
      forgotten_before = now - 500;
      t.ForgetBefore(forgotten_before);
      m.ForgetBefore(forgotten_before, [](const std::string&) {});
      ASSERT_EQ(t.size(), model.size()) << "after " << n;
    }
    if (n % 10'000 == 0) {
      for (const auto& [mid, v] : model) ExpectSame(t.Find(mid), v.second, mid);
      // ForEach walks the ids in the order they were added (the forgetting order).
      auto want = order.begin();
      size_t walked = 0;
      t.ForEach([&](std::string_view fid, Millis at, const RequestTable::Entry& e) {
        ASSERT_NE(want, order.end());
        EXPECT_EQ(fid, want->second);
        EXPECT_EQ(at, want->first);
        ExpectSame(&e, model[want->second].second, want->second);
        ++want;
        ++walked;
      });
      EXPECT_EQ(walked, model.size());
      for (int k = 0; k < 1000; ++k) {
        const std::string other = "r" + std::to_string(rng() % 400'000);
        const RequestTable::Entry* got = t.Find(other);
        EXPECT_EQ(got != nullptr, model.count(other) == 1) << other;
      }
    }
  }
  // Forgetting everything leaves an empty table that still works.
  t.ForgetBefore(now + 1);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.Find(order.empty() ? "r1" : order.begin()->second), nullptr);
  t.Put("again", now + 2, EntryFor(5));
  ExpectSame(t.Find("again"), EntryFor(5), "again");
}

// The index grows by moving a few slots per Put into a table twice the size: every id stays
// findable, replaceable and forgettable while both tables exist, and forgetting an id that
// has not moved yet (a tombstone in the old table) does not hide the ids probing past it.
TEST(RequestTableTest, AnswersRightWhileItGrows) {
  std::mt19937_64 rng(20261128);
  RequestTable t;
  Model m;
  const auto& model = m.ids;
  Millis now = 0;
  size_t checks_while_growing = 0, growths = 0, forgotten_while_growing = 0;
  bool was_growing = false;
  std::vector<std::string> forgotten;  // while growing: must stay forgotten (unless put again)
  auto check_all = [&] {
    for (const auto& [mid, v] : model) ExpectSame(t.Find(mid), v.second, mid);
    for (const auto& f : forgotten) EXPECT_EQ(t.Find(f) != nullptr, model.count(f) == 1) << f;
    for (int k = 0; k < 200; ++k) {
      const std::string other = "g" + std::to_string(rng() % 200'000);
      EXPECT_EQ(t.Find(other) != nullptr, model.count(other) == 1) << other;
    }
  };
  // Ids arrive faster and faster (1, 2, then 4 a millisecond) while those older than 2 s are
  // forgotten: the table keeps growing while it forgets.
  for (uint64_t n = 1; n <= 40'000; ++n) {
    const uint64_t per_ms = n < 8'000 ? 1 : n < 20'000 ? 2 : 4;
    if (n % per_ms == 0) now += 1;
    const std::string id = "g" + std::to_string(rng() % 200'000);
    m.Put(id, now, EntryFor(n));  // a repeated id is often still in the old table while growing
    t.Put(id, now, EntryFor(n));
    if (t.growing() && !was_growing) {
      ++growths;  // the Put that started the move did not do all of it
      check_all();
    }
    was_growing = t.growing();
    if (n % 7 == 0) {  // forget the oldest few, also while growing
      const Millis before = now - 2000;
      const size_t had = model.size();
      t.ForgetBefore(before);
      m.ForgetBefore(before, [&](const std::string& id) {
        if (t.growing()) forgotten.push_back(id);
      });
      if (t.growing()) forgotten_while_growing += had - model.size();
      else forgotten.clear();
      ASSERT_EQ(t.size(), model.size()) << "after " << n;
    }
    if (t.growing() && n % 5 == 0) {
      check_all();
      ++checks_while_growing;
    }
  }
  check_all();
  std::printf("%zu growths, %zu checks while growing, %zu ids forgotten while growing\n", growths,
              checks_while_growing, forgotten_while_growing);
  EXPECT_GE(growths, 4u);  // 1024 slots at the start; ~8000 ids at the end
  EXPECT_GT(checks_while_growing, 20u);
  EXPECT_GT(forgotten_while_growing, 100u);
}

TEST(RequestTableTest, PrefetchedPutsAfterReserveEqualPlainPuts) {
  RequestTable plain, restored;
  restored.Reserve(50'000);
  for (uint64_t n = 1; n <= 50'000; ++n) {
    const std::string id = "req-" + std::to_string(n * 2654435761u % 1'000'003);
    plain.Put(id, static_cast<Millis>(n), EntryFor(n));
    const uint64_t h = restored.Prefetch(id);
    restored.Put(id, h, static_cast<Millis>(n), EntryFor(n));
  }
  EXPECT_EQ(restored.size(), plain.size());
  std::vector<std::string> a, b;
  plain.ForEach([&](std::string_view id, Millis, const RequestTable::Entry&) { a.emplace_back(id); });
  restored.ForEach([&](std::string_view id, Millis at, const RequestTable::Entry& e) {
    b.emplace_back(id);
    ExpectSame(plain.Find(id), e, std::string(id));
    EXPECT_EQ(plain.Find(id)->case_id, static_cast<uint64_t>(at));
  });
  EXPECT_EQ(a, b);
}

// A restore appends the ids in order and indexes them in one sorted pass: the same table as
// Puts one by one, across many 64 KiB stretches (50,000 ids: 131,072 slots, 32 stretches).
TEST(RequestTableTest, AppendedIdsIndexedInOnePassEqualPuts) {
  RequestTable plain, restored;
  std::vector<std::string> ids;
  for (uint64_t n = 1; n <= 50'000; ++n) {
    ids.push_back("req-" + std::to_string(n * 2654435761u % 1'000'003) + (n % 89 == 0 ? std::string(90, 'y') : ""));
    plain.Put(ids.back(), static_cast<Millis>(n), EntryFor(n));
    restored.Append(ids.back(), static_cast<Millis>(n), EntryFor(n));
  }
  EXPECT_EQ(restored.Find(ids[0]), nullptr) << "not indexed before BuildIndex";
  ASSERT_TRUE(restored.BuildIndex());
  ASSERT_EQ(restored.size(), plain.size());
  for (size_t k = 0; k < ids.size(); ++k) ExpectSame(restored.Find(ids[k]), EntryFor(k + 1), ids[k]);
  EXPECT_EQ(restored.Find("req-x"), nullptr);
  // It goes on like any table: puts, growth, forgetting.
  for (uint64_t n = 50'001; n <= 90'000; ++n) restored.Put("more-" + std::to_string(n), static_cast<Millis>(n), EntryFor(n));
  restored.ForgetBefore(25'000);
  EXPECT_EQ(restored.size(), 90'000u - 24'999u);
  EXPECT_EQ(restored.Find(ids[100]), nullptr);
  ExpectSame(restored.Find(ids[30'000]), EntryFor(30'001), ids[30'000]);
  ExpectSame(restored.Find("more-60000"), EntryFor(60'000), "more-60000");
}

// A bulk replay defers the index: Puts only append (ids repeated among them, forgetting as it
// goes), and IndexDeferred makes the table plain Puts make — in one sorted pass when the
// deferred ids are most of the table, one by one when they are few.
TEST(RequestTableTest, DeferredPutsIndexedAfterEqualPlainPuts) {
  std::mt19937_64 rng(20261128);
  RequestTable t;
  Model m;
  Millis now = 0;
  uint64_t n = 0;
  // (puts, deferred): a first run all deferred (one pass), then few deferred among many
  // indexed (one by one), then many (one pass again, over a table already indexed).
  const std::pair<int, bool> phases[] = {{60'000, true}, {40'000, false}, {3'000, true},
                                         {20'000, false}, {90'000, true}, {5'000, false}};
  for (auto [puts, deferred] : phases) {
    if (deferred) t.Defer();
    EXPECT_EQ(t.deferring(), deferred);
    for (int k = 0; k < puts; ++k) {
      ++n;
      now += static_cast<Millis>(rng() % 3);
      // Some ids come again (repeats, as a journal replayed under a longer window has).
      std::string id = "r" + std::to_string(rng() % 150'000);
      if (n % 97 == 0) id += std::string(100 + rng() % 28, 'x');
      m.Put(id, now, EntryFor(n));
      t.Put(id, now, EntryFor(n));
      if (n % 1000 == 0) {  // (while deferring, size() counts an id put again twice)
        t.ForgetBefore(now - 20'000);
        m.ForgetBefore(now - 20'000, [](const std::string&) {});
        if (!deferred) {
          ASSERT_EQ(t.size(), m.ids.size()) << "after " << n;
        }
      }
    }
    if (deferred) t.IndexDeferred();
    EXPECT_FALSE(t.deferring());
    ASSERT_EQ(t.size(), m.ids.size());
    for (const auto& [id, v] : m.ids) ExpectSame(t.Find(id), v.second, id);
    auto want = m.order.begin();
    size_t walked = 0;
    t.ForEach([&](std::string_view id, Millis at, const RequestTable::Entry& e) {
      ASSERT_NE(want, m.order.end());
      EXPECT_EQ(id, want->second);
      EXPECT_EQ(at, want->first);
      ExpectSame(&e, m.ids[want->second].second, want->second);
      ++want, ++walked;
    });
    EXPECT_EQ(walked, m.ids.size());
    for (int k = 0; k < 2000; ++k) {
      const std::string other = "r" + std::to_string(rng() % 150'000);
      EXPECT_EQ(t.Find(other) != nullptr, m.ids.count(other) == 1) << other;
    }
    if (HasFailure()) return;
  }
  // Repeats forgotten with the rest leave nothing behind.
  t.ForgetBefore(now + 1);
  EXPECT_EQ(t.size(), 0u);
  t.Put("again", now + 2, EntryFor(5));
  ExpectSame(t.Find("again"), EntryFor(5), "again");
}

TEST(RequestTableTest, BuildIndexRefusesAnIdAppendedTwice) {
  RequestTable t;
  for (uint64_t n = 1; n <= 5'000; ++n) t.Append("r" + std::to_string(n), static_cast<Millis>(n), EntryFor(n));
  t.Append("r1234", 5'001, EntryFor(1));
  EXPECT_FALSE(t.BuildIndex());
  RequestTable empty;
  EXPECT_TRUE(empty.BuildIndex());
  EXPECT_EQ(empty.Find("a"), nullptr);
}

}  // namespace
}  // namespace casebus::core

// RELIABILITY.md R5, issue 3: kill -9 around escalation deadlines. Real `casebus serve`
// processes on the real clock run a copy of the sample city whose ladders fire 1–5 s after
// dispatch (urgent-hours categories, tiny fractions). Each cycle dispatches a batch of new
// cases — every one of them due at the same instants, so each step is a burst — moves some
// older cases on (accept, resolve, verify) in the same frame, and SIGKILLs the server just
// before, during or just after one of the batch's step instants; some cycles also kill within
// 100 ms of the restart, while the backlog that came due during the downtime fires.
// Afterwards, from every case's history: each (stage, round, step) fired at most once, every
// step due before its stage ended fired exactly once and none after, in due order, at
// started_ms + fraction × limit_ms, never early, and within 2 s of its due instant or of the
// restart that followed it.

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "engine/base/clock.h"
#include "engine/cli/client.h"
#include "engine/config/loader.h"
#include "tests/integration/server_process.h"

namespace casebus {
namespace {

namespace fs = std::filesystem;
using testing::ServerProcess;

constexpr int kBatch = 24;      // new cases per cycle, all dispatched in one frame
constexpr Millis kLate = 2000;  // RELIABILITY.md §5: fires within 2 s of due or restart
constexpr Millis kOpen = std::numeric_limits<Millis>::max();

// Steps come due 1.08–4.32 s after dispatch (limits: accept 0.5 h, handle and verify 2 h).
constexpr const char* kLadder = R"(escalation:
  ladder:
    accept:
      - {id: "a1", fraction: 0.0007, target: "responsible_department"}
      - {id: "a2", fraction: 0.0014, target: "district_center", light: "yellow"}
      - {id: "a3", fraction: 0.0021, target: "district_center"}
    handle:
      - {id: "h1", fraction: 0.00015, target: "responsible_department"}
      - {id: "h2", fraction: 0.0003, target: "responsible_department", light: "yellow"}
      - {id: "h3", fraction: 0.00045, target: "district_center", light: "red"}
      - {id: "h4", fraction: 0.0006, target: "leadership", light: "red", supervision: true}
    verify:
      - {id: "v1", fraction: 0.0002, target: "district_center"}
      - {id: "v2", fraction: 0.0004, target: "district_center"}
)";

Millis NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Tracked {
  uint64_t n = 0;  // picks the (category, grid) pair, unique so nothing merges
  uint64_t case_id = 0;
  int acked = 0;  // lifecycle steps acknowledged: 3 dispatched, 4 accepted, 5 resolved, 6 verified
};

// One stage clock's run: from its start to the event that stopped it (kOpen: still running).
struct Round {
  v1::Stage stage;
  Millis started, limit, end = kOpen;
};

struct Interval {  // the server was up (could fire) within [start, end]
  Millis start, end = kOpen;
};

class DeadlineKill9Test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/casebus-deadline-kill9-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ifstream in(CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml");
    std::stringstream text;
    text << in.rdbuf();
    std::string yaml = text.str();
    const size_t from = yaml.find("\nescalation:\n"), to = yaml.find("  district_centers:", from);
    ASSERT_NE(from, std::string::npos);
    ASSERT_NE(to, std::string::npos);
    yaml.replace(from + 1, to - from - 1, kLadder);
    auto cfg = config::LoadCityConfigText(yaml, "deadline-city.yaml");
    ASSERT_TRUE(cfg) << cfg.error().message();
    config_ = *cfg;
    std::ofstream(dir_ + "/city.yaml") << yaml;
    // Wall-clock categories with accept 0.5 h, handle 2 h, verify 2 h and no conditions.
    auto is = [](const v1::TimeLimit& l, double v) {
      return l.clock() == v1::URGENT_HOURS && l.value() == v;
    };
    for (const auto& c : config_->categories())
      if (c.conditions_size() == 0 && is(c.limits().accept(), 0.5) && is(c.limits().handle(), 2) &&
          is(c.limits().verify(), 2))
        categories_.push_back(c.code());
    ASSERT_FALSE(categories_.empty());
    for (const auto& g : config_->grids()) grids_.push_back(g.code());
    const auto& ladder = config_->escalation().ladder();
    for (const auto& s : ladder.accept())
      offsets_.push_back(std::llround(s.fraction() * 0.5 * kHour));
    for (const auto& s : ladder.handle())
      offsets_.push_back(std::llround(s.fraction() * 2 * kHour));
    for (const auto& s : ladder.verify())
      offsets_.push_back(std::llround(s.fraction() * 2 * kHour));
    std::sort(offsets_.begin(), offsets_.end());
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(testing::FreePort());
  }
  void TearDown() override {
    if (!HasFailure())
      fs::remove_all(dir_);
    else
      std::fprintf(stderr, "kept %s for inspection\n", dir_.c_str());
  }

  std::unique_ptr<ServerProcess> StartServer() {
    auto s = std::make_unique<ServerProcess>(
        CASEBUS_BIN,
        std::vector<std::string>{"serve", "--config", dir_ + "/city.yaml", "--data", dir_ + "/data",
                                 "--endpoint", endpoint_, "--endpoint-file", dir_ + "/endpoint", "--http", "127.0.0.1:0"},
        dir_ + "/server.log");
    up_.push_back({NowMs()});
    if (!s->Start(dir_ + "/endpoint")) return nullptr;
    client_ = std::make_unique<cli::Client>(endpoint_);
    return s;
  }
  void KillServer(ServerProcess& s) {
    s.Kill();
    up_.back().end = NowMs();
  }

  // Sends until answered (same request ids on retry); false after 20 s without a reply.
  bool Send(const v1::Request& req, v1::Reply& reply) {
    const Millis deadline = NowMs() + 20000;
    while (NowMs() < deadline) {
      auto r = client_->Call(req, std::chrono::milliseconds(2000));
      if (r) {
        reply = std::move(*r);
        return true;
      }
      client_ = std::make_unique<cli::Client>(endpoint_);  // drop a late reply with the socket
    }
    return false;
  }

  v1::Command NextStep(const Tracked& t) {
    v1::Command c;
    c.set_request_id("c" + std::to_string(t.n) + "-s" + std::to_string(t.acked));
    c.set_actor("deadline-kill9");
    switch (t.acked) {
      case 0: {
        auto* r = c.mutable_report();
        r->set_category(categories_[t.n % categories_.size()]);
        r->mutable_place()->set_grid(grids_[t.n / categories_.size()]);
        r->set_source(v1::INSPECTOR);
        r->set_description(c.request_id());
        break;
      }
      case 1:
        c.mutable_register_()->set_case_id(t.case_id);
        break;
      case 2:
        c.mutable_dispatch()->set_case_id(t.case_id);
        break;
      case 3:
        c.mutable_accept()->set_case_id(t.case_id);
        break;
      case 4:
        c.mutable_resolve()->set_case_id(t.case_id);
        c.mutable_resolve()->add_evidence("photo://" + std::to_string(t.n));
        break;
      default:
        c.mutable_verify()->set_case_id(t.case_id);
        c.mutable_verify()->set_passed(true);
        break;
    }
    return c;
  }

  // Sends the next step of each listed case in one frame (one batch, one `now`); with
  // `show`, the frame also asks for that case. Each acknowledged step advances its case.
  void Advance(const std::vector<Tracked*>& cases, uint64_t show, v1::Reply& reply) {
    v1::Request req;
    req.set_version(1);
    for (const Tracked* t : cases) *req.add_commands() = NextStep(*t);
    if (show) req.mutable_query()->mutable_show()->set_case_id(show);
    ASSERT_TRUE(Send(req, reply)) << "no reply";
    ASSERT_FALSE(reply.has_error()) << reply.error().message();
    ASSERT_EQ(reply.results_size(), static_cast<int>(cases.size()));
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto& r = reply.results(static_cast<int>(i));
      ASSERT_EQ(r.code(), v1::OK) << r.request_id() << ": " << r.message();
      if (cases[i]->acked == 0) {
        ASSERT_FALSE(r.merged()) << r.request_id();
        cases[i]->case_id = r.case_id();
      }
      ++cases[i]->acked;
    }
  }

  // One cycle's work: a new batch reported, registered, then dispatched together with some
  // older cases' next steps. Returns the batch's dispatch instant (the server's clock).
  Millis DispatchBatch(std::mt19937& rng) {
    std::vector<Tracked*> moving;
    for (auto& t : cases_)
      if (t.acked >= 3 && t.acked < 6 && std::bernoulli_distribution(0.3)(rng))
        moving.push_back(&t);
    const size_t first = cases_.size();
    for (int i = 0; i < kBatch; ++i) cases_.push_back({next_n_++});
    std::vector<Tracked*> batch;
    for (size_t i = first; i < cases_.size(); ++i) batch.push_back(&cases_[i]);
    v1::Reply reply;
    for (int step = 0; step < 3; ++step) {
      std::vector<Tracked*> frame = batch;
      if (step == 2) frame.insert(frame.end(), moving.begin(), moving.end());
      Advance(frame, step == 2 ? batch[0]->case_id : 0, reply);
      if (::testing::Test::HasFatalFailure()) return 0;
    }
    EXPECT_EQ(reply.query().code(), v1::OK);
    return reply.query().found().handle_clock().started_ms();
  }

  // Escalation `e` happened while the server was up: not early, and within kLate of its due
  // instant or of the start that followed it; no earlier run sat on it for longer than kLate.
  void CheckTiming(const v1::CaseEvent& e, uint64_t case_id) {
    const Millis due = e.due_at_ms(), at = e.at_ms();
    EXPECT_GE(at, due) << "case " << case_id << " " << e.step_id() << " fired early";
    const Interval* fired = nullptr;
    for (const auto& u : up_)
      if (u.start <= at && at <= u.end) fired = &u;
    ASSERT_NE(fired, nullptr) << "case " << case_id << " " << e.step_id() << " fired at " << at
                              << " while no server ran";
    const Millis late = at - std::max(due, fired->start);
    max_late_ = std::max(max_late_, late);
    EXPECT_LE(late, kLate) << "case " << case_id << " " << e.step_id() << " due " << due
                           << " fired " << late << " ms late";
    for (const auto& u : up_) {
      if (&u == fired || due < u.start || u.end <= due || at < u.end) continue;
      ++refired_;  // due while an earlier run was up, durable only after a restart
      if (u.end - due > kLate)
        ADD_FAILURE() << "case " << case_id << " " << e.step_id() << " due " << due
                      << " missed by a run that lasted until " << u.end << "; fired at " << at;
    }
  }

  // A case's stage rounds and the escalations fired in each, keyed (round, step id).
  struct Fold {
    std::vector<Round> rounds;
    std::map<std::tuple<int, std::string>, std::vector<const v1::CaseEvent*>> fired;
  };

  // The rules of the brief, checked on one case's history.
  void CheckCase(const v1::Case& c, const Tracked& t) {
    static const v1::CaseState kState[] = {v1::STATE_UNSPECIFIED, v1::REPORTED, v1::REGISTERED,
                                           v1::DISPATCHED,        v1::ACCEPTED, v1::RESOLVED,
                                           v1::VERIFIED};
    EXPECT_EQ(c.state(), kState[t.acked]) << "case " << c.id() << ": an acknowledged step is lost";
    Fold fold;
    FoldHistory(c, fold);
    const auto& ladder = config_->escalation().ladder();
    for (size_t r = 0; r < fold.rounds.size(); ++r) {
      const Round& round = fold.rounds[r];
      const auto& steps = round.stage == v1::ACCEPT   ? ladder.accept()
                          : round.stage == v1::HANDLE ? ladder.handle()
                                                      : ladder.verify();
      for (int i = 0; i < steps.size(); ++i) {
        const Millis due =
            round.started + std::llround(steps[i].fraction() * static_cast<double>(round.limit));
        const auto& got = fold.fired[{static_cast<int>(r), steps[i].id()}];
        const std::string what = "case " + std::to_string(c.id()) + " stage " +
                                 v1::Stage_Name(round.stage) + " step " + steps[i].id() + " due " +
                                 std::to_string(due);
        const std::string ended = round.end == kOpen ? std::string("is still running")
                                                     : "ended at " + std::to_string(round.end);
        if (got.size() > 1) ADD_FAILURE() << what << " fired " << got.size() << " times";
        if (due <= round.end && got.empty())
          ADD_FAILURE() << what << " missed; its stage " << ended;
        if (due > round.end && !got.empty()) ADD_FAILURE() << what << " fired; its stage " << ended;
        for (const auto* e : got) {
          EXPECT_EQ(e->due_at_ms(), due) << what;
          EXPECT_EQ(e->step_index(), i) << what;
        }
        expected_ += due <= round.end ? 1 : 0;
      }
    }
  }

  // The test's cases have one round per stage (one dispatch, no suspension, no rework), so the
  // case's own clocks give each stage's start and limit, and a stopped wall clock has consumed
  // exactly its run: it ended at started_ms + consumed_ms. The events that started and stopped
  // each stage must agree. Then each escalation is checked for order and timing, and the
  // notice file it implies is noted.
  void FoldHistory(const v1::Case& c, Fold& fold) {
    std::map<v1::Stage, int> current;    // stage → index into fold.rounds
    std::map<v1::EventType, Millis> at;  // first instant of each event type
    for (const auto& e : c.history()) at.emplace(e.type(), e.at_ms());
    const std::tuple<v1::Stage, const v1::StageClock&, v1::EventType, v1::EventType> stages[] = {
        {v1::ACCEPT, c.accept_clock(), v1::EV_DISPATCHED, v1::EV_ACCEPTED},
        {v1::HANDLE, c.handle_clock(), v1::EV_DISPATCHED, v1::EV_RESOLVED},
        {v1::VERIFY, c.verify_clock(), v1::EV_RESOLVED, v1::EV_VERIFIED}};
    for (const auto& [stage, k, begins, ends] : stages) {
      if (k.started_ms() == 0) continue;
      const Millis end = k.running() ? kOpen : k.started_ms() + k.consumed_ms();
      EXPECT_FALSE(k.working()) << "case " << c.id() << ": the test's limits are wall time";
      EXPECT_EQ(k.started_ms(), at[begins]) << "case " << c.id() << " " << v1::Stage_Name(stage);
      EXPECT_EQ(end, at.count(ends) ? at[ends] : kOpen)
          << "case " << c.id() << " " << v1::Stage_Name(stage);
      fold.rounds.push_back({stage, k.started_ms(), k.limit_ms(), end});
      current[stage] = static_cast<int>(fold.rounds.size()) - 1;
    }
    Millis last_due = 0;
    for (const auto& e : c.history()) {
      if (e.type() != v1::EV_ESCALATED) continue;
      ++escalations_;
      auto it = current.find(e.stage());
      ASSERT_NE(it, current.end()) << "case " << c.id() << " escalated a stage never started";
      fold.fired[{it->second, e.step_id()}].push_back(&e);
      EXPECT_GE(e.due_at_ms(), last_due) << "case " << c.id() << ": escalations out of due order";
      last_due = e.due_at_ms();
      CheckTiming(e, c.id());
      if (e.notify().empty()) continue;
      std::string stage = v1::Stage_Name(e.stage());
      std::transform(stage.begin(), stage.end(), stage.begin(), ::tolower);
      notices_.insert(SpoolOf(e.notify()) + "/notices/n" + std::to_string(c.id()) + "-" + stage +
                      "-" + e.step_id() + "-" + std::to_string(c.dispatch_count()) + ".json");
    }
  }

  // One cycle: start the server (and sometimes crash the restart itself, while the backlog due
  // during the downtime fires), dispatch a batch, kill just before, during or just after the
  // burst of one of its steps.
  void Cycle(int cycle, std::mt19937& rng) {
    static const char* kModes[] = {"before", "during", "after"};
    const Millis started = NowMs();
    auto server = StartServer();
    ASSERT_TRUE(server) << "cycle " << cycle << ": server did not start; see " << dir_
                        << "/server.log";
    const bool twice = std::bernoulli_distribution(0.3)(rng);
    if (twice) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 100)(rng)));
      KillServer(*server);
      ++double_kills_;
      server = StartServer();
      ASSERT_TRUE(server) << "cycle " << cycle << ": restart failed";
    }
    const Millis dispatched = DispatchBatch(rng);
    if (HasFatalFailure()) return;
    ASSERT_GT(dispatched, 0);
    last_dispatch_ = dispatched;
    const int mode = std::uniform_int_distribution<int>(0, 2)(rng);
    const Millis step =
        dispatched + offsets_[std::uniform_int_distribution<size_t>(0, offsets_.size() - 1)(rng)];
    const Millis kill_at = mode == 0   ? step - std::uniform_int_distribution<int>(1, 50)(rng)
                           : mode == 1 ? step + std::uniform_int_distribution<int>(0, 4)(rng)
                                       : step + std::uniform_int_distribution<int>(5, 300)(rng);
    std::this_thread::sleep_until(
        std::chrono::system_clock::time_point(std::chrono::milliseconds(kill_at)));
    KillServer(*server);
    std::printf("  cycle %2d: up after %lld ms%s; killed %s the step at +%lld ms (%+lld ms)\n",
                cycle, static_cast<long long>(dispatched - started),
                twice ? " (killed once within 100 ms)" : "", kModes[mode],
                static_cast<long long>(step - dispatched), static_cast<long long>(kill_at - step));
  }

  // Each escalation's notice reached its target's spool, and no notice exists for a step that
  // did not fire (a fire lost at a kill must not have been delivered).
  void CheckNoticesSpooled() {
    std::set<std::string> spooled;
    for (const Millis until = NowMs() + 30000; NowMs() < until;) {
      spooled = SpooledNotices();
      if (std::includes(spooled.begin(), spooled.end(), notices_.begin(), notices_.end())) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::vector<std::string> missing, phantom;
    std::set_difference(notices_.begin(), notices_.end(), spooled.begin(), spooled.end(),
                        std::back_inserter(missing));
    std::set_difference(spooled.begin(), spooled.end(), notices_.begin(), notices_.end(),
                        std::back_inserter(phantom));
    EXPECT_TRUE(missing.empty()) << missing.size() << " notices never delivered, e.g. "
                                 << missing.front();
    EXPECT_TRUE(phantom.empty()) << phantom.size() << " notices of steps that never fired, e.g. "
                                 << phantom.front();
    std::printf("deadline_kill9: %zu notices delivered\n", spooled.size());
  }

  std::string SpoolOf(const std::string& department) const {
    for (const auto& d : config_->departments())
      if (d.id() == department) return dir_ + "/data/" + d.adapter().spool().directory();
    ADD_FAILURE() << "unknown department " << department;
    return "";
  }

  // Every notice file in the departments' spools.
  std::set<std::string> SpooledNotices() const {
    std::set<std::string> found;
    std::error_code ec;
    for (const auto& d : config_->departments()) {
      const fs::path dir = dir_ + "/data/" + d.adapter().spool().directory() + "/notices";
      for (const auto& f : fs::directory_iterator(dir, ec))
        if (f.path().extension() == ".json") found.insert(f.path().string());
    }
    return found;
  }

  std::string dir_, endpoint_;
  std::set<std::string> notices_;  // the notice files the fired escalations imply
  std::shared_ptr<const v1::CityConfig> config_;
  std::vector<std::string> categories_, grids_;
  std::vector<Millis> offsets_;  // every step's offset from its stage's start, ascending
  std::unique_ptr<cli::Client> client_;
  std::vector<Interval> up_;
  std::deque<Tracked> cases_;  // a deque: Tracked* stay valid as batches are added
  uint64_t next_n_ = 0, escalations_ = 0, expected_ = 0, refired_ = 0;
  Millis max_late_ = 0, last_dispatch_ = 0;
  int double_kills_ = 0;
};

TEST_F(DeadlineKill9Test, NoStepMissedNoneFiredTwiceAcrossKillNine) {
  const char* env = std::getenv("CASEBUS_DEADLINE_KILL9_CYCLES");
  const int cycles = env ? std::atoi(env) : 20;
  const char* seed_env = std::getenv("CASEBUS_DEADLINE_KILL9_SEED");
  const unsigned seed = seed_env ? static_cast<unsigned>(std::strtoul(seed_env, nullptr, 10))
                                 : std::random_device{}();
  std::printf("deadline_kill9: %d cycles, seed %u (CASEBUS_DEADLINE_KILL9_SEED replays)\n", cycles,
              seed);
  ASSERT_LE(static_cast<size_t>(cycles) * kBatch, categories_.size() * grids_.size());
  std::mt19937 rng(seed);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    Cycle(cycle, rng);
    ASSERT_FALSE(HasFatalFailure());
  }

  // The last run: wait until every step the test scheduled is due and fired.
  auto server = StartServer();
  ASSERT_TRUE(server);
  const Millis all_due = last_dispatch_ + offsets_.back();
  v1::Request status;
  status.set_version(1);
  status.mutable_query()->mutable_status();
  v1::Reply st;
  for (;;) {
    ASSERT_TRUE(Send(status, st));
    const auto& s = st.query().status();
    if (NowMs() > all_due && (s.timers() == 0 || s.next_timer_ms() > all_due)) break;
    ASSERT_LT(NowMs(), all_due + 20000) << "timers never settled: next " << s.next_timer_ms();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(st.query().status().cases(), cases_.size()) << "phantom or lost cases";
  EXPECT_TRUE(st.query().status().healthy());

  for (const auto& t : cases_) {
    v1::Request show;
    show.set_version(1);
    show.mutable_query()->mutable_show()->set_case_id(t.case_id);
    v1::Reply r;
    ASSERT_TRUE(Send(show, r));
    ASSERT_EQ(r.query().code(), v1::OK) << "case " << t.case_id;
    CheckCase(r.query().found(), t);
  }
  std::printf(
      "deadline_kill9: %zu cases, %llu escalations (%llu due before their stage ended), "
      "%llu due while a killed run was up but durable only after restart, %d double "
      "kills, latest firing %lld ms after due or restart\n",
      cases_.size(), static_cast<unsigned long long>(escalations_),
      static_cast<unsigned long long>(expected_), static_cast<unsigned long long>(refired_),
      double_kills_, static_cast<long long>(max_late_));
  CheckNoticesSpooled();
  EXPECT_EQ(escalations_, expected_);
  EXPECT_GT(expected_, 2 * cases_.size()) << "too few steps came due to test anything";
  EXPECT_EQ(server->Terminate(), 0) << "SIGTERM should stop cleanly";
}

// The checker has teeth: a hand-made history with a step fired twice, one missed, one early
// and one after its stage ended gives exactly those four failures.
TEST_F(DeadlineKill9Test, CheckerCatchesDoubleMissedEarlyAndLateSteps) {
  const Millis t0 = 1'767'225'600'000;  // 2026-01-01T00:00Z
  up_.push_back({t0 - 100});
  v1::Case c;
  c.set_id(7);
  c.set_state(v1::ACCEPTED);
  auto add = [&](v1::EventType type, Millis at) {
    auto* e = c.add_history();
    e->set_type(type);
    e->set_case_id(7);
    e->set_at_ms(at);
    return e;
  };
  add(v1::EV_DISPATCHED, t0);
  c.set_dispatch_count(1);
  for (auto [k, limit] :
       {std::pair{c.mutable_accept_clock(), kHour / 2}, {c.mutable_handle_clock(), 2 * kHour}}) {
    k->set_running(true);
    k->set_started_ms(t0);
    k->set_anchor_ms(t0);
    k->set_limit_ms(limit);
  }
  // Accepted at +2300: the accept clock stopped, having consumed its 2.3 s.
  c.mutable_accept_clock()->set_running(false);
  c.mutable_accept_clock()->set_anchor_ms(0);
  c.mutable_accept_clock()->set_consumed_ms(2300);
  const auto& ladder = config_->escalation().ladder();
  auto fire = [&](v1::Stage stage, int index, Millis at) {
    const auto& step = stage == v1::ACCEPT ? ladder.accept(index) : ladder.handle(index);
    const Millis limit = stage == v1::ACCEPT ? kHour / 2 : 2 * kHour;
    auto* e = add(v1::EV_ESCALATED, at);
    e->set_stage(stage);
    e->set_step_id(step.id());
    e->set_step_index(index);
    e->set_due_at_ms(t0 + std::llround(step.fraction() * static_cast<double>(limit)));
  };
  fire(v1::HANDLE, 0, t0 + 1080);
  fire(v1::HANDLE, 0, t0 + 1085);  // twice
  fire(v1::ACCEPT, 0, t0 + 1200);  // early: due at +1260
  // h2, due at +2160, never fires
  add(v1::EV_ACCEPTED, t0 + 2300);
  fire(v1::ACCEPT, 1, t0 + 2520);  // after the accept stage ended at +2300
  fire(v1::HANDLE, 2, t0 + 3240);
  fire(v1::HANDLE, 3, t0 + 4320);

  ::testing::TestPartResultArray failures;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    CheckCase(c, Tracked{0, 7, 4});
  }
  auto count = [&](const std::string& a, const std::string& b) {
    int n = 0;
    for (int i = 0; i < failures.size(); ++i) {
      const std::string m = failures.GetTestPartResult(i).message();
      n += m.find(a) != std::string::npos && m.find(b) != std::string::npos;
    }
    return n;
  };
  EXPECT_EQ(count("step h1 due", " fired 2 times"), 1);
  EXPECT_EQ(count("step h2 due", " missed; its stage is still running"), 1);
  EXPECT_EQ(count("a1 fired early", ""), 1);
  EXPECT_EQ(count("step a2 due", " fired; its stage ended at"), 1);
  EXPECT_EQ(failures.size(), 4);
  for (int i = 0; i < failures.size(); ++i)
    std::printf("  caught: %s\n", failures.GetTestPartResult(i).message());
}

}  // namespace
}  // namespace casebus

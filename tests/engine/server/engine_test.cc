// engine/server Engine, without sockets: the shard thread, group commit, recovery, the
// bounded queue and the department round trip through the real spool adapter. Each test owns
// a temporary data directory and a ManualClock; "restart" means Stop, destroy, reopen.

#include "engine/server/engine.h"

#include <gtest/gtest.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

#include "adapters/register_all.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus::server {
namespace {

namespace fs = std::filesystem;
using namespace casebus::server::testing;
using google::protobuf::util::MessageDifferencer;

EngineOptions NoDispatcher() {
  EngineOptions o;
  o.run_dispatcher = false;  // work orders stay in the outbox
  return o;
}

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() { adapters::RegisterAllAdapters(registry_); }

  std::unique_ptr<Engine> Open(EngineOptions options = {},
                               std::shared_ptr<const v1::CityConfig> city = SampleCity()) {
    options.data_dir = dir_.path();
    auto e = Engine::Open(std::move(city), options, clock_, registry_);
    EXPECT_TRUE(e.has_value()) << e.error().ToString();
    return e ? std::move(*e) : nullptr;
  }
  std::unique_ptr<Engine> Started(EngineOptions options = {}) {
    auto e = Open(options);
    if (e) e->Start();
    return e;
  }

  static v1::CommandResult Ok(Engine& e, const v1::Command& c) {
    v1::Reply r = e.Call(Req({c}));
    EXPECT_EQ(r.results_size(), 1);
    if (r.results_size() != 1) return {};
    EXPECT_EQ(r.results(0).code(), v1::OK) << c.request_id() << ": " << r.results(0).message();
    EXPECT_EQ(r.results(0).request_id(), c.request_id());
    return r.results(0);
  }
  static v1::Case Show(Engine& e, uint64_t id) {
    v1::Reply r = e.Call(ShowReq(id));
    EXPECT_EQ(r.query().code(), v1::OK) << r.query().message();
    return r.query().found();
  }
  static v1::StatusReply StatusOf(Engine& e) { return e.Call(StatusReq()).query().status(); }

  // Reports a case in grid n, registers and dispatches it; returns the dispatch result.
  static v1::CommandResult Dispatched(Engine& e, int n) {
    const std::string s = std::to_string(n);
    const uint64_t id = Ok(e, Report("rep-" + s, Grid(n))).case_id();
    Ok(e, Register("reg-" + s, id));
    v1::CommandResult d = Ok(e, Dispatch("dis-" + s, id));
    EXPECT_EQ(d.case_id(), id);
    EXPECT_FALSE(d.department().empty());
    EXPECT_EQ(d.work_order_id(), std::to_string(id) + "-1");
    return d;
  }

  fs::path Spool(const std::string& dept) const {
    for (const auto& d : SampleCity()->departments())
      if (d.id() == dept) return fs::path(dir_.path()) / d.adapter().spool().directory();
    ADD_FAILURE() << "no department " << dept;
    return {};
  }

  static void DropReply(const fs::path& spool, const std::string& name, const std::string& json) {
    const fs::path tmp = spool / ("." + name + ".partial");
    std::ofstream(tmp) << json;
    fs::rename(tmp, spool / "inbox" / name);
  }

  TempDir dir_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
};

TEST_F(EngineTest, ClosedLoopCommitsAndDeliversTheWorkOrder) {
  auto e = Started();
  ASSERT_NE(e, nullptr);
  const v1::CommandResult d = Dispatched(*e, 0);
  const uint64_t id = d.case_id();
  EXPECT_EQ(id, 1u);
  const fs::path order_file = Spool(d.department()) / (d.work_order_id() + ".json");
  EXPECT_EQ(order_file, fs::path(dir_.path()) / "spool" / d.department() / "1-1.json");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(order_file); })) << order_file;
  std::stringstream json;
  json << std::ifstream(order_file).rdbuf();
  v1::WorkOrder order;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.str(), &order).ok()) << json.str();
  EXPECT_EQ(order.case_id(), id);
  EXPECT_EQ(order.department(), d.department());
  EXPECT_EQ(order.place().grid(), Grid(0));

  clock_.Advance(10 * kMinute);
  Ok(*e, Accept("acc", id, d.department()));
  clock_.Advance(kHour);
  Ok(*e, Resolve("res", id, d.department()));
  clock_.Advance(kHour);
  Ok(*e, Verify("ver", id));
  Ok(*e, Close("clo", id));

  const v1::Case c = Show(*e, id);
  EXPECT_EQ(c.state(), v1::CLOSED);
  std::vector<v1::EventType> types;
  for (const auto& ev : c.history()) types.push_back(ev.type());
  EXPECT_EQ(types, (std::vector<v1::EventType>{v1::EV_REPORTED, v1::EV_REGISTERED,
                                               v1::EV_DISPATCHED, v1::EV_ACCEPTED,
                                               v1::EV_RESOLVED, v1::EV_VERIFIED, v1::EV_CLOSED}));
  EXPECT_EQ(c.closed_at_ms(), kStart + 10 * kMinute + 2 * kHour);
  const v1::StatusReply s = StatusOf(*e);
  EXPECT_EQ(s.cases(), 1u);
  EXPECT_EQ(s.open_cases(), 0u);
  EXPECT_EQ(s.journal_seq(), 7u);
  EXPECT_EQ(s.commands_committed(), 7u);
  EXPECT_TRUE(s.healthy());
  // The delivered order leaves the outbox.
  EXPECT_TRUE(WaitFor([&] { return StatusOf(*e).outbox_pending() == 0; }));
}

TEST_F(EngineTest, RestartRecoversEveryCaseAndEveryRequestId) {
  std::vector<std::pair<v1::Command, v1::CommandResult>> sent;
  auto send = [&](Engine& e, const v1::Command& c) { sent.emplace_back(c, Ok(e, c)); };
  std::map<uint64_t, v1::Case> before;
  v1::StatusReply status_before;
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    send(*e, Report("r1", Grid(1)));                       // case 1 stays reported
    send(*e, Report("r2", Grid(2)));                       // case 2 gets registered
    send(*e, Register("g2", 2));
    const v1::CommandResult d3 = Dispatched(*e, 3);        // case 3 dispatched
    const v1::CommandResult d4 = Dispatched(*e, 4);        // case 4 accepted
    send(*e, Accept("a4", d4.case_id(), d4.department()));
    const v1::CommandResult d5 = Dispatched(*e, 5);        // case 5 closed
    clock_.Advance(kHour);
    send(*e, Accept("a5", d5.case_id(), d5.department()));
    send(*e, Resolve("s5", d5.case_id(), d5.department()));
    send(*e, Verify("v5", d5.case_id()));
    send(*e, Close("c5", d5.case_id()));
    const v1::CommandResult dup = Ok(*e, Report("r1-again", Grid(1)));  // merges into case 1
    EXPECT_TRUE(dup.merged());
    EXPECT_EQ(dup.case_id(), 1u);
    sent.emplace_back(Report("r1-again", Grid(1)), dup);
    for (uint64_t id = 1; id <= 5; ++id) before[id] = Show(*e, id);
    status_before = StatusOf(*e);
    EXPECT_EQ(d3.case_id(), 3u);
    e->Stop();
  }
  // Same instant: what came due while down fires on restart (tested with the ladder), so
  // identical state is expected only when no time has passed. Twice: restored from the
  // checkpoint the stop wrote, then with it gone, from the whole journal.
  for (const bool from_checkpoint : {true, false}) {
    SCOPED_TRACE(from_checkpoint ? "from the checkpoint" : "from the whole journal");
    if (!from_checkpoint) {
      ASSERT_TRUE(fs::remove(fs::path(dir_.path()) / "checkpoint"));
    }
    auto e = Started();
    ASSERT_NE(e, nullptr);
    const EngineStats stats = e->stats();
    EXPECT_EQ(stats.checkpoint_ignored, "");
    EXPECT_EQ(stats.checkpoint_seq, from_checkpoint ? status_before.journal_seq() : 0u);
    EXPECT_EQ(stats.checkpoint_cases, from_checkpoint ? 5u : 0u);
    EXPECT_EQ(stats.replayed_records, from_checkpoint ? 0u : status_before.journal_seq());
    for (const auto& [id, c] : before) {
      const v1::Case now = Show(*e, id);
      EXPECT_TRUE(MessageDifferencer::Equals(c, now)) << "case " << id << " before:\n"
                                                      << c.DebugString() << "after:\n"
                                                      << now.DebugString();
    }
    const v1::StatusReply s = StatusOf(*e);
    EXPECT_EQ(s.cases(), status_before.cases());
    EXPECT_EQ(s.open_cases(), status_before.open_cases());
    EXPECT_EQ(s.journal_seq(), status_before.journal_seq());
    EXPECT_EQ(s.timers(), status_before.timers());
    EXPECT_EQ(s.next_timer_ms(), status_before.next_timer_ms());
    // Every retry is answered from the recovered request ids, not applied again.
    for (const auto& [cmd, original] : sent) {
      v1::Reply r = e->Call(Req({cmd}));
      ASSERT_EQ(r.results_size(), 1);
      EXPECT_EQ(r.results(0).code(), v1::OK) << cmd.request_id() << ": " << r.results(0).message();
      EXPECT_TRUE(r.results(0).duplicate()) << cmd.request_id();
      EXPECT_EQ(r.results(0).case_id(), original.case_id()) << cmd.request_id();
      EXPECT_EQ(r.results(0).merged(), original.merged()) << cmd.request_id();
    }
    EXPECT_EQ(StatusOf(*e).journal_seq(), status_before.journal_seq());
    EXPECT_EQ(Show(*e, 1).report_count(), 2);
    // A reused id with another payload is still refused.
    v1::Reply reused = e->Call(Req({Report("r1", Grid(9))}));
    EXPECT_EQ(reused.results(0).code(), v1::ALREADY_EXISTS);
    e->Stop();
    // Nothing new: the checkpoint restored is still the state (not rewritten); after a whole
    // replay there was none, so one is written.
    EXPECT_EQ(e->stats().checkpoint_written_seq, from_checkpoint ? 0u : status_before.journal_seq());
  }
  // New cases continue the numbering.
  auto e = Started();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(Ok(*e, Report("r6", Grid(6))).case_id(), 6u);
}

// A checkpoint older than the journal (a crash after a clean stop): restored, and only the
// records after it replayed.
TEST_F(EngineTest, OlderCheckpointIsRestoredAndTheRecordsAfterItReplayed) {
  const fs::path checkpoint = fs::path(dir_.path()) / "checkpoint", old = fs::path(dir_.path()) / "old";
  uint64_t first_seq = 0;
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    Dispatched(*e, 1);
    Dispatched(*e, 2);
    e->Stop();
    first_seq = e->stats().checkpoint_written_seq;
    EXPECT_EQ(first_seq, 6u);
    EXPECT_GT(e->stats().checkpoint_written_bytes, 64u);
  }
  fs::copy_file(checkpoint, old);
  std::map<uint64_t, v1::Case> before;
  uint64_t last_seq = 0;
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->stats().checkpoint_seq, first_seq);
    const v1::CommandResult d3 = Dispatched(*e, 3);
    clock_.Advance(kHour);
    Ok(*e, Accept("a3", d3.case_id(), d3.department()));
    Ok(*e, Report("dup-1", Grid(1)));  // merges into case 1
    for (uint64_t id = 1; id <= 3; ++id) before[id] = Show(*e, id);
    last_seq = StatusOf(*e).journal_seq();
    e->Stop();
    EXPECT_EQ(e->stats().checkpoint_written_seq, last_seq);
  }
  fs::copy_file(old, checkpoint, fs::copy_options::overwrite_existing);
  auto e = Started();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->stats().checkpoint_ignored, "");
  EXPECT_EQ(e->stats().checkpoint_seq, first_seq);
  EXPECT_EQ(e->stats().replayed_records, last_seq - first_seq);
  for (const auto& [id, c] : before)
    EXPECT_TRUE(MessageDifferencer::Equals(c, Show(*e, id))) << "case " << id;
  v1::Reply retry = e->Call(Req({Report("dup-1", Grid(1))}));
  EXPECT_TRUE(retry.results(0).duplicate());
  EXPECT_TRUE(retry.results(0).merged());
  EXPECT_EQ(Ok(*e, Report("r4", Grid(4))).case_id(), 4u);
}

// A checkpoint of the first format (CBCKPT01: the body's CRC-32 where 02 has XXH3's low half),
// left by an older build, is still restored; its body with a flipped byte is still refused.
TEST_F(EngineTest, CheckpointOfTheFirstFormatIsStillRestored) {
  const fs::path checkpoint = fs::path(dir_.path()) / "checkpoint";
  std::map<uint64_t, v1::Case> before;
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    Dispatched(*e, 1);
    Dispatched(*e, 2);
    for (uint64_t id = 1; id <= 2; ++id) before[id] = Show(*e, id);
    e->Stop();
  }
  std::string bytes;
  {
    std::ifstream in(checkpoint, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(bytes.size(), 64u);
  ASSERT_EQ(bytes.substr(0, 8), "CBCKPT02");
  auto put_le32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i, v >>= 8) bytes[at + i] = static_cast<char>(v & 0xff);
  };
  auto as_format01 = [&] {
    bytes.replace(0, 8, "CBCKPT01");
    put_le32(56, static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data() + 64), bytes.size() - 64)));
    put_le32(60, static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()), 60)));
    std::ofstream(checkpoint, std::ios::binary | std::ios::trunc) << bytes;
  };
  as_format01();
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->stats().checkpoint_ignored, "");
    EXPECT_EQ(e->stats().checkpoint_seq, 6u);
    EXPECT_EQ(e->stats().replayed_records, 0u);
    for (const auto& [id, c] : before)
      EXPECT_TRUE(MessageDifferencer::Equals(c, Show(*e, id))) << "case " << id;
    Dispatched(*e, 3);
    before[3] = Show(*e, 3);
    e->Stop();  // writes a new checkpoint, in format 02
  }
  {
    std::ifstream in(checkpoint, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_EQ(bytes.substr(0, 8), "CBCKPT02");
  as_format01();
  bytes[bytes.size() / 2] ^= 0x20;  // after the checksums: the body no longer matches them
  std::ofstream(checkpoint, std::ios::binary | std::ios::trunc) << bytes;
  auto e = Started();
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->stats().checkpoint_ignored.find("checksum"), std::string::npos) << e->stats().checkpoint_ignored;
  for (const auto& [id, c] : before)
    EXPECT_TRUE(MessageDifferencer::Equals(c, Show(*e, id))) << "case " << id;
}

// A checkpoint that fails a check is ignored, with the reason, and the journal replayed
// whole: the engine opens with the same state as without it.
TEST_F(EngineTest, DamagedOrForeignCheckpointIsIgnoredAndTheJournalReplayed) {
  const fs::path checkpoint = fs::path(dir_.path()) / "checkpoint";
  std::map<uint64_t, v1::Case> before;
  uint64_t seq = 0;
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    for (int n = 1; n <= 3; ++n) Dispatched(*e, n);
    for (uint64_t id = 1; id <= 3; ++id) before[id] = Show(*e, id);
    seq = StatusOf(*e).journal_seq();
    e->Stop();
  }
  std::string good;
  {
    std::ifstream in(checkpoint, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(good.size(), 64u);
  // The same engine's checkpoint from another data directory: its own journal, same length.
  std::string foreign;
  {
    TempDir other;
    EngineOptions o;
    o.data_dir = other.path();
    auto e2 = Engine::Open(SampleCity(), o, clock_, registry_);
    ASSERT_TRUE(e2.has_value());
    (*e2)->Start();
    for (int n = 4; n <= 6; ++n) Dispatched(**e2, n);
    (*e2)->Stop();
    std::ifstream in(fs::path(other.path()) / "checkpoint", std::ios::binary);
    foreign.assign(std::istreambuf_iterator<char>(in), {});
  }
  // A checkpoint ahead of the journal: written after three more records.
  std::string ahead;
  {
    TempDir copy;
    fs::copy(dir_.path(), copy.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    EngineOptions o;
    o.data_dir = copy.path();
    auto e3 = Engine::Open(SampleCity(), o, clock_, registry_);
    ASSERT_TRUE(e3.has_value());
    (*e3)->Start();
    Dispatched(**e3, 7);
    (*e3)->Stop();
    std::ifstream in(fs::path(copy.path()) / "checkpoint", std::ios::binary);
    ahead.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string flipped_body = good, flipped_header = good, bad_mark = good;
  flipped_body[good.size() / 2] ^= 0x20;
  flipped_header[9] ^= 0x01;  // the seq
  bad_mark[0] = 'X';
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"flipped body byte", flipped_body},         {"flipped header byte", flipped_header},
      {"truncated", good.substr(0, good.size() - 7)}, {"header only", good.substr(0, 64)},
      {"shorter than a header", good.substr(0, 20)}, {"not a checkpoint", bad_mark},
      {"empty", ""},                               {"another journal's", foreign},
      {"ahead of the journal", ahead},             {"grown", good + "more"}};
  const std::vector<std::string> reasons = {"checksum", "checksum", "body bytes", "body bytes", "less than its 64-byte header",
                                            "CBCKPT02", "less than its 64-byte header", "audit link", "journal ends at record",
                                            "body bytes"};
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].first);
    {
      std::ofstream out(checkpoint, std::ios::binary | std::ios::trunc);
      out << cases[i].second;
    }
    auto e = Open();
    ASSERT_NE(e, nullptr);
    const EngineStats stats = e->stats();
    EXPECT_NE(stats.checkpoint_ignored.find(reasons[i]), std::string::npos) << stats.checkpoint_ignored;
    EXPECT_EQ(stats.checkpoint_seq, 0u);
    EXPECT_EQ(stats.replayed_records, seq);
    e->Start();
    for (const auto& [id, c] : before)
      EXPECT_TRUE(MessageDifferencer::Equals(c, Show(*e, id))) << "case " << id;
    e->Stop();
    EXPECT_EQ(e->stats().checkpoint_written_seq, seq) << "a good checkpoint replaces the bad one";
  }
}

// While serving, a forked writer checkpoints every checkpoint_every records; after a crash
// (here: a stop that writes nothing, as kill -9 would) the next open restores the last of them
// and replays only the records after it.
TEST_F(EngineTest, CheckpointsWrittenWhileServingBoundWhatACrashReplays) {
  EngineOptions o;
  o.checkpoint_every = 6;
  o.checkpoint_on_stop = false;
  std::map<uint64_t, v1::Case> before;
  uint64_t last_seq = 0, written_seq = 0;
  {
    auto e = Started(o);
    ASSERT_NE(e, nullptr);
    for (int n = 1; n <= 3; ++n) Dispatched(*e, n);  // 9 records: the writer forks at 6 or more
    ASSERT_TRUE(WaitFor([&] {
      e->Call(StatusReq());  // the shard looks at its writer between batches
      return e->stats().checkpoints_while_running >= 1;
    })) << e->stats().checkpoint_write_error;
    written_seq = e->stats().checkpoint_written_seq;
    EXPECT_GE(written_seq, 6u);
    // Fewer than checkpoint_every more: the crash comes before the next checkpoint.
    const uint64_t id = Ok(*e, Report("rep-4", Grid(4))).case_id();
    Ok(*e, Register("reg-4", id));
    for (uint64_t id = 1; id <= 4; ++id) before[id] = Show(*e, id);
    last_seq = StatusOf(*e).journal_seq();
    e->Stop();
    EXPECT_EQ(e->stats().checkpoint_write_error, "");
  }
  ASSERT_GT(last_seq, written_seq);
  auto e = Started();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->stats().checkpoint_ignored, "");
  EXPECT_GE(e->stats().checkpoint_seq, written_seq);
  EXPECT_LT(e->stats().checkpoint_seq, last_seq);
  EXPECT_EQ(e->stats().replayed_records, last_seq - e->stats().checkpoint_seq);
  for (const auto& [id, c] : before)
    EXPECT_TRUE(MessageDifferencer::Equals(c, Show(*e, id))) << "case " << id;
  EXPECT_EQ(Ok(*e, Report("r5", Grid(5))).case_id(), 5u);
}

// A checkpoint that cannot be written (here: its temporary name is taken by a directory)
// costs only the next restart's time: the stop says why, the old checkpoint stays, and the
// next open restores it and replays what came after.
TEST_F(EngineTest, CheckpointThatCannotBeWrittenLeavesTheOldOneAndSaysWhy) {
  const fs::path dir(dir_.path());
  uint64_t first_seq = 0;
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    Dispatched(*e, 1);
    e->Stop();
    first_seq = e->stats().checkpoint_written_seq;
    ASSERT_GT(first_seq, 0u);
  }
  const fs::path taken = dir / ("checkpoint.tmp." + std::to_string(::getpid()));
  fs::create_directory(taken);
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    Dispatched(*e, 2);
    e->Stop();
    EXPECT_EQ(e->stats().checkpoint_written_seq, 0u);
    EXPECT_NE(e->stats().checkpoint_write_error.find(taken.filename().string()), std::string::npos)
        << e->stats().checkpoint_write_error;
  }
  // A crashed writer's leftover is removed at open; a directory of that name is not ours.
  const fs::path leftover = dir / "checkpoint.tmp.999999999";
  std::ofstream(leftover) << "half a checkpoint";
  auto e = Started();
  EXPECT_FALSE(fs::exists(leftover));
  EXPECT_TRUE(fs::is_directory(taken)) << "not ours to remove";
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->stats().checkpoint_seq, first_seq);
  EXPECT_EQ(e->stats().replayed_records, 3u);
  EXPECT_EQ(Show(*e, 2).state(), v1::DISPATCHED);
}

TEST_F(EngineTest, UndeliveredWorkOrderIsDeliveredAfterRestart) {
  v1::CommandResult d;
  {
    auto e = Started(NoDispatcher());
    ASSERT_NE(e, nullptr);
    d = Dispatched(*e, 0);
    e->Stop();
  }
  const fs::path order_file = Spool(d.department()) / (d.work_order_id() + ".json");
  {
    // The order survived in the outbox: recovery queues it again.
    auto e = Started(NoDispatcher());
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(StatusOf(*e).outbox_pending(), 1u);
    e->Stop();
  }
  ASSERT_FALSE(fs::exists(order_file));
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    ASSERT_TRUE(WaitFor([&] { return fs::exists(order_file); })) << order_file;
    ASSERT_TRUE(WaitFor([&] { return StatusOf(*e).outbox_pending() == 0; }));
    e->Stop();
  }
  v1::WorkOrder order;
  std::stringstream json;
  json << std::ifstream(order_file).rdbuf();
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.str(), &order).ok());
  EXPECT_EQ(order.id(), d.work_order_id());
  EXPECT_EQ(order.reason(), "dispatch");
  // Delivery removed the outbox row: a later start has nothing left to send.
  auto e = Started(NoDispatcher());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(StatusOf(*e).outbox_pending(), 0u);
}

TEST_F(EngineTest, FullQueueRefusesWithBusy) {
  auto e = Open({}, SampleCityWith([](v1::IntakeLimits& l) { l.set_queue_capacity(4); }));
  ASSERT_NE(e, nullptr);  // not started: nothing drains the queue
  std::mutex mu;
  std::vector<v1::Reply> done;
  auto record = [&](v1::Reply&& r) {
    std::lock_guard lock(mu);
    done.push_back(std::move(r));
  };
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(e->Submit(Req({Report("q" + std::to_string(i), Grid(i))}), record));
  // Capacity counts commands, not requests: two more do not fit, one does.
  EXPECT_FALSE(e->Submit(Req({Report("q3", Grid(3)), Report("q4", Grid(4))}), record));
  EXPECT_TRUE(e->Submit(Req({Report("q3", Grid(3))}), record));
  EXPECT_FALSE(e->Submit(Req({Report("q5", Grid(5))}), record));
  EXPECT_FALSE(e->Submit(StatusReq(), record));  // a query takes a slot too

  v1::Reply busy = e->Call(Req({Report("b1", Grid(7)), Report("b2", Grid(8))}));
  ASSERT_EQ(busy.results_size(), 2);
  EXPECT_EQ(busy.results(0).code(), v1::BUSY);
  EXPECT_EQ(busy.results(0).request_id(), "b1");
  EXPECT_EQ(busy.results(1).code(), v1::BUSY);
  EXPECT_EQ(busy.results(1).request_id(), "b2");

  e->Start();
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return done.size() == 4;
  }));
  for (const auto& r : done) EXPECT_EQ(r.results(0).code(), v1::OK) << r.DebugString();
  // Refused commands were not applied: b1 is new now, not a duplicate.
  const v1::CommandResult b1 = Ok(*e, Report("b1", Grid(7)));
  EXPECT_FALSE(b1.duplicate());
  EXPECT_EQ(b1.case_id(), 5u);
}

TEST_F(EngineTest, StopCommitsAndAnswersEverythingQueued) {
  constexpr int kN = 30;
  std::mutex mu;
  std::map<std::string, v1::CommandResult> results;
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    for (int i = 0; i < kN; ++i) {
      ASSERT_TRUE(e->Submit(Req({Report("s" + std::to_string(i), Grid(i))}), [&](v1::Reply&& r) {
        std::lock_guard lock(mu);
        for (const auto& x : r.results()) results[x.request_id()] = x;
      }));
    }
    e->Stop();
    std::lock_guard lock(mu);
    EXPECT_EQ(results.size(), static_cast<size_t>(kN));  // answered before Stop returned
    EXPECT_TRUE(e->stopping());
    EXPECT_FALSE(e->Submit(StatusReq(), [](v1::Reply&&) {}));
    v1::Reply late = e->Call(Req({Report("late", Grid(40))}));
    ASSERT_EQ(late.results_size(), 1);
    EXPECT_EQ(late.results(0).code(), v1::UNAVAILABLE);
  }
  auto e = Started();
  ASSERT_NE(e, nullptr);
  for (const auto& [rid, r] : results) {
    ASSERT_EQ(r.code(), v1::OK) << rid << ": " << r.message();
    EXPECT_EQ(Show(*e, r.case_id()).state(), v1::REPORTED) << rid;
  }
  EXPECT_EQ(StatusOf(*e).cases(), static_cast<uint64_t>(kN));
  EXPECT_EQ(e->Call(ShowReq(kN + 1)).query().code(), v1::NOT_FOUND);  // "late" never applied
}

TEST_F(EngineTest, QuerySeesCommandsQueuedBeforeItInTheSameBatch) {
  auto e = Open();
  ASSERT_NE(e, nullptr);
  std::mutex mu;
  std::map<int, v1::Reply> replies;
  auto keep = [&](int k) {
    return [&, k](v1::Reply&& r) {
      std::lock_guard lock(mu);
      replies[k] = std::move(r);
    };
  };
  ASSERT_TRUE(e->Submit(Req({Report("b-rep", Grid(0))}), keep(0)));
  ASSERT_TRUE(e->Submit(Req({Register("b-reg", 1)}), keep(1)));
  ASSERT_TRUE(e->Submit(ShowReq(1), keep(2)));
  v1::Request both = Req({Report("b-rep2", Grid(1))});
  both.mutable_query()->mutable_show()->set_case_id(2);
  ASSERT_TRUE(e->Submit(both, keep(3)));
  e->Start();  // all four are drained as one batch
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return replies.size() == 4;
  }));
  EXPECT_EQ(e->stats().batches, 1u);
  EXPECT_EQ(replies[2].query().code(), v1::OK) << replies[2].query().message();
  EXPECT_EQ(replies[2].query().found().state(), v1::REGISTERED);
  EXPECT_EQ(replies[3].results(0).code(), v1::OK);
  EXPECT_EQ(replies[3].query().found().id(), 2u);  // its own command, applied first
  EXPECT_EQ(replies[3].query().found().state(), v1::REPORTED);
}

TEST_F(EngineTest, StatusCountsEveryCommandAnsweredBeforeIt) {
  auto e = Started();
  ASSERT_NE(e, nullptr);
  for (int i = 0; i < 20; ++i) {
    // The report is answered before the status query; the query must count it.
    std::promise<v1::Reply> report, status;
    ASSERT_TRUE(e->Submit(Req({Report("st" + std::to_string(i), Grid(i))}),
                          [&](v1::Reply&& r) { report.set_value(std::move(r)); }));
    // Vary the gap so the query lands in the report's batch or in the next one, applied
    // while the report's batch may still be on its way to disk.
    std::this_thread::sleep_for(std::chrono::microseconds(50 * (i % 5)));
    ASSERT_TRUE(e->Submit(StatusReq(), [&](v1::Reply&& r) { status.set_value(std::move(r)); }));
    ASSERT_EQ(report.get_future().get().results(0).code(), v1::OK);
    const v1::StatusReply s = status.get_future().get().query().status();
    EXPECT_EQ(s.cases(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(s.journal_seq(), static_cast<uint64_t>(i + 1)) << "round " << i;
    EXPECT_EQ(s.commands_committed(), static_cast<uint64_t>(i + 1)) << "round " << i;
  }
}

TEST_F(EngineTest, RefusedCommandsAreAnsweredButNotJournaled) {
  auto e = Started();
  ASSERT_NE(e, nullptr);
  Ok(*e, Report("r", Grid(0)));
  v1::Reply r = e->Call(Req({Accept("early-accept", 1, "drainage"), Register("no-case", 99),
                             Report("bad-grid", "999999999999999")}));
  ASSERT_EQ(r.results_size(), 3);
  EXPECT_EQ(r.results(0).code(), v1::FAILED_PRECONDITION) << r.results(0).message();
  EXPECT_EQ(r.results(1).code(), v1::NOT_FOUND) << r.results(1).message();
  EXPECT_EQ(r.results(2).code(), v1::INVALID_ARGUMENT) << r.results(2).message();
  EXPECT_EQ(r.results(2).field(), "report.place.grid");
  EXPECT_EQ(StatusOf(*e).journal_seq(), 1u);
  EXPECT_EQ(Show(*e, 1).state(), v1::REPORTED);
}

TEST_F(EngineTest, OpenWithoutTheConfiguredAdapterKindFails) {
  dispatch::AdapterRegistry empty;
  EngineOptions options;
  options.data_dir = dir_.path();
  auto e = Engine::Open(SampleCity(), options, clock_, empty);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.error().message().find("spool"), std::string::npos) << e.error().message();
}

TEST_F(EngineTest, UnparsableJournalRecordStopsRecoveryWithCorruption) {
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    Ok(*e, Report("r1", Grid(0)));
    Ok(*e, Report("r2", Grid(1)));
    e->Stop();
  }
  {
    auto st = store::Store::Open(dir_.path() + "/db");
    ASSERT_TRUE(st.has_value()) << st.error().ToString();
    ASSERT_TRUE((*st)->PutJournalRaw(2, std::string("\xff\xff\xff", 3)).ok());
  }
  EngineOptions options;
  options.data_dir = dir_.path();
  auto e = Engine::Open(SampleCity(), options, clock_, registry_);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code(), StatusCode::kCorruption);
  EXPECT_NE(e.error().message().find("journal record 2"), std::string::npos) << e.error().message();
}

TEST_F(EngineTest, DepartmentReplyIsAppliedAsTheDepartment) {
  auto e = Started();
  ASSERT_NE(e, nullptr);
  const v1::CommandResult d = Dispatched(*e, 0);
  const fs::path spool = Spool(d.department());
  DropReply(spool, "accept-1.json",
            R"({"request_id": "dept-accept-1", "actor": "someone-else",
                "accept": {"case_id": "1", "work_order_id": "1-1"}})");
  ASSERT_TRUE(WaitFor([&] { return Show(*e, 1).state() == v1::ACCEPTED; }));
  const v1::Case c = Show(*e, 1);
  EXPECT_EQ(c.history(c.history_size() - 1).type(), v1::EV_ACCEPTED);
  EXPECT_EQ(c.history(c.history_size() - 1).actor(), d.department());
  // The file moves to done/ once the dispatcher learns the reply was committed.
  EXPECT_TRUE(WaitFor([&] { return fs::exists(spool / "inbox/done/accept-1.json"); }));
  // The reply was journaled as the department's own command (its actor and principal): the
  // same command again is a retry, which it would not be had the file's actor been kept.
  v1::Command same = Accept("dept-accept-1", 1, d.department());
  same.mutable_accept()->set_work_order_id("1-1");
  same.mutable_caller()->set_name(d.department());
  same.mutable_caller()->set_role(v1::DEPARTMENT);
  same.mutable_caller()->add_departments(d.department());
  v1::Reply again = e->Call(Req({same}));
  EXPECT_EQ(again.results(0).code(), v1::OK) << again.results(0).message();
  EXPECT_TRUE(again.results(0).duplicate());
}

TEST_F(EngineTest, MalformedDepartmentReplyIsRejectedWithAReason) {
  auto e = Started();
  ASSERT_NE(e, nullptr);
  const v1::CommandResult d = Dispatched(*e, 0);
  const fs::path spool = Spool(d.department());
  DropReply(spool, "bad.json", R"({"request_id": "x", "accept": {"case_id": )");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(spool / "inbox/rejected/bad.json.reason"); }));
  EXPECT_TRUE(fs::exists(spool / "inbox/rejected/bad.json"));
  EXPECT_FALSE(fs::exists(spool / "inbox/bad.json"));
  EXPECT_GT(fs::file_size(spool / "inbox/rejected/bad.json.reason"), 1u);
  EXPECT_EQ(Show(*e, 1).state(), v1::DISPATCHED);
}

TEST_F(EngineTest, DepartmentReplyIsNotLostWhenTheQueueIsFull) {
  v1::CommandResult d;
  {
    auto e = Started(NoDispatcher());
    ASSERT_NE(e, nullptr);
    d = Dispatched(*e, 0);
    e->Stop();
  }
  auto e = Open(NoDispatcher(),
                SampleCityWith([](v1::IntakeLimits& l) { l.set_queue_capacity(2); }));
  ASSERT_NE(e, nullptr);
  std::atomic<int> answered{0};
  ASSERT_TRUE(e->Submit(StatusReq(), [&](v1::Reply&&) { ++answered; }));
  ASSERT_TRUE(e->Submit(StatusReq(), [&](v1::Reply&&) { ++answered; }));  // queue now full
  const fs::path spool = Spool(d.department());
  DropReply(spool, "accept.json", R"({"request_id": "dept-acc", "accept": {"case_id": 1}})");
  e->dispatcher().RunOnce();  // polls the reply while the queue is full
  e->Start();
  ASSERT_TRUE(WaitFor([&] { return answered == 2; }));
  e->dispatcher().RunOnce();  // a later poll may retry it
  const bool applied = WaitFor([&] { return Show(*e, 1).state() == v1::ACCEPTED; },
                               std::chrono::seconds(1));
  const bool still_waiting = fs::exists(spool / "inbox/accept.json");
  EXPECT_TRUE(applied || still_waiting)
      << "the reply is in " << (fs::exists(spool / "inbox/done/accept.json") ? "done/" : "?")
      << " but case 1 is " << v1::CaseState_Name(Show(*e, 1).state());
}

TEST_F(EngineTest, DepartmentCannotActOnAnotherDepartmentsCase) {
  auto e = Started();
  ASSERT_NE(e, nullptr);
  const v1::CommandResult d = Dispatched(*e, 0);
  std::string other;
  for (const auto& dept : SampleCity()->departments())
    if (dept.id() != d.department()) other = dept.id();
  DropReply(Spool(other), "accept.json", R"({"request_id": "foreign", "accept": {"case_id": 1}})");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(Spool(other) / "inbox/done/accept.json") ||
                                   fs::exists(Spool(other) / "inbox/rejected/accept.json"); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the engine apply it
  const v1::Case c = Show(*e, 1);
  EXPECT_EQ(c.state(), v1::DISPATCHED) << other << " accepted " << d.department() << "'s case";
}

// A department's endpoint refuses work orders for good: they become dead letters, durable
// across a restart; an operator's retry puts one back under the same id and it is delivered;
// a second retry finds nothing; drop removes the rest.
class DeadLetterTest : public EngineTest {
 protected:
  DeadLetterTest() {
    // The real spool adapter behind a switch that refuses everything while `refuse` is set.
    class Refusing final : public dispatch::Adapter {
     public:
      Refusing(std::unique_ptr<dispatch::Adapter> inner, std::atomic<bool>& refuse)
          : inner_(std::move(inner)), refuse_(refuse) {}
      dispatch::Delivery Deliver(const v1::WorkOrder& o) override {
        return refuse_ ? dispatch::Delivery::Rejected("HTTP 422 from the test") : inner_->Deliver(o);
      }
      dispatch::Delivery DeliverNotice(const v1::Notice& n) override { return inner_->DeliverNotice(n); }
      std::string Endpoint() const override { return inner_->Endpoint(); }

     private:
      std::unique_ptr<dispatch::Adapter> inner_;
      std::atomic<bool>& refuse_;
    };
    dispatch::AdapterRegistry real;
    adapters::RegisterAllAdapters(real);
    registry_.Register("spool", [this, real](const v1::Department& d, const dispatch::AdapterContext& ctx)
                                    -> Result<std::unique_ptr<dispatch::Adapter>> {
      auto inner = real.Create(d, ctx);
      if (!inner) return Err(inner.error());
      return std::unique_ptr<dispatch::Adapter>(std::make_unique<Refusing>(std::move(*inner), refuse_));
    });
  }
  static v1::QueryResult Dead(Engine& e, v1::DeadLetters::Action action, std::vector<std::string> ids,
                              bool all = false) {
    v1::Request r;
    r.set_version(1);
    auto* d = r.mutable_query()->mutable_dead_letters();
    d->set_action(action);
    for (auto& id : ids) d->add_ids(id);
    d->set_all(all);
    d->set_actor("operator-1");
    return e.Call(std::move(r)).query();
  }
  std::atomic<bool> refuse_{true};
};

TEST_F(DeadLetterTest, RefusedOrdersAreKeptRetriedAndDropped) {
  std::string dept;
  {
    auto e = Started();
    ASSERT_NE(e, nullptr);
    dept = Dispatched(*e, 0).department();
    ASSERT_TRUE(WaitFor([&] { return StatusOf(*e).dead_letters() == 1; }));
    const v1::StatusReply s = StatusOf(*e);
    EXPECT_EQ(s.outbox_pending(), 0u);
    bool lane_seen = false;
    for (const auto& l : s.delivery()) {
      if (l.department() != dept) continue;
      lane_seen = true;
      EXPECT_EQ(l.dead(), 1u);
      EXPECT_EQ(l.pending(), 0u);
      EXPECT_EQ(l.breaker(), "closed") << "a refusal is an answer: the endpoint is up";
    }
    EXPECT_TRUE(lane_seen) << "no delivery lane for " << dept;
    e->Stop();
  }
  // After a restart the dead letter is still there, with its reason and attempt.
  auto e = Started();
  ASSERT_NE(e, nullptr);
  v1::QueryResult list = Dead(*e, v1::DeadLetters::LIST, {});
  ASSERT_EQ(list.code(), v1::OK) << list.message();
  ASSERT_EQ(list.dead_letters_size(), 1);
  const v1::DeadLetter& letter = list.dead_letters(0);
  EXPECT_EQ(letter.item().work_order().id(), "1-1");
  EXPECT_EQ(letter.department(), dept);
  EXPECT_NE(letter.reason().find("HTTP 422 from the test"), std::string::npos) << letter.reason();
  ASSERT_EQ(letter.attempts_size(), 1);
  EXPECT_EQ(letter.attempts(0).error(), "HTTP 422 from the test");
  const fs::path order_file = Spool(dept) / "1-1.json";
  EXPECT_FALSE(fs::exists(order_file));

  refuse_ = false;
  v1::QueryResult retried = Dead(*e, v1::DeadLetters::RETRY, {"1-1"});
  EXPECT_EQ(retried.code(), v1::OK) << retried.message();
  EXPECT_EQ(retried.affected(), 1u);
  ASSERT_TRUE(WaitFor([&] { return fs::exists(order_file); })) << "the retried order never arrived";
  EXPECT_EQ(Dead(*e, v1::DeadLetters::LIST, {}).dead_letters_size(), 0);
  ASSERT_TRUE(WaitFor([&] { return StatusOf(*e).dead_letters() == 0; }));
  v1::QueryResult again = Dead(*e, v1::DeadLetters::RETRY, {"1-1"});
  EXPECT_EQ(again.code(), v1::NOT_FOUND);
  EXPECT_NE(again.message().find("1-1"), std::string::npos) << again.message();

  // Two more refused, then dropped with --all; nothing is delivered.
  refuse_ = true;
  Dispatched(*e, 1);
  Dispatched(*e, 2);
  ASSERT_TRUE(WaitFor([&] { return StatusOf(*e).dead_letters() == 2; }));
  v1::QueryResult bad = Dead(*e, v1::DeadLetters::DROP, {});
  EXPECT_EQ(bad.code(), v1::INVALID_ARGUMENT) << "drop with neither ids nor all";
  v1::QueryResult dropped = Dead(*e, v1::DeadLetters::DROP, {}, /*all=*/true);
  EXPECT_EQ(dropped.code(), v1::OK) << dropped.message();
  EXPECT_EQ(dropped.affected(), 2u);
  EXPECT_EQ(Dead(*e, v1::DeadLetters::LIST, {}).dead_letters_size(), 0);
  EXPECT_EQ(StatusOf(*e).dead_letters(), 0u);
  EXPECT_FALSE(fs::exists(Spool(dept) / "2-1.json"));
}

}  // namespace
}  // namespace casebus::server

// adapters/spool: work orders out as files, department replies in as files. The adapter is
// built the way the server builds it (AdapterRegistry + RegisterAllAdapters) in a temporary
// data directory; replies are the hostile input a shared folder can hold.

#include <gtest/gtest.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "adapters/register_all.h"
#include "adapters/spool/spool_adapter.h"
#include "engine/config/loader.h"

namespace casebus::adapters {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::MessageDifferencer;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// Every path under `root`, relative, files and directories alike.
std::set<std::string> Tree(const fs::path& root) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    out.insert(fs::relative(e.path(), root).string());
  return out;
}

v1::WorkOrder SampleOrder(const std::string& id) {
  v1::WorkOrder w;
  w.set_id(id);
  w.set_case_id(7);
  w.set_department("roads");
  w.set_issued_at_ms(1772413200000);
  w.set_accept_deadline_ms(1772415000000);
  w.set_handle_deadline_ms(1772427600000);
  w.set_category("200404");
  w.set_category_name("下水道堵塞或破损");
  w.mutable_place()->set_grid("330102001001001");
  w.mutable_place()->set_lat(30.280356);
  w.mutable_place()->set_lon(120.133933);
  w.mutable_place()->set_has_coordinates(true);
  w.mutable_place()->set_address("鼓楼街道 \"老街\" 12号\n后门");
  w.set_description("井盖冒水 / drain overflowing; quotes \" and backslash \\ and tab \t");
  w.set_urgency(v1::URGENT);
  w.set_reason("dispatch");
  w.mutable_route()->set_department("roads");
  w.mutable_route()->set_rule_id("r-drain");
  w.mutable_route()->set_explanation("category 200404 → roads");
  w.set_rework_count(1);
  return w;
}

v1::CommandResult Result(v1::Code code, const std::string& message = "") {
  v1::CommandResult r;
  r.set_code(code);
  r.set_message(message);
  return r;
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/casebus-spool-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    data_ = tmpl;
    RegisterAllAdapters(registry_);
    dept_.set_id("roads");
    dept_.set_name("Roads bureau");
    dept_.mutable_adapter()->mutable_spool()->set_directory("spool/roads");
    auto a = registry_.Create(dept_, {data_.string()});
    ASSERT_TRUE(a.has_value()) << a.error().ToString();
    adapter_ = std::move(*a);
    dir_ = data_ / "spool/roads";
    inbox_ = dir_ / "inbox";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(data_, ec);
  }

  // Drops a reply the way a careful department does: write elsewhere, then rename in.
  void Reply(const std::string& name, const std::string& bytes) {
    const fs::path tmp = dir_ / ("." + name + ".partial");
    WriteFile(tmp, bytes);
    fs::rename(tmp, inbox_ / name);
  }

  // Polls once, expects nothing taken in and `name` moved to rejected/ beside a reason that
  // contains `why`.
  void ExpectRejected(const std::string& name, const std::string& why) {
    SCOPED_TRACE(name);
    auto replies = adapter_->PollReplies();
    EXPECT_TRUE(replies.empty()) << replies.front().command.DebugString();
    EXPECT_FALSE(fs::exists(inbox_ / name));
    EXPECT_FALSE(fs::exists(inbox_ / "done" / name));
    EXPECT_TRUE(fs::exists(inbox_ / "rejected" / name));
    const std::string reason = ReadFile(inbox_ / "rejected" / (name + ".reason"));
    EXPECT_NE(reason.find(why), std::string::npos) << "reason: " << reason;
  }

  fs::path data_, dir_, inbox_;
  dispatch::AdapterRegistry registry_;
  v1::Department dept_;
  std::unique_ptr<dispatch::Adapter> adapter_;
};

TEST_F(SpoolTest, CreatesItsDirectoriesUnderTheDataDir) {
  EXPECT_TRUE(fs::is_directory(dir_));
  EXPECT_TRUE(fs::is_directory(inbox_));
  EXPECT_TRUE(fs::is_directory(inbox_ / "done"));
  EXPECT_TRUE(fs::is_directory(inbox_ / "rejected"));
}

TEST_F(SpoolTest, AbsoluteDirectoryIsUsedAsIs) {
  v1::Department d = dept_;
  d.mutable_adapter()->mutable_spool()->set_directory((data_ / "elsewhere").string());
  auto a = registry_.Create(d, {"/nonexistent-data-dir"});
  ASSERT_TRUE(a.has_value()) << a.error().ToString();
  ASSERT_TRUE((*a)->Deliver(SampleOrder("7-1")).ok());
  EXPECT_TRUE(fs::exists(data_ / "elsewhere/7-1.json"));
}

TEST_F(SpoolTest, EmptyDirectoryIsAConfigError) {
  v1::Department d = dept_;
  d.mutable_adapter()->mutable_spool()->set_directory("");
  auto a = registry_.Create(d, {data_.string()});
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a.error().field(), "adapter.spool.directory");
}

TEST_F(SpoolTest, SampleCityDepartmentsGetASpoolEach) {
  auto cfg = config::LoadCityConfigFile(CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().ToString();
  ASSERT_GT((*cfg)->departments_size(), 0);
  for (const auto& d : (*cfg)->departments()) {
    auto a = registry_.Create(d, {data_.string()});
    ASSERT_TRUE(a.has_value()) << d.id() << ": " << a.error().ToString();
    EXPECT_TRUE(fs::is_directory(data_ / d.adapter().spool().directory() / "inbox")) << d.id();
  }
}

TEST_F(SpoolTest, DeliverWritesJsonThatParsesBackToTheSameOrder) {
  const v1::WorkOrder order = SampleOrder("7-1");
  ASSERT_TRUE(adapter_->Deliver(order).ok());
  const std::string json = ReadFile(dir_ / "7-1.json");
  ASSERT_FALSE(json.empty());
  EXPECT_EQ(json.back(), '\n');
  v1::WorkOrder back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &back).ok()) << json;
  EXPECT_TRUE(MessageDifferencer::Equals(order, back)) << json;
  // Field names are the proto's, what the README promises departments.
  EXPECT_NE(json.find("\"case_id\""), std::string::npos) << json;
}

TEST_F(SpoolTest, RedeliveryOverwritesTheSameFile) {
  v1::WorkOrder order = SampleOrder("7-1");
  ASSERT_TRUE(adapter_->Deliver(order).ok());
  order.set_description("second delivery");
  ASSERT_TRUE(adapter_->Deliver(order).ok());
  ASSERT_TRUE(adapter_->Deliver(order).ok());
  std::vector<std::string> orders;
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.is_regular_file()) orders.push_back(e.path().filename().string());
  EXPECT_EQ(orders, std::vector<std::string>{"7-1.json"});
  v1::WorkOrder back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ReadFile(dir_ / "7-1.json"), &back).ok());
  EXPECT_EQ(back.description(), "second delivery");
}

TEST_F(SpoolTest, NoTempFilesAreLeftBehind) {
  for (int i = 1; i <= 20; ++i) ASSERT_TRUE(adapter_->Deliver(SampleOrder("9-" + std::to_string(i))).ok());
  std::set<std::string> expected = {"inbox", "inbox/done", "inbox/rejected", "notices"};
  for (int i = 1; i <= 20; ++i) expected.insert("9-" + std::to_string(i) + ".json");
  EXPECT_EQ(Tree(dir_), expected);
}

TEST_F(SpoolTest, UnsafeIdsAreRefusedAndWriteNothing) {
  const auto before = Tree(data_);
  for (const std::string& id : std::vector<std::string>{
           "../x", "a/b", "", "..", ".", "/etc/x", "7-1.json", "a b", std::string(65, 'a'),
        std::string("7\0-1", 4), "7-1\n"}) {
    dispatch::Delivery d = adapter_->Deliver(SampleOrder(id));
    EXPECT_EQ(d.outcome, dispatch::Delivery::Outcome::kRejected) << "id '" << id << "': " << d.error;
    EXPECT_NE(d.error.find("not a safe file name"), std::string::npos) << d.error;
  }
  EXPECT_EQ(Tree(data_), before);
  EXPECT_FALSE(fs::exists(data_ / "spool/x.json"));
  EXPECT_FALSE(fs::exists(data_ / "spool/x"));
  // The longest safe id still works.
  EXPECT_TRUE(adapter_->Deliver(SampleOrder(std::string(64, 'a'))).ok());
}

TEST_F(SpoolTest, DeliverIntoAVanishedDirectoryIsRetried) {
  fs::remove_all(dir_);
  dispatch::Delivery d = adapter_->Deliver(SampleOrder("7-1"));
  EXPECT_EQ(d.outcome, dispatch::Delivery::Outcome::kRetry) << d.error;
  EXPECT_NE(d.error.find(dir_.string()), std::string::npos) << d.error;
}

TEST_F(SpoolTest, AcceptReplyIsTakenInAsTheDepartment) {
  Reply("0001-accept.json",
        R"({"request_id": "roads-7-accept", "actor": "someone-else",
            "accept": {"case_id": "7", "work_order_id": "7-1"}})");
  auto replies = adapter_->PollReplies();
  ASSERT_EQ(replies.size(), 1u);
  const v1::Command& c = replies[0].command;
  EXPECT_EQ(c.request_id(), "roads-7-accept");
  EXPECT_EQ(c.actor(), "roads");
  ASSERT_TRUE(c.has_accept());
  EXPECT_EQ(c.accept().case_id(), 7u);
  EXPECT_EQ(c.accept().work_order_id(), "7-1");
  // Waiting for the engine: still in the inbox, but not offered twice.
  EXPECT_TRUE(fs::exists(inbox_ / "0001-accept.json"));
  EXPECT_TRUE(adapter_->PollReplies().empty());
  adapter_->Settle(replies[0].token, Result(v1::OK));
  EXPECT_FALSE(fs::exists(inbox_ / "0001-accept.json"));
  EXPECT_TRUE(fs::exists(inbox_ / "done/0001-accept.json"));
  EXPECT_TRUE(adapter_->PollReplies().empty());  // taken in once
}

TEST_F(SpoolTest, ReplyWithoutActorGetsTheDepartment) {
  Reply("a.json", R"({"request_id": "n1", "note": {"case_id": 7, "text": "crew on site"}})");
  auto replies = adapter_->PollReplies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].command.actor(), "roads");
  EXPECT_EQ(replies[0].command.note().text(), "crew on site");
}

// Found by review for the spool_reply fuzz target: a file that named a caller (the
// authenticated principal) was taken in with it, and the engine authorizes a command with a
// caller by that caller's role and departments — so a department could act on another's case.
TEST_F(SpoolTest, ReplyCannotClaimACaller) {
  Reply("claim.json", R"({"request_id": "x1", "caller": {"name": "roads", "role": "DEPARTMENT",
                            "departments": ["water"]}, "accept": {"case_id": 7}})");
  auto replies = adapter_->PollReplies();
  ASSERT_EQ(replies.size(), 1u);
  // The department's own principal replaces the claim.
  const v1::Caller& caller = replies[0].command.caller();
  EXPECT_EQ(caller.name(), "roads");
  EXPECT_EQ(caller.role(), v1::DEPARTMENT);
  ASSERT_EQ(caller.departments_size(), 1);
  EXPECT_EQ(caller.departments(0), "roads");
  EXPECT_EQ(replies[0].command.actor(), "roads");
  auto parsed = ParseSpoolReply(R"({"request_id": "x2", "caller": {"role": "ADMIN"},
                                    "note": {"case_id": 7, "text": "t"}})",
                                "roads");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->caller().role(), v1::DEPARTMENT);
  EXPECT_EQ(parsed->caller().name(), "roads");
}

TEST_F(SpoolTest, RepliesComeInFileNameOrder) {
  Reply("0003.json", R"({"request_id": "c", "note": {"case_id": 7, "text": "3"}})");
  Reply("0001.json", R"({"request_id": "a", "accept": {"case_id": 7}})");
  Reply("0002.json", R"({"request_id": "b", "resolve": {"case_id": 7, "evidence": ["p1"]}})");
  auto replies = adapter_->PollReplies();
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].command.request_id(), "a");
  EXPECT_EQ(replies[1].command.request_id(), "b");
  EXPECT_EQ(replies[2].command.request_id(), "c");
}

TEST_F(SpoolTest, ReplyOfExactlyTheLimitIsTakenIn) {
  std::string json = R"({"request_id": "big", "note": {"case_id": 7, "text": "ok"}})";
  json.resize(kMaxSpoolReplyBytes, ' ');
  Reply("big.json", json);
  auto replies = adapter_->PollReplies();
  ASSERT_EQ(replies.size(), 1u);
  adapter_->Settle(replies[0].token, Result(v1::OK));
  EXPECT_TRUE(fs::exists(inbox_ / "done/big.json"));
}

TEST_F(SpoolTest, MalformedJsonIsRejected) {
  Reply("bad.json", R"({"request_id": "x", "accept": {"case_id": )");
  ExpectRejected("bad.json", "not a Command in JSON");
}

TEST_F(SpoolTest, OversizedReplyIsRejected) {
  std::string json = R"({"request_id": "big", "note": {"case_id": 7, "text": ")";
  json += std::string(kMaxSpoolReplyBytes, 'x') + R"("}})";
  Reply("big.json", json);
  ExpectRejected("big.json", "at most 65536");
}

TEST_F(SpoolTest, UnknownFieldsAreRejected) {
  Reply("colour.json", R"({"request_id": "x", "accept": {"case_id": 7}, "colour": "red"})");
  ExpectRejected("colour.json", "colour");
}

TEST_F(SpoolTest, DepartmentsMayNotReport) {
  Reply("report.json", R"({"request_id": "x", "report": {"category": "200404",
      "place": {"grid": "330102001001001"}, "source": "HOTLINE"}})");
  ExpectRejected("report.json", "supervision_reply; not report");
}

TEST_F(SpoolTest, MissingRequestIdIsRejected) {
  Reply("noid.json", R"({"actor": "roads", "accept": {"case_id": 7}})");
  ExpectRejected("noid.json", "request_id is required");
}

TEST_F(SpoolTest, EmptyFileIsRejected) {
  Reply("empty.json", "");
  ExpectRejected("empty.json", "");
  EXPECT_FALSE(ReadFile(inbox_ / "rejected/empty.json.reason").empty());
}

TEST_F(SpoolTest, BinaryGarbageIsRejected) {
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage.push_back(static_cast<char>((i * 131 + 7) % 256));
  Reply("garbage.json", garbage);
  ExpectRejected("garbage.json", "not a Command in JSON");
}

TEST_F(SpoolTest, OneBadReplyDoesNotHoldUpTheOthers) {
  Reply("0001.json", "{");
  Reply("0002.json", R"({"request_id": "good", "accept": {"case_id": 7}})");
  auto replies = adapter_->PollReplies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].command.request_id(), "good");
  adapter_->Settle(replies[0].token, Result(v1::OK));
  EXPECT_TRUE(fs::exists(inbox_ / "rejected/0001.json"));
  EXPECT_TRUE(fs::exists(inbox_ / "done/0002.json"));
}

TEST_F(SpoolTest, NonJsonEntriesAreIgnored) {
  const std::string accept = R"({"request_id": "a", "accept": {"case_id": 7}})";
  WriteFile(inbox_ / "notes.txt", accept);
  WriteFile(inbox_ / "a.json.tmp", accept);
  WriteFile(inbox_ / "JSON", accept);
  fs::create_directory(inbox_ / "dir.json");
  EXPECT_TRUE(adapter_->PollReplies().empty());
  EXPECT_TRUE(fs::exists(inbox_ / "notes.txt"));
  EXPECT_TRUE(fs::exists(inbox_ / "a.json.tmp"));
  EXPECT_TRUE(fs::exists(inbox_ / "JSON"));
  EXPECT_TRUE(fs::is_directory(inbox_ / "dir.json"));
  EXPECT_TRUE(fs::is_empty(inbox_ / "rejected"));
  EXPECT_TRUE(fs::is_empty(inbox_ / "done"));
}

TEST_F(SpoolTest, DepartmentMayNotVerifyOrCloseItsOwnWork) {
  // README: replies are accept, resolve, return, request_extension, note. Verification and
  // closure belong to the command centre; a department that can send them skips 核查.
  Reply("verify.json", R"({"request_id": "v", "verify": {"case_id": 7, "passed": true}})");
  ExpectRejected("verify.json", "verify");
  Reply("close.json", R"({"request_id": "c", "close": {"case_id": 7}})");
  ExpectRejected("close.json", "close");
  Reply("dispatch.json", R"({"request_id": "d", "dispatch": {"case_id": 7, "department": "x"}})");
  ExpectRejected("dispatch.json", "dispatch");
}

}  // namespace
}  // namespace casebus::adapters

namespace casebus::adapters {
namespace {

TEST_F(SpoolTest, BusyReplyStaysInTheInboxAndIsOfferedAgain) {
  Reply("a.json", R"({"request_id": "a", "accept": {"case_id": 7}})");
  auto first = adapter_->PollReplies();
  ASSERT_EQ(first.size(), 1u);
  adapter_->Settle(first[0].token, Result(v1::BUSY, "intake queue is full"));
  EXPECT_TRUE(fs::exists(inbox_ / "a.json"));
  EXPECT_FALSE(fs::exists(inbox_ / "done/a.json"));
  auto second = adapter_->PollReplies();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].command.request_id(), "a");
}

TEST_F(SpoolTest, RefusedReplyIsRejectedWithTheEnginesReason) {
  Reply("r.json", R"({"request_id": "r", "resolve": {"case_id": 7, "evidence": ["p"]}})");
  auto replies = adapter_->PollReplies();
  ASSERT_EQ(replies.size(), 1u);
  adapter_->Settle(replies[0].token,
                   Result(v1::FAILED_PRECONDITION, "case 7 is dispatched; resolve needs it accepted"));
  EXPECT_TRUE(fs::exists(inbox_ / "rejected/r.json"));
  const std::string reason = ReadFile(inbox_ / "rejected/r.json.reason");
  EXPECT_NE(reason.find("FAILED_PRECONDITION"), std::string::npos) << reason;
  EXPECT_NE(reason.find("resolve needs it accepted"), std::string::npos) << reason;
  EXPECT_TRUE(adapter_->PollReplies().empty());
}

}  // namespace
}  // namespace casebus::adapters

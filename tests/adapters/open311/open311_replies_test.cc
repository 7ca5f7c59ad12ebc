// adapters/open311, replies: the adapter's poller against tests/support/open311_server.py.
// The test changes a forwarded request on the server (notes, then closed) and checks the
// replies the adapter offers — Accept, Note, Resolve, one at a time and in that order, with
// deterministic request ids — how Settle() finishes or re-offers them, that they survive a
// restart, that a token is traded for an id, and that answers it cannot read change nothing.

#include "tests/adapters/open311/open311_fixture.h"

namespace casebus::open311::testing {
namespace {

class Open311RepliesTest : public Open311AdapterTest {
 protected:
  // The one reply offered now (fails the test when there is not exactly one).
  v1::Command Next(dispatch::Adapter& a, InboundReply* reply = nullptr) {
    auto got = NextReplies(a);
    EXPECT_EQ(got.size(), 1u);
    if (got.empty()) return {};
    EXPECT_EQ(got[0].command.actor(), "roads");
    EXPECT_EQ(got[0].token, got[0].command.request_id());
    if (reply) *reply = got[0];
    return got[0].command;
  }
  // Nothing is offered during a few poll rounds.
  void ExpectQuiet(dispatch::Adapter& a,
                   const std::string& path = "/open311/v2/requests/638344.json") {
    ASSERT_TRUE(WaitForPolls(path, 3));
    auto got = a.PollReplies();
    EXPECT_TRUE(got.empty()) << got.size() << " replies, first " << got[0].command.DebugString();
  }
};

TEST_F(Open311RepliesTest, AcceptThenNotesThenResolveFollowTheRemoteRequest) {
  auto adapter = Make();
  ASSERT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);

  v1::Command accept = Next(*adapter);
  ASSERT_TRUE(accept.has_accept()) << accept.DebugString();
  EXPECT_EQ(accept.request_id(), "open311-42-1-accept");
  EXPECT_EQ(accept.accept().case_id(), 42u);
  EXPECT_EQ(accept.accept().work_order_id(), "42-1");
  EXPECT_TRUE(adapter->PollReplies().empty()) << "offered twice while waiting";
  adapter->Settle(accept.request_id(), EngineSays(v1::BUSY, "intake queue is full"));
  EXPECT_EQ(Next(*adapter).request_id(), "open311-42-1-accept") << "BUSY must offer it again";
  adapter->Settle(accept.request_id(), EngineSays(v1::OK));
  ExpectQuiet(*adapter);

  server_->Change("638344", {{"status_notes", "Crew dispatched, ETA 2 h"}});
  v1::Command note = Next(*adapter);
  ASSERT_TRUE(note.has_note()) << note.DebugString();
  EXPECT_EQ(note.note().text(), "Crew dispatched, ETA 2 h");
  EXPECT_EQ(note.note().case_id(), 42u);
  EXPECT_TRUE(note.request_id().starts_with("open311-42-1-note-")) << note.request_id();
  adapter->Settle(note.request_id(), EngineSays(v1::UNAVAILABLE));
  EXPECT_EQ(Next(*adapter).request_id(), note.request_id()) << "UNAVAILABLE must offer it again";
  adapter->Settle(note.request_id(), EngineSays(v1::OK));
  server_->Change("638344", {{"agency_responsible", "Someone else"}});  // not a note
  ExpectQuiet(*adapter);

  server_->Change("638344", {{"status", "closed"}, {"status_notes", "Drain cleared"}});
  v1::Command resolve = Next(*adapter);
  ASSERT_TRUE(resolve.has_resolve()) << resolve.DebugString();
  EXPECT_EQ(resolve.request_id(), "open311-42-1-resolve");
  ASSERT_EQ(resolve.resolve().evidence_size(), 1);
  EXPECT_EQ(resolve.resolve().evidence(0), "open311:" + server_->Endpoint() + "requests/638344");
  EXPECT_EQ(resolve.resolve().note(), "Drain cleared");
  adapter->Settle(resolve.request_id(), EngineSays(v1::OK));

  // Closed: no longer polled, nothing more offered.
  const int64_t polls = server_->Gets(RequestPath());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_LE(server_->Gets(RequestPath()), polls + 1);
  EXPECT_TRUE(adapter->PollReplies().empty());
  boost::json::object r = Record();
  EXPECT_TRUE(r["closed"].as_bool());
  for (const auto& q : r["replies"].as_array()) EXPECT_TRUE(q.at("done").as_bool()) << q;
}

TEST_F(Open311RepliesTest, RepliesOfAnOrderAreOfferedOneAtATimeInOrder) {
  auto adapter = Make();
  ASSERT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);
  InboundReply accept;
  Next(*adapter, &accept);
  server_->Change("638344", {{"status_notes", "first"}});
  ASSERT_TRUE(WaitFor([&] { return RecordText("status_notes") == "first"; }));
  server_->Change("638344", {{"status", "closed"}, {"status_notes", "done"}});
  ASSERT_TRUE(WaitFor([&] { return RecordFlag("closed"); }));
  EXPECT_TRUE(adapter->PollReplies().empty()) << "a note went out before the accept settled";
  adapter->Settle(accept.token, EngineSays(v1::OK));
  v1::Command note = Next(*adapter);
  EXPECT_EQ(note.note().text(), "first");
  adapter->Settle(note.request_id(), EngineSays(v1::OK));
  v1::Command resolve = Next(*adapter);
  EXPECT_EQ(resolve.resolve().note(), "done");
}

TEST_F(Open311RepliesTest, AFinalRefusalIsLoggedAndNotOfferedAgain) {
  auto adapter = Make();
  ASSERT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);
  v1::Command accept = Next(*adapter);
  adapter->Settle(
      accept.request_id(),
      EngineSays(v1::FAILED_PRECONDITION, "case 42 is RETURNED; accept needs it dispatched"));
  ExpectQuiet(*adapter);
  auto replies = Record()["replies"].as_array();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].at("done").as_bool());
  EXPECT_NE(std::string(replies[0].at("result").as_string()).find("RETURNED"), std::string::npos);
}

TEST_F(Open311RepliesTest, UnsettledRepliesSurviveARestartUnderTheSameIds) {
  auto adapter = Make();
  ASSERT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);
  v1::Command accept = Next(*adapter);
  adapter->Settle(accept.request_id(), EngineSays(v1::OK));
  server_->Change("638344", {{"status_notes", "on site"}});
  v1::Command note = Next(*adapter);  // offered, never settled: the engine went down
  adapter.reset();

  auto restarted = Make();
  v1::Command again = Next(*restarted);
  EXPECT_EQ(again.request_id(), note.request_id());
  EXPECT_EQ(again.note().text(), "on site");
  restarted->Settle(again.request_id(), EngineSays(v1::OK));
  // The poller resumed from the record: a later change still comes through.
  server_->Change("638344", {{"status", "closed"}});
  v1::Command resolve = Next(*restarted);
  EXPECT_TRUE(resolve.has_resolve()) << resolve.DebugString();
  EXPECT_EQ(resolve.resolve().note(), "on site");
}

TEST_F(Open311RepliesTest, UnreadableStatusAnswersChangeNothing) {
  auto adapter = Make();
  ASSERT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);
  adapter->Settle(Next(*adapter).request_id(), EngineSays(v1::OK));
  ASSERT_TRUE(WaitFor([&] { return RecordText("status") == "open"; }));
  const std::string before = RecordBytes();
  server_->Change("638344", {{"status", "closed"}, {"status_notes", "should not be seen yet"}});
  for (const char* mode : {"garbage", "wrongshape", "badstatus", "otherid", "500", "huge"}) {
    server_->Mode({{"get", mode}});
    ExpectQuiet(*adapter);
    EXPECT_EQ(RecordBytes(), before) << mode;
  }
  server_->Mode({{"get", "ok"}});
  v1::Command resolve = Next(*adapter);
  EXPECT_EQ(resolve.resolve().note(), "should not be seen yet");
}

TEST_F(Open311RepliesTest, ATokenIsTradedForTheRequestId) {
  server_->Mode({{"token", true}});
  auto adapter = Make();
  ASSERT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);
  EXPECT_EQ(Record()["token"].as_string(), "tok-638344");
  EXPECT_TRUE(WaitFor([&] { return RecordText("remote_id") == "638344"; }));
  adapter->Settle(Next(*adapter).request_id(), EngineSays(v1::OK));
  server_->Change("638344", {{"status", "closed"}, {"status_notes", "fixed"}});
  v1::Command resolve = Next(*adapter);
  EXPECT_EQ(resolve.resolve().evidence(0), "open311:" + server_->Endpoint() + "requests/638344");
  EXPECT_GE(server_->Gets("/open311/v2/tokens/tok-638344.json"), 1);
}

TEST_F(Open311RepliesTest, ARequestTheServerKeepsFailingOnDoesNotStarveTheOthers) {
  auto adapter = Make();
  ASSERT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);  // 638344
  ASSERT_EQ(adapter->Deliver(Order("43-1")).outcome, Outcome::kDelivered);   // 638345
  int accepted = 0;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& r : adapter->PollReplies()) {
      EXPECT_TRUE(r.command.has_accept());
      adapter->Settle(r.token, EngineSays(v1::OK));
      ++accepted;
    }
    return accepted == 2;
  }));
  server_->Change("638344", {{"fail_get", 503}});
  server_->Change("638345", {{"status_notes", "still heard"}});
  v1::Command note = Next(*adapter);
  EXPECT_EQ(note.note().text(), "still heard");
  EXPECT_TRUE(note.request_id().starts_with("open311-43-1-note-")) << note.request_id();
}

TEST_F(Open311RepliesTest, ACorruptRecordCountsAsForwardedAndIsNotPostedAgain) {
  fs::create_directories(dir_.path() + "/open311/roads");
  std::ofstream(RecordPath()) << "{not json";
  auto adapter = Make();
  EXPECT_EQ(adapter->Deliver(LocatedOrder()).outcome, Outcome::kDelivered);
  EXPECT_TRUE(server_->Posts().empty());
  EXPECT_TRUE(adapter->PollReplies().empty());
}

}  // namespace
}  // namespace casebus::open311::testing

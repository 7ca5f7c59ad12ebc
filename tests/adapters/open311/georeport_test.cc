// adapters/open311, pure parts: the GeoReport v2 form and parsers against the spec's example
// answers and against what a broken server might send; ForwardRecord::Observe's replies.

#include "adapters/open311/georeport.h"

#include <gtest/gtest.h>

#include "adapters/open311/forward_record.h"

namespace casebus::open311 {
namespace {

TEST(GeoReportTest, FormEscapesLikeABrowser) {
  EXPECT_EQ(FormEscape("a b&c=d"), "a+b%26c%3Dd");
  EXPECT_EQ(FormEscape("attribute[x]"), "attribute%5Bx%5D");
  EXPECT_EQ(FormEscape("井"), "%E4%BA%95");
  EXPECT_EQ(PathEscape("a b/../c"), "a%20b%2F..%2Fc");
}

TEST(GeoReportTest, ReadsThePostAnswersOfTheSpec) {
  auto a = ParsePostAnswer(
      R"([{"service_request_id":293944,"service_notice":"The City will inspect within 24 hours","account_id":null}])");
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->service_request_id, "293944");
  EXPECT_EQ(a->service_notice, "The City will inspect within 24 hours");
  auto t = ParsePostAnswer(R"([{"token":"12345"}])");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->service_request_id, "");
  EXPECT_EQ(t->token, "12345");
}

TEST(GeoReportTest, RefusesPostAnswersWithoutAnId) {
  for (const char* body :
       {"", "<html>", "{}", "[]", "[1]", "[{}]", R"([{"service_request_id":null}])",
        R"([{"service_request_id":1.5}])", R"([{"service_request_id":""}])",
        R"([{"service_request_id":{"a":1}}])"}) {
    EXPECT_FALSE(ParsePostAnswer(body)) << body;
  }
  EXPECT_FALSE(ParsePostAnswer(R"([{"service_request_id":")" + std::string(200, '7') + "\"}]"));
  EXPECT_FALSE(ParsePostAnswer("[{\"service_request_id\":\"a\\u0000b\"}]"));
  EXPECT_FALSE(ParsePostAnswer(std::string(100, '[') + std::string(100, ']')));  // too deep
}

TEST(GeoReportTest, ReadsTheErrorArray) {
  EXPECT_EQ(ParseErrorDescription(R"([{"code":403,"description":"Invalid api_key"}])"),
            "Invalid api_key");
  EXPECT_EQ(ParseErrorDescription("Bad Request"), std::nullopt);
  EXPECT_EQ(ParseErrorDescription(R"([{"code":400}])"), std::nullopt);
}

TEST(GeoReportTest, ReadsARequestsStatus) {
  auto s = ParseRequestStatus(
      R"([{"service_request_id":638344,"status":"closed","status_notes":"Duplicate request.",
      "service_name":"Sidewalk and Curb Issues","service_code":"006","description":null,"agency_responsible":null,
      "service_notice":null,"requested_datetime":"2010-04-14T06:37:38-08:00","updated_datetime":"2010-04-14T06:37:38-08:00",
      "expected_datetime":"2010-04-15T06:37:38-08:00","address":"8TH AVE and JUDAH ST","zipcode":94122,
      "lat":37.762221815,"long":-122.4651145}])",
      "638344");
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_TRUE(s->closed);
  EXPECT_EQ(s->status_notes, "Duplicate request.");
  EXPECT_EQ(s->agency_responsible, "");
  EXPECT_EQ(s->updated_datetime, "2010-04-14T06:37:38-08:00");
  auto open = ParseRequestStatus(R"([{"status":"Open"}])", "1");
  ASSERT_TRUE(open);
  EXPECT_FALSE(open->closed);
}

TEST(GeoReportTest, RefusesStatusAnswersItCannotTrust) {
  const std::pair<const char*, const char*> bad[] = {
      {"<html>maintenance</html>", "not JSON"},
      {R"({"status":"open"})", "not a JSON array"},
      {R"([{"service_request_id":"9","status":"open"}])", "about request 9"},
      {R"([{"status":"pending"}])", "neither open nor closed"},
      {R"([{}])", "missing"},
      {R"([{"status":"open","status_notes":42}])", "status_notes is not a string"},
  };
  for (const auto& [body, says] : bad) {
    auto s = ParseRequestStatus(body, "1");
    ASSERT_FALSE(s) << body;
    EXPECT_NE(s.error().message().find(says), std::string::npos) << s.error().message();
  }
}

TEST(GeoReportTest, TheFormCarriesTheOrder) {
  v1::WorkOrder o;
  o.set_id("7-2");
  o.set_category("200404");
  o.mutable_place()->set_grid("330102001001001");
  v1::Open311Adapter c;
  const std::string form = ServiceRequestForm(o, c, "k");
  EXPECT_EQ(form,
            "api_key=k&service_code=200404&address_string=grid+330102001001001&"
            "description=casebus+work+order+7-2&attribute%5Bcasebus_work_order%5D=7-2");
}

ForwardRecord Forwarded() {
  ForwardRecord r;
  r.work_order_id = "7-2";
  r.case_id = 7;
  r.remote_id = "55";
  r.QueueAccept();
  return r;
}

TEST(ForwardRecordTest, NotesChangeIntoNotesAndClosingIntoOneResolve) {
  ForwardRecord r = Forwarded();
  EXPECT_TRUE(r.Observe({false, "", "", ""}, "x"));  // first sight: status open
  EXPECT_EQ(r.replies.size(), 1u);
  EXPECT_FALSE(r.Observe({false, "", "", ""}, "x"));
  EXPECT_TRUE(r.Observe({false, "on the way", "", ""}, "x"));
  ASSERT_EQ(r.replies.size(), 2u);
  EXPECT_TRUE(r.replies[1].request_id.starts_with("open311-7-2-note-"));
  EXPECT_FALSE(r.Observe({false, "on the way", "", ""}, "x"));
  EXPECT_TRUE(r.Observe({true, std::string(3000, 'n'), "", ""}, "http://h/requests/55"));
  ASSERT_EQ(r.replies.size(), 3u);
  EXPECT_EQ(r.replies[2].evidence, "open311:http://h/requests/55");
  EXPECT_EQ(r.replies[2].text.size(), 2000u);             // resolve.note's limit
  EXPECT_FALSE(r.Observe({true, "later", "", ""}, "x"));  // closed: nothing more
  EXPECT_EQ(r.replies.size(), 3u);
  v1::Command c = r.CommandFor(r.replies[2], "roads");
  EXPECT_EQ(c.request_id(), "open311-7-2-resolve");
  EXPECT_EQ(c.actor(), "roads");
  EXPECT_EQ(c.resolve().case_id(), 7u);
}

TEST(ForwardRecordTest, NoteIdsAreAFunctionOfTheText) {
  ForwardRecord a = Forwarded(), b = Forwarded();
  a.Observe({false, "same words", "", ""}, "x");
  b.Observe({false, "other words", "", ""}, "x");
  b.Observe({false, "same words", "", ""}, "x");
  EXPECT_EQ(a.replies.back().request_id, b.replies.back().request_id);
  EXPECT_NE(b.replies[1].request_id, b.replies[2].request_id);
}

TEST(ForwardRecordTest, TruncateKeepsUtf8Whole) {
  EXPECT_EQ(Truncate("井井", 4), "井");  // 3 + 3 bytes
  EXPECT_EQ(Truncate("abc", 5), "abc");
}

}  // namespace
}  // namespace casebus::open311

// The HTTP API's authorization, end to end: every role × every endpoint × a case of the
// caller's own department and one of another, over real sockets on 127.0.0.1 in front of a
// started Engine. The expected outcome of each probe comes from the role table below — the
// issue's words, written out independently of engine/auth/policy.cc — and the test counts
// what the server did instead: an allow where the table says deny (or not found), a foreign
// case that shows up in a list, a foreign probe that answers anything but 404.

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "adapters/register_all.h"
#include "engine/auth/access.h"
#include "engine/query/telemetry.h"
#include "engine/server/api_routes.h"
#include "engine/server/http_access.h"
#include "engine/server/open311_routes.h"
#include "engine/server/read_routes.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus::server {
namespace {

using namespace casebus::server::testing;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

constexpr const char* kOwnDept = "sanitation";       // the department token's department
constexpr const char* kForeignDept = "water-supply"; // another one

// What each role may do, in the issue's words: operator (report, register, dispatch),
// dispatcher, department (only its own work orders and cases), leader (read-only metrics and
// reports), admin (config reload, dead letters), reporter (an Open311 app: reports only).
const std::map<std::string, std::set<std::string>>& Allowed() {
  static const std::map<std::string, std::set<std::string>> kTable = {
      {"operator", {"report", "register", "reject", "dispatch", "merge", "note", "show", "list", "workorders",
                    "metrics", "open311-report"}},
      {"dispatcher", {"report", "register", "reject", "dispatch", "approveExtension", "denyExtension", "suspend",
                      "resume", "verify", "close", "reopen", "merge", "void", "note", "show", "list", "workorders",
                      "metrics", "status", "open311-report"}},
      {"department", {"accept", "return", "extend", "resolve", "note", "supervisionReply", "show", "list",
                      "workorders", "metrics", "open311-update"}},
      {"leader", {"show", "list", "workorders", "metrics", "status"}},
      {"admin", {"status", "deadletters", "deadletters:retry", "deadletters:drop", "reload", "metrics"}},
      {"reporter", {"report", "open311-report"}},
  };
  return kTable;
}

// Endpoints that act on one case (own / foreign matter for a department).
const std::vector<std::string>& CaseActions() {
  static const std::vector<std::string> kActions = {
      "register", "reject", "dispatch", "accept", "return", "extend", "approveExtension", "denyExtension",
      "suspend", "resume", "resolve", "verify", "close", "reopen", "merge", "void", "note", "supervisionReply",
      "show", "open311-update"};
  return kActions;
}
const std::vector<std::string>& OtherEndpoints() {
  static const std::vector<std::string> kOther = {"report", "list", "workorders", "status", "deadletters",
                                                  "deadletters:retry", "deadletters:drop", "reload", "metrics",
                                                  "open311-report"};
  return kOther;
}

// A body that passes the command's field checks, so the request reaches the policy.
std::string BodyOf(const std::string& action, uint64_t other_case) {
  if (action == "reject" || action == "return" || action == "denyExtension" || action == "suspend" ||
      action == "reopen" || action == "void")
    return R"({"reason":"matrix probe"})";
  if (action == "dispatch") return std::string(R"({"department":")") + kOwnDept + "\"}";
  if (action == "extend") return R"({"hours":4,"reason":"matrix probe"})";
  if (action == "approveExtension") return R"({"hours":4})";
  if (action == "resolve") return R"({"evidence":["photo://after"],"note":"done"})";
  if (action == "verify") return R"({"passed":true})";
  if (action == "merge") return R"({"into_case_id":")" + std::to_string(other_case) + "\"}";
  if (action == "note" || action == "supervisionReply") return R"({"text":"matrix probe"})";
  return "{}";
}

struct Answer {
  int status = 0;
  std::string body;
};

class ApiMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    adapters::RegisterAllAdapters(registry_);
    auto city = std::make_shared<v1::CityConfig>(*SampleCity());
    telemetry_ = std::make_unique<query::Telemetry>(*city);
    EngineOptions options;
    options.data_dir = dir_.path();
    options.run_dispatcher = false;
    options.sync = false;  // hundreds of small batches; durability is not what this test is about
    auto e = Engine::Open(city, options, clock_, registry_);
    ASSERT_TRUE(e.has_value()) << e.error().ToString();
    engine_ = std::move(*e);
    engine_->Start();

    std::string yaml = "rate_per_second: 1000000\nburst: 1000000\ntokens:\n";
    for (const auto& [role, allowed] : Allowed()) {
      const std::string token = "cbt_matrix-" + role;
      tokens_[role] = token;
      yaml += "  - {name: " + role + "-1, role: " + role +
              (role == "department" ? std::string(", departments: [") + kOwnDept + "]" : "") +
              ", sha256: " + auth::TokenHash(token) + "}\n";
    }
    auto access = auth::Access::Load(yaml, "<matrix access>", *city, "");
    ASSERT_TRUE(access.has_value()) << access.error().ToString();
    gate_ = std::make_unique<Gatekeeper>(*access, clock_);
    http_ = std::make_unique<HttpServer>();
    AddReadRoutes(*http_, *engine_, *telemetry_, *gate_);
    AddOpen311Routes(*http_, *engine_, *gate_);
    ApiOptions api;
    api.reload = [] { return Status::Ok(); };
    AddApiRoutes(*http_, *engine_, *gate_, api);
    auto bound = http_->Start({.listen = "127.0.0.1:0"});
    ASSERT_TRUE(bound.has_value()) << bound.error().ToString();
    port_ = static_cast<unsigned short>(std::stoi(bound->substr(bound->rfind(':') + 1)));
  }

  void TearDown() override {
    if (http_) http_->Stop();
    if (engine_) engine_->Stop();
  }

  Answer Send(const std::string& method, const std::string& target, const std::string& token,
              const std::string& body = {}, const std::string& content_type = "application/json",
              const std::string& idempotency_key = {}) {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.connect({boost::asio::ip::make_address("127.0.0.1"), port_});
    http::request<http::string_body> req(method == "POST" ? http::verb::post : http::verb::get, target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (!idempotency_key.empty()) req.set("Idempotency-Key", idempotency_key);
    if (method == "POST") {
      req.set(http::field::content_type, content_type);
      req.body() = body;
      req.prepare_payload();
    }
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return {static_cast<int>(res.result_int()), res.body()};
  }

  // A fresh case, registered and dispatched to `department`.
  uint64_t DispatchedCase(const std::string& department) {
    static const char* kCategories[] = {"100101", "100113", "200404", "100106"};
    const int n = next_case_++;
    const std::string s = "m" + std::to_string(n);
    v1::Reply r = engine_->Call(Req({Report("rep-" + s, Grid(n % 600), kCategories[(n / 600) % 4])}));
    EXPECT_EQ(r.results(0).code(), v1::OK) << r.results(0).message();
    const uint64_t id = r.results(0).case_id();
    EXPECT_FALSE(r.results(0).merged()) << "case " << n << " merged: use another grid";
    v1::Command d = Dispatch("dis-" + s, id);
    d.mutable_dispatch()->set_department(department);
    r = engine_->Call(Req({Register("reg-" + s, id), d}));
    for (const auto& res : r.results()) EXPECT_EQ(res.code(), v1::OK) << res.message();
    return id;
  }

  // One probe: `role` does `endpoint`, on `target_case` for case actions.
  Answer Probe(const std::string& role, const std::string& endpoint, uint64_t target_case, uint64_t other_case) {
    const std::string& token = tokens_.at(role);
    const std::string key = "k-" + std::to_string(++keys_);
    const std::string id = std::to_string(target_case);
    if (endpoint == "show") return Send("GET", "/v1/cases/" + id, token);
    // Lists start just before the probe's cases, so both would be on the first page.
    const std::string after = std::to_string(target_case - 1);
    if (endpoint == "list") return Send("GET", "/v1/cases?limit=1000&after=" + after, token);
    if (endpoint == "workorders") return Send("GET", "/v1/workorders?limit=1000&after=" + after, token);
    if (endpoint == "status") return Send("GET", "/v1/status", token);
    if (endpoint == "deadletters") return Send("GET", "/v1/deadletters", token);
    if (endpoint == "deadletters:retry" || endpoint == "deadletters:drop")
      return Send("POST", "/v1/" + endpoint, token, R"({"all":true})");
    if (endpoint == "reload") return Send("POST", "/v1/admin/reload", token, "");
    if (endpoint == "metrics") return Send("GET", "/v1/metrics/closure?group_by=department", token);
    if (endpoint == "report") {
      const int n = next_case_++;
      return Send("POST", "/v1/cases", token,
                  R"({"category":"200404","place":{"grid":")" + Grid(n % 600) + R"("},"source":"HOTLINE"})",
                  "application/json", key);
    }
    if (endpoint == "open311-report") {
      const int n = next_case_++;
      return Send("POST", "/open311/v2/requests.json", token,
                  "api_key=" + token + "&service_code=100113&address_id=" + Grid(n % 600) + "&description=probe" + key,
                  "application/x-www-form-urlencoded");
    }
    if (endpoint == "open311-update")
      return Send("POST", "/open311/v2/servicerequestupdates.json", token,
                  "api_key=" + token + "&service_request_id=" + id + "&update_id=" + key +
                      "&status=IN_PROGRESS&description=probe",
                  "application/x-www-form-urlencoded");
    return Send("POST", "/v1/cases/" + id + ":" + endpoint, token, BodyOf(endpoint, other_case), "application/json",
                key);
  }

  // Whether the answer lists case `id` (lists and work orders).
  static bool Lists(const Answer& a, uint64_t id) {
    json::value v = json::parse(a.body);
    for (const char* list : {"cases", "work_orders"}) {
      if (!v.as_object().contains(list)) continue;
      for (const auto& c : v.at(list).as_array()) {
        const auto& o = c.as_object();
        const json::value& idv = o.contains("id") ? o.at("id") : o.at("case_id");
        if (idv.as_string() == std::to_string(id)) return true;
      }
    }
    return false;
  }

  TempDir dir_;
  ManualClock clock_{kStart};
  dispatch::AdapterRegistry registry_;
  std::unique_ptr<query::Telemetry> telemetry_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Gatekeeper> gate_;
  std::unique_ptr<HttpServer> http_;
  std::map<std::string, std::string> tokens_;
  unsigned short port_ = 0;
  int next_case_ = 0;
  int keys_ = 0;
};

TEST_F(ApiMatrixTest, EveryRoleEveryEndpointOwnAndForeign) {
  int probes = 0, unexpected_allows = 0, unexpected_denials = 0, foreign_not_404 = 0, leaks = 0;
  std::string report;
  for (const auto& [role, allowed] : Allowed()) {
    for (const bool own : {true, false}) {
      for (const auto& endpoint : CaseActions()) {
        // Fresh cases for every probe: an allowed command changes its case.
        const uint64_t own_case = DispatchedCase(kOwnDept);
        const uint64_t foreign_case = DispatchedCase(kForeignDept);
        const uint64_t target = own ? own_case : foreign_case;
        const Answer a = Probe(role, endpoint, target, own ? DispatchedCase(kOwnDept) : DispatchedCase(kForeignDept));
        ++probes;
        const bool hidden = role == "department" && !own;
        const bool want_allow = !hidden && allowed.count(endpoint) > 0;
        const bool got_allow = a.status != 401 && a.status != 403 && a.status != 404;
        const std::string line = role + (own ? " own " : " foreign ") + endpoint + " → " +
                                 std::to_string(a.status) + " " + a.body.substr(0, 160) + "\n";
        if (got_allow && !want_allow) ++unexpected_allows, report += "ALLOWED " + line;
        if (!got_allow && want_allow) ++unexpected_denials, report += "DENIED " + line;
        if (hidden && a.status != 404) ++foreign_not_404, report += "NOT 404 " + line;
        if (!hidden && !want_allow && a.status != 403) report += "NOT 403 " + line, ++unexpected_denials;
      }
    }
    for (const auto& endpoint : OtherEndpoints()) {
      const uint64_t own_case = DispatchedCase(kOwnDept);
      const uint64_t foreign_case = DispatchedCase(kForeignDept);
      const Answer a = Probe(role, endpoint, own_case, foreign_case);
      ++probes;
      const bool want_allow = allowed.count(endpoint) > 0;
      const bool got_allow = a.status != 401 && a.status != 403 && a.status != 404;
      const std::string line = role + " " + endpoint + " → " + std::to_string(a.status) + " " + a.body.substr(0, 160) + "\n";
      if (got_allow && !want_allow) ++unexpected_allows, report += "ALLOWED " + line;
      if (!got_allow && want_allow) ++unexpected_denials, report += "DENIED " + line;
      if (!want_allow && a.status != 403) ++unexpected_denials, report += "NOT 403 " + line;
      // Lists are filtered: a department sees its own case and never the other one.
      if (got_allow && (endpoint == "list" || endpoint == "workorders")) {
        if (role == "department" && Lists(a, foreign_case)) ++leaks, report += "LEAK " + line;
        if (!Lists(a, own_case)) ++unexpected_denials, report += "MISSING " + line;
      }
    }
  }
  std::printf("authorization matrix: %d probes, %d unexpected allows, %d unexpected denials, "
              "%d foreign probes not 404, %d list leaks\n",
              probes, unexpected_allows, unexpected_denials, foreign_not_404, leaks);
  EXPECT_EQ(unexpected_allows, 0) << report;
  EXPECT_EQ(unexpected_denials, 0) << report;
  EXPECT_EQ(foreign_not_404, 0) << report;
  EXPECT_EQ(leaks, 0) << report;
  EXPECT_GE(probes, 6 * (2 * 20 + 10));
}

// A foreign case id and an id that does not exist answer alike, for every department action:
// same status, same body shape, so ids cannot be probed.
TEST_F(ApiMatrixTest, ForeignAndMissingCasesLookTheSame) {
  const uint64_t foreign = DispatchedCase(kForeignDept);
  const uint64_t missing = 999999;
  for (const char* endpoint : {"show", "accept", "resolve", "close", "void", "note", "open311-update"}) {
    const Answer f = Probe("department", endpoint, foreign, foreign);
    const Answer m = Probe("department", endpoint, missing, missing);
    EXPECT_EQ(f.status, 404) << endpoint << ": " << f.body;
    EXPECT_EQ(m.status, 404) << endpoint << ": " << m.body;
    std::string fb = f.body, mb = m.body;
    for (auto* s : {&fb, &mb}) {
      for (const std::string& id : {std::to_string(foreign), std::to_string(missing)})
        for (size_t at; (at = s->find(id)) != std::string::npos;) s->replace(at, id.size(), "ID");
    }
    EXPECT_EQ(fb, mb) << endpoint;
  }
}

TEST_F(ApiMatrixTest, LeadersSeeNoReporterPersonalData) {
  v1::Command rep = Report("rep-pd", Grid(601), "100101");
  rep.mutable_report()->mutable_reporter()->set_name("张三");
  rep.mutable_report()->mutable_reporter()->set_contact("13800000000");
  const uint64_t id = engine_->Call(Req({rep})).results(0).case_id();
  ASSERT_GT(id, 0u);
  const Answer leader = Send("GET", "/v1/cases/" + std::to_string(id), tokens_.at("leader"));
  ASSERT_EQ(leader.status, 200) << leader.body;
  EXPECT_EQ(leader.body.find("13800000000"), std::string::npos) << leader.body;
  EXPECT_EQ(leader.body.find("张三"), std::string::npos) << leader.body;
  const Answer list = Send("GET", "/v1/cases?limit=1000", tokens_.at("leader"));
  EXPECT_EQ(list.body.find("13800000000"), std::string::npos);
  const Answer op = Send("GET", "/v1/cases/" + std::to_string(id), tokens_.at("operator"));
  EXPECT_NE(op.body.find("13800000000"), std::string::npos) << op.body;
}

TEST_F(ApiMatrixTest, NoTokenBadTokenAndIdempotency) {
  EXPECT_EQ(Send("GET", "/v1/cases", "").status, 401);
  EXPECT_EQ(Send("GET", "/v1/cases", "cbt_not-a-token").status, 401);
  EXPECT_EQ(Send("GET", "/v1/metrics/closure?group_by=department", "").status, 401);
  const std::string body = R"({"category":"100101","place":{"grid":")" + Grid(602) + R"("},"source":"HOTLINE"})";
  const Answer no_key = Send("POST", "/v1/cases", tokens_.at("operator"), body);
  EXPECT_EQ(no_key.status, 400) << no_key.body;
  EXPECT_NE(no_key.body.find("Idempotency-Key"), std::string::npos);
  const Answer first = Send("POST", "/v1/cases", tokens_.at("operator"), body, "application/json", "idem-1");
  ASSERT_EQ(first.status, 201) << first.body;
  const Answer again = Send("POST", "/v1/cases", tokens_.at("operator"), body, "application/json", "idem-1");
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body).at("case_id"), json::parse(first.body).at("case_id"));
  EXPECT_EQ(json::parse(again.body).at("duplicate"), true);
  const std::string other = R"({"category":"100113","place":{"grid":")" + Grid(603) + R"("},"source":"HOTLINE"})";
  const Answer reused = Send("POST", "/v1/cases", tokens_.at("operator"), other, "application/json", "idem-1");
  EXPECT_EQ(reused.status, 422) << reused.body;
}

}  // namespace
}  // namespace casebus::server

// engine/server HttpServer with the read routes, over real sockets on 127.0.0.1 (port 0) in
// front of a started Engine on a temporary directory. The client is a few lines of POSIX
// sockets, so a test can send any bytes: malformed request lines, oversized headers and
// bodies, slow dribbles, hundreds of connections. Every answer is checked against the engine's
// own answer through Engine::Call, and the ledger must be unchanged after the attacks.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/register_all.h"
#include "engine/base/time_format.h"
#include "engine/query/metrics_json.h"
#include "engine/query/telemetry.h"
#include "engine/auth/access.h"
#include "engine/server/http_access.h"
#include "engine/server/http_server.h"
#include "engine/server/read_routes.h"
#include "tests/engine/server/server_fixture.h"

namespace casebus::server {
namespace {

using namespace casebus::server::testing;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
namespace json = boost::json;

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// One TCP connection to the server; any bytes out, HTTP/1.1 responses (Content-Length) in.
class RawClient {
 public:
  explicit RawClient(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // The next response, or nullopt when the connection closes or `limit` passes first.
  std::optional<RawResponse> Read(std::chrono::milliseconds limit = 5s) {
    const auto end = Steady::now() + limit;
    for (;;) {
      if (auto r = Parse()) return r;
      if (!Fill(end)) return std::nullopt;
    }
  }

  // True once the server has closed the connection (EOF or reset) within `limit`; bytes that
  // arrive meanwhile are kept for Read().
  bool Closed(std::chrono::milliseconds limit) {
    const auto end = Steady::now() + limit;
    while (Steady::now() < end) {
      if (!Fill(end)) return closed_;
    }
    return closed_;
  }

 private:
  // Reads what is there, waiting until `end`. False on close or timeout.
  bool Fill(Steady::time_point end) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Steady::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }

  std::optional<RawResponse> Parse() {
    const size_t head_end = in_.find("\r\n\r\n");
    if (head_end == std::string::npos) return std::nullopt;
    RawResponse r;
    const std::string head = in_.substr(0, head_end);
    if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12) {
      r.status = -1;  // not HTTP: fails every status check
      in_.clear();
      return r;
    }
    r.status = std::stoi(head.substr(9, 3));
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos < head.size()) {
      const size_t next = head.find("\r\n", pos + 2);
      const std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      }
      pos = next;
    }
    const std::string cl = r.Header("content-length");
    const size_t length = cl.empty() ? 0 : std::stoul(cl);
    if (in_.size() < head_end + 4 + length) return std::nullopt;
    r.body = in_.substr(head_end + 4, length);
    in_.erase(0, head_end + 4 + length);
    return r;
  }

  int fd_;
  bool connected_ = false;
  bool closed_ = false;
  std::string in_;
};

// The leader's bearer token: /v1/metrics/closure needs a role that may read metrics.
constexpr const char* kLeaderToken = "cbt_http-test-leader-token";

std::string GetRequest(const std::string& target, const std::string& extra_headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kLeaderToken + "\r\n" +
         extra_headers + "\r\n";
}

// Access with the leader's token, and rates no test here reaches.
std::shared_ptr<const auth::Access> LeaderAccess() {
  const std::string yaml = "rate_per_second: 1000000\nburst: 1000000\ntokens:\n  - {name: leader, role: leader, sha256: " +
                           auth::TokenHash(kLeaderToken) + "}\n";
  auto a = auth::Access::Load(yaml, "<test access>", *SampleCity(), "");
  EXPECT_TRUE(a.has_value()) << a.error().ToString();
  return a ? *a : auth::Access::Empty();
}

// The error object of a JSON error body ({"error":{"field":..,"reason":..}}), or empty when
// the body is not that. `strict`: the body must be UTF-8, as RFC 8259 requires.
json::object ErrorOf(const RawResponse& r, bool strict = true) {
  boost::system::error_code ec;
  json::parse_options options;
  options.allow_invalid_utf8 = !strict;
  json::value v = json::parse(r.body, ec, {}, options);
  if (ec || !v.is_object() || !v.as_object().contains("error") || !v.at("error").is_object()) return {};
  return v.at("error").as_object();
}
std::string FieldOf(const RawResponse& r) {
  const json::object e = ErrorOf(r);
  return e.contains("field") && e.at("field").is_string() ? std::string(e.at("field").as_string()) : "";
}

// Equal JSON values; on a difference, the two texts around the first differing byte.
::testing::AssertionResult SameJson(const json::value& got, const json::value& want) {
  if (got == want) return ::testing::AssertionSuccess();
  const std::string a = json::serialize(got), b = json::serialize(want);
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  const size_t from = i > 120 ? i - 120 : 0;
  return ::testing::AssertionFailure() << "differ at byte " << i << ":\n  got  …" << a.substr(from, 240)
                                       << "\n  want …" << b.substr(from, 240);
}

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    adapters::RegisterAllAdapters(registry_);
    telemetry_ = std::make_unique<query::Telemetry>(*SampleCity());
    EngineOptions options;
    options.data_dir = dir_.path();
    options.run_dispatcher = false;  // work orders stay in the outbox
    options.telemetry = telemetry_.get();
    auto e = Engine::Open(SampleCity(), options, clock_, registry_);
    ASSERT_TRUE(e.has_value()) << e.error().ToString();
    engine_ = std::move(*e);
    engine_->Start();
    ASSERT_NO_FATAL_FAILURE(Populate());
    http_ = std::make_unique<HttpServer>();
    AddReadRoutes(*http_, *engine_, *telemetry_, gate_);
    auto bound = http_->Start({.listen = "127.0.0.1:0"});
    ASSERT_TRUE(bound.has_value()) << bound.error().ToString();
    port_ = static_cast<uint16_t>(std::stoi(bound->substr(bound->rfind(':') + 1)));
    ASSERT_NE(port_, 0);
  }

  // The server first: a reply the engine sends after that is posted to a stopped (still
  // alive) server and dropped; then the engine, which answers what it still holds.
  void TearDown() override {
    if (http_) http_->Stop();
    if (engine_) engine_->Stop();
    engine_.reset();
    http_.reset();
  }

  v1::CommandResult Ok(const v1::Command& c) {
    v1::Reply r = engine_->Call(Req({c}));
    EXPECT_EQ(r.results_size(), 1);
    if (r.results_size() != 1) return {};
    EXPECT_EQ(r.results(0).code(), v1::OK) << c.request_id() << ": " << r.results(0).message();
    return r.results(0);
  }

  // Case n: reported in grid 37·n in one of four categories, registered and, up to `stage`,
  // dispatched (1), accepted and resolved (2), verified and closed (3).
  void Case(int n, int stage) {
    static const char* kCategories[] = {"100101", "100113", "200404", "100106"};
    const std::string s = std::to_string(n);
    const uint64_t id = Ok(Report("rep-" + s, Grid(37 * n), kCategories[n % 4])).case_id();
    ASSERT_GT(id, 0u);
    Ok(Register("reg-" + s, id));
    if (stage < 1) return;
    const std::string dept = Ok(Dispatch("dis-" + s, id)).department();
    ASSERT_FALSE(dept.empty());
    if (stage < 2) return;
    Ok(Accept("acc-" + s, id, dept));
    Ok(Resolve("res-" + s, id, dept));
    if (stage < 3) return;
    Ok(Verify("ver-" + s, id));
    Ok(Close("clo-" + s, id));
  }

  // Two days of cases: closed, resolved, open, never dispatched; the open ones go overdue.
  void Populate() {
    for (int n = 0; n < 6; ++n) ASSERT_NO_FATAL_FAILURE(Case(n, n < 3 ? 3 : n == 3 ? 2 : 1));
    clock_.Advance(kDay);
    for (int n = 6; n < 10; ++n) ASSERT_NO_FATAL_FAILURE(Case(n, n == 6 ? 3 : n == 9 ? 0 : 1));
    clock_.Advance(10 * kDay);  // the 2-urgent-hour handle deadlines pass
    engine_->Tick();
  }

  v1::MetricsReply EngineMetrics(v1::MetricsGroup group, const std::string& from = "",
                                 const std::string& to = "") {
    v1::Request r;
    r.set_version(1);
    auto* m = r.mutable_query()->mutable_metrics();
    m->set_group_by(group);
    m->set_from(from);
    m->set_to(to);
    v1::Reply reply = engine_->Call(std::move(r));
    EXPECT_EQ(reply.query().code(), v1::OK) << reply.query().message();
    utc_offset_ = reply.query().utc_offset_minutes();
    return reply.query().metrics();
  }

  // The engine's answer as the HTTP route would render it.
  json::value EngineJson(v1::MetricsGroup group, const std::string& from = "", const std::string& to = "") {
    const v1::MetricsReply m = EngineMetrics(group, from, to);
    return query::MetricsJson(m, utc_offset_);
  }

  RawResponse Get(const std::string& target, const std::string& extra_headers = "") {
    RawClient c(port_);
    EXPECT_TRUE(c.connected());
    EXPECT_TRUE(c.Send(GetRequest(target, extra_headers)));
    auto r = c.Read();
    EXPECT_TRUE(r.has_value()) << "no answer to " << target.substr(0, 200);
    return r ? *r : RawResponse{};
  }

  // What a client must see after a hostile exchange: an HTTP error status, a JSON error body,
  // and the connection closed.
  void ExpectErrorAndClose(RawClient& c, int status) {
    auto r = c.Read();
    ASSERT_TRUE(r.has_value()) << "no answer";
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_FALSE(ErrorOf(*r).empty()) << r->body;
    EXPECT_EQ(r->Header("connection"), "close");
    EXPECT_TRUE(c.Closed(2s));
  }

  // The attacks, one per helper; each test uses one, the last test runs them all.
  void OversizedHeader() {
    RawClient c(port_);
    ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'a') + "\r\n\r\n"));
    ExpectErrorAndClose(c, 431);
  }
  void OversizedBody() {
    // The limit is checked on Content-Length before the body is read, and before routing.
    RawClient c(port_);
    ASSERT_TRUE(c.Send("POST /v1/metrics/closure HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" +
                       std::string(1024, 'b')));
    ExpectErrorAndClose(c, 413);
    // Chunked: the limit counts the chunks as they come.
    RawClient d(port_);
    std::string chunked = "POST /v1/metrics/closure HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 5; ++i) chunked += "4000\r\n" + std::string(0x4000, 'c') + "\r\n";
    ASSERT_TRUE(d.Send(chunked));
    ExpectErrorAndClose(d, 413);
  }
  void GarbageBytes() {
    RawClient c(port_);
    ASSERT_TRUE(c.Send(std::string("\x00\xff GARBAGE\r\n\r\n", 14)));
    ExpectErrorAndClose(c, 400);
  }
  void NoHttpVersion() {
    RawClient c(port_);
    ASSERT_TRUE(c.Send("GET /healthz\r\nHost: x\r\n\r\n"));
    ExpectErrorAndClose(c, 400);
  }
  void HugeQueryValue() {
    const RawResponse r = Get("/v1/metrics/closure?group_by=" + std::string(10 * 1000, 'd'));
    EXPECT_TRUE(r.status == 431 || r.status == 400) << r.status;
    EXPECT_FALSE(ErrorOf(r).empty()) << r.body.substr(0, 200);
  }
  void EncodedGarbage() {
    for (const std::string q : {"group_by=%00", "group_by=department%00", "group_by=%ZZ", "group_by=%",
                                "group_by=%C0%AF", "from=%C0%80&group_by=department", "%00=1",
                                "group_by=department&from=2026-03-0%00"}) {
      const RawResponse r = Get("/v1/metrics/closure?" + q);
      EXPECT_GE(r.status, 400) << q;
      EXPECT_LT(r.status, 500) << q;
      // Not strict: invalid UTF-8 echoed back is DISABLED_ErrorBodiesAreValidUtf8's bug.
      EXPECT_FALSE(ErrorOf(r, /*strict=*/false).empty()) << q << " → " << r.body;
    }
  }
  void ManyConnections(int count) {
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < count; ++i) {
      clients.push_back(std::make_unique<RawClient>(port_));
      ASSERT_TRUE(clients.back()->connected()) << i;
    }
    int served = 0, refused = 0;
    for (auto& c : clients) (void)c->Send(GetRequest("/healthz"));
    for (auto& c : clients) {
      auto r = c->Read(10s);
      if (r && r->status == 200) ++served;
      else if (!r) ++refused;
    }
    EXPECT_EQ(served + refused, count);
    EXPECT_GT(served, 0);
    EXPECT_LE(served, HttpServer::Options{}.max_connections);
    clients.clear();
    // The sessions end as their clients go; a fresh client is served again.
    EXPECT_TRUE(WaitFor([&] {
      RawClient c(port_);
      if (!c.Send(GetRequest("/healthz"))) return false;
      auto r = c.Read(1s);
      return r && r->status == 200;
    }));
  }

  TempDir dir_;
  ManualClock clock_{kStart};
  Gatekeeper gate_{LeaderAccess(), clock_};
  dispatch::AdapterRegistry registry_;
  std::unique_ptr<query::Telemetry> telemetry_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<HttpServer> http_;
  uint16_t port_ = 0;
  int utc_offset_ = 0;
};

TEST_F(HttpTest, ClosureByDepartmentEqualsTheEnginesAnswer) {
  const v1::MetricsReply m = EngineMetrics(v1::BY_DEPARTMENT);
  const RawResponse r = Get("/v1/metrics/closure?group_by=department");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  const json::value got = json::parse(r.body);
  EXPECT_TRUE(SameJson(got, query::MetricsJson(m, utc_offset_)));
  const json::array& rows = got.at("rows").as_array();
  ASSERT_EQ(rows.size(), static_cast<size_t>(m.rows_size()));
  int with_rate = 0, without_rate = 0;
  for (int i = 0; i < m.rows_size(); ++i) {
    const v1::ClosureRow& want = m.rows(i);
    const json::object& row = rows[i].as_object();
    SCOPED_TRACE(want.key());
    EXPECT_EQ(row.at("key").as_string(), want.key());
    EXPECT_EQ(row.at("registered").as_int64(), want.registered());
    EXPECT_EQ(row.at("due").as_int64(), want.due());
    EXPECT_EQ(row.at("closed").as_int64(), want.closed());
    if (want.due() == 0) {
      EXPECT_TRUE(row.at("closure_rate").is_null());
      ++without_rate;
    } else {
      ASSERT_TRUE(row.at("closure_rate").is_double());
      EXPECT_EQ(row.at("closure_rate").as_double(), want.closure_rate());  // exactly
      EXPECT_EQ(want.closure_rate(), static_cast<double>(want.closed()) / static_cast<double>(want.due()));
      ++with_rate;
    }
  }
  EXPECT_GT(with_rate, 0);
  EXPECT_GT(without_rate, 0);
  EXPECT_EQ(got.at("total").at("registered").as_int64(), 10);
  // A range: the first day only.
  const RawResponse f = Get("/v1/metrics/closure?group_by=department&from=2026-03-02&to=2026-03-02");
  ASSERT_EQ(f.status, 200) << f.body;
  EXPECT_TRUE(SameJson(json::parse(f.body), EngineJson(v1::BY_DEPARTMENT, "2026-03-02", "2026-03-02")));
  EXPECT_EQ(json::parse(f.body).at("total").at("registered").as_int64(), 6);
}

TEST_F(HttpTest, ClosureByDayHasIsoDateKeys) {
  const RawResponse r = Get("/v1/metrics/closure?group_by=day");
  ASSERT_EQ(r.status, 200) << r.body;
  const json::value got = json::parse(r.body);
  EXPECT_TRUE(SameJson(got, EngineJson(v1::BY_DAY)));
  std::vector<std::string> keys;
  for (const auto& row : got.at("rows").as_array()) keys.emplace_back(row.at("key").as_string());
  EXPECT_EQ(keys, (std::vector<std::string>{"2026-03-02", "2026-03-03"}));
  for (const auto& k : keys) EXPECT_TRUE(ParseDate(k).has_value()) << k;
}

TEST_F(HttpTest, ParameterErrorsNameTheField) {
  struct Case {
    std::string query;
    std::string field;
  };
  for (const auto& [q, field] : std::vector<Case>{
           {"", "group_by"},
           {"from=2026-03-01", "group_by"},
           {"group_by=bogus", "group_by"},
           {"group_by=", "group_by"},
           {"group_by=department&from=2026-02-30", "from"},
           {"group_by=department&to=2026-13-01", "to"},
           {"group_by=department&from=03/01/2026", "from"},
           {"group_by=department&from=2026-03-05&to=2026-03-01", "from"},
           {"group_by=department&color=red", "color"},
           {"group_by=department&From=2026-03-01", "From"},
       }) {
    const RawResponse r = Get("/v1/metrics/closure" + (q.empty() ? "" : "?" + q));
    EXPECT_EQ(r.status, 400) << q << " → " << r.body;
    EXPECT_EQ(FieldOf(r), field) << q << " → " << r.body;
    EXPECT_FALSE(ErrorOf(r).at("reason").as_string().empty()) << q;
  }
}

TEST_F(HttpTest, HugeAndGarbledQueriesGetJsonErrors) {
  ASSERT_NO_FATAL_FAILURE(HugeQueryValue());
  ASSERT_NO_FATAL_FAILURE(EncodedGarbage());
  EXPECT_EQ(Get("/healthz").status, 200);
}

// Found by this test: an error reason echoes the request's decoded bytes (a parameter's value
// cut at 64 bytes, a date cut at 32, the path), so invalid UTF-8 in the target — an overlong
// "%C0%AF", or a multi-byte character cut in half — makes the error body invalid JSON
// (RFC 8259 §8.1: JSON text exchanged between systems is UTF-8). Enable once fixed.
TEST_F(HttpTest, ErrorBodiesAreValidUtf8) {
  std::string han;
  for (int i = 0; i < 30; ++i) han += "%E4%B8%AD";  // 中 × 30: 90 bytes, cut at 64
  const std::string closure = "/v1/metrics/closure?";
  for (const std::string& t : std::vector<std::string>{
           closure + "group_by=%C0%AF", closure + "%C0%AF=1", closure + "group_by=" + han,
           closure + "group_by=department&from=%C0%AF", "/%C0%AF"}) {
    const RawResponse r = Get(t);
    EXPECT_GE(r.status, 400) << t;
    EXPECT_FALSE(ErrorOf(r).empty()) << t << " → not JSON: " << r.body;
  }
}

// Found by this test: an empty query ("?"), a trailing "&" or "&&" is an empty parameter name,
// refused as an unknown parameter with no field named (so "?" does not even say that group_by
// is missing). Enable once an empty parameter is either ignored or named.
TEST_F(HttpTest, EmptyParameterNamesAreHarmless) {
  for (const std::string q : {"?group_by=department&", "?&group_by=department", "?group_by=department&&"}) {
    const RawResponse r = Get("/v1/metrics/closure" + q);
    EXPECT_EQ(r.status, 200) << q << " → " << r.body;
  }
  const RawResponse r = Get("/v1/metrics/closure?");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(FieldOf(r), "group_by") << r.body;
}

// Found by this test: a reply the engine sends after the HttpServer is destroyed posts to the
// destroyed io_context (http_server.cc, the `respond` lambda's asio::post): SIGSEGV here,
// invalid reads under valgrind. `casebus serve` destroys its HttpServer before its Engine
// (serve.cc declares `http` after `engine`), so a query in the engine's queue at shutdown
// does this. Enable once a late reply is dropped.
TEST_F(HttpTest, ReplyAfterTheServerIsDestroyedIsDropped) {
  TempDir dir;
  EngineOptions options;
  options.data_dir = dir.path();
  options.run_dispatcher = false;
  auto engine = Engine::Open(SampleCity(), options, clock_, registry_);  // not started: holds queries
  ASSERT_TRUE(engine.has_value()) << engine.error().ToString();
  auto http = std::make_unique<HttpServer>();
  AddReadRoutes(*http, **engine, *telemetry_, gate_);
  auto bound = http->Start({.listen = "127.0.0.1:0"});
  ASSERT_TRUE(bound.has_value());
  RawClient c(static_cast<uint16_t>(std::stoi(bound->substr(bound->rfind(':') + 1))));
  ASSERT_TRUE(c.Send(GetRequest("/v1/metrics/closure?group_by=department")));
  ASSERT_TRUE(WaitFor([&] { return http->requests() == 1; }));  // the query waits in the engine
  http.reset();
  (*engine)->Start();  // answers the query: its reply must go nowhere
  (*engine)->Stop();
}

TEST_F(HttpTest, UnknownPathAndWrongMethod) {
  for (const std::string path : {"/", "/v1/metrics", "/v1/metrics/closure/", "/v2/metrics/closure",
                                 "/v1/metrics/closure/../closure", "/etc/passwd"}) {
    const RawResponse r = Get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(FieldOf(r), "path") << path << " → " << r.body;
  }
  for (const std::string target : {"http://127.0.0.1/healthz", "*", "healthz"}) {
    const RawResponse r = Get(target);
    EXPECT_EQ(r.status, 400) << target << " → " << r.body;
    EXPECT_FALSE(ErrorOf(r).empty()) << target;
  }
  for (const std::string method : {"POST", "PUT", "DELETE", "PATCH"}) {
    RawClient c(port_);
    ASSERT_TRUE(c.Send(method + " /v1/metrics/closure?group_by=department HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 2\r\n\r\n{}"));
    auto r = c.Read();
    ASSERT_TRUE(r.has_value()) << method;
    EXPECT_EQ(r->status, 405) << method;
    EXPECT_EQ(r->Header("allow"), "GET") << method;
    EXPECT_EQ(FieldOf(*r), "method") << r->body;
  }
}

TEST_F(HttpTest, OversizedHeaderGets431AndIsClosed) { OversizedHeader(); }
TEST_F(HttpTest, OversizedBodyGets413AndIsClosed) { OversizedBody(); }
TEST_F(HttpTest, GarbageBytesGet400AndAreClosed) { GarbageBytes(); }
TEST_F(HttpTest, RequestLineWithoutVersionGets400) { NoHttpVersion(); }

TEST_F(HttpTest, KeepAliveAnswersEveryRequestOnOneConnection) {
  RawClient c(port_);
  ASSERT_TRUE(c.Send(GetRequest("/healthz")));
  auto a = c.Read();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->status, 200);
  ASSERT_TRUE(c.Send(GetRequest("/v1/metrics/closure?group_by=district")));
  auto b = c.Read();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->status, 200);
  EXPECT_TRUE(SameJson(json::parse(b->body), EngineJson(v1::BY_DISTRICT)));
  // Pipelined: three requests in one write, three answers in order.
  ASSERT_TRUE(c.Send(GetRequest("/healthz") + GetRequest("/nowhere") + GetRequest("/healthz")));
  for (int want : {200, 404, 200}) {
    auto r = c.Read();
    ASSERT_TRUE(r.has_value()) << want;
    EXPECT_EQ(r->status, want);
  }
  // An error answer keeps the connection when the request itself was well-formed.
  ASSERT_TRUE(c.Send(GetRequest("/v1/metrics/closure?group_by=bogus")));
  auto e = c.Read();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->status, 400);
  ASSERT_TRUE(c.Send(GetRequest("/healthz", "Connection: close\r\n")));
  auto last = c.Read();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->status, 200);
  EXPECT_TRUE(c.Closed(2s));
}

TEST_F(HttpTest, SlowClientDoesNotBlockOthers) {
  auto slow = std::async(std::launch::async, [this] {
    RawClient c(port_);
    for (char ch : GetRequest("/healthz")) {
      if (!c.Send(std::string_view(&ch, 1))) return -1;
      std::this_thread::sleep_for(100ms);
    }
    auto r = c.Read();
    return r ? r->status : 0;
  });
  std::this_thread::sleep_for(300ms);  // the slow one is connected and dribbling
  for (int i = 0; i < 10; ++i) {
    const auto t0 = Steady::now();
    EXPECT_EQ(Get("/v1/metrics/closure?group_by=department").status, 200);
    EXPECT_LT(Steady::now() - t0, 2s);
  }
  EXPECT_EQ(slow.wait_for(0s), std::future_status::timeout) << "the slow client was not slow";
  EXPECT_EQ(slow.get(), 200);  // a request that arrives within the read timeout is answered
}

// About 15 s: the server's read timeout (kReadTimeout in http_server.cc), which is not an
// option. A connection that never completes a request — silent, dribbling a header that never
// ends, or idle after a keep-alive answer — is closed when it runs out, without an answer.
TEST_F(HttpTest, SlowAndIdleClientsAreCutOffByTheReadTimeout) {
  constexpr auto kTimeout = 15s;
  auto cut_off_after = [this](int kind) {
    RawClient c(port_);
    auto t0 = Steady::now();
    if (kind == 2) {  // idle after one answer: the timer restarts with the next read
      if (!c.Send(GetRequest("/healthz")) || !c.Read()) return -1.0;
      t0 = Steady::now();
    }
    if (kind == 1) (void)c.Send("GET /healthz HTTP/1.1\r\n");
    while (Steady::now() - t0 < 25s) {
      if (kind == 1) (void)c.Send("X");  // one byte of a header line that never ends
      if (c.Closed(100ms)) return std::chrono::duration<double>(Steady::now() - t0).count();
    }
    return 99.0;
  };
  auto silent = std::async(std::launch::async, cut_off_after, 0);
  auto dribbler = std::async(std::launch::async, cut_off_after, 1);
  auto idle = std::async(std::launch::async, cut_off_after, 2);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(Get("/healthz").status, 200);  // others are served meanwhile
  const double timeout = std::chrono::duration<double>(kTimeout).count();
  for (auto* f : {&silent, &dribbler, &idle}) {
    const double s = f->get();
    EXPECT_GT(s, timeout - 1);
    EXPECT_LT(s, timeout + 2);
  }
}

TEST_F(HttpTest, ThreeHundredConnectionsThenAFreshClientIsServed) { ManyConnections(300); }

TEST_F(HttpTest, MetricsDashboardAndHealth) {
  const RawResponse m = Get("/metrics");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(m.Header("content-type").rfind("text/plain; version=0.0.4", 0), 0u) << m.Header("content-type");
  EXPECT_NE(m.body.find("casebus_department_cases{"), std::string::npos);
  EXPECT_NE(m.body.find("casebus_commit_seconds_bucket{"), std::string::npos);
  const RawResponse d = Get("/dashboard");
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(d.Header("content-type").rfind("text/html", 0), 0u) << d.Header("content-type");
  EXPECT_NE(d.Header("content-security-policy").find("default-src 'none'"), std::string::npos);
  EXPECT_NE(d.body.find("<html"), std::string::npos);
  const RawResponse h = Get("/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body), json::parse(R"({"healthy":true})"));
}

TEST_F(HttpTest, AfterEveryAttackTheEngineAnswersTheSameLedger) {
  const std::string targets[] = {"/v1/metrics/closure?group_by=department",
                                 "/v1/metrics/closure?group_by=day",
                                 "/v1/metrics/closure?group_by=district_class&from=2026-03-01"};
  std::vector<std::string> before;
  for (const auto& t : targets) before.push_back(Get(t).body);
  const uint64_t seq = engine_->Call(StatusReq()).query().status().journal_seq();

  ASSERT_NO_FATAL_FAILURE(OversizedHeader());
  ASSERT_NO_FATAL_FAILURE(OversizedBody());
  ASSERT_NO_FATAL_FAILURE(GarbageBytes());
  ASSERT_NO_FATAL_FAILURE(NoHttpVersion());
  ASSERT_NO_FATAL_FAILURE(HugeQueryValue());
  ASSERT_NO_FATAL_FAILURE(EncodedGarbage());
  {
    RawClient half(port_);  // a request cut off mid-header, then abandoned
    ASSERT_TRUE(half.Send("GET /v1/metrics/closure?group_by=depa"));
  }
  ASSERT_NO_FATAL_FAILURE(ManyConnections(300));

  for (size_t i = 0; i < before.size(); ++i) {
    const RawResponse r = Get(targets[i]);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, before[i]) << targets[i];
  }
  const v1::StatusReply s = engine_->Call(StatusReq()).query().status();
  EXPECT_EQ(s.journal_seq(), seq);
  EXPECT_EQ(s.cases(), 10u);
  EXPECT_TRUE(s.healthy());
  EXPECT_TRUE(SameJson(json::parse(Get("/v1/metrics/closure?group_by=department").body),
                       EngineJson(v1::BY_DEPARTMENT)));
}

}  // namespace
}  // namespace casebus::server

// adapters/webhook: the webhook adapter, made through the AdapterRegistry and pointed at a
// loopback HTTP(S) server written for the test. The server is told, per connection, how to
// answer (a status line and headers, a stall past the timeout, a close mid-request, a close
// without answering) and records what it was sent, so the test checks the request as a
// receiver sees it (path, headers, a signature the Verifier accepts) and how each answer is
// classified. The TLS cases use certificates the openssl command line makes in a temp dir.

#include "adapters/webhook/webhook_adapter.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/webhook/signature.h"

namespace casebus::webhook {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using dispatch::Delivery;
using Outcome = Delivery::Outcome;
using Clock = std::chrono::steady_clock;

// base64("casebus-webhook-test-secret-A-32"), as in signature_test.cc.
constexpr std::string_view kSecret = "whsec_Y2FzZWJ1cy13ZWJob29rLXRlc3Qtc2VjcmV0LUEtMzI=";

// What the server does with one connection.
struct Answer {
  enum class Kind {
    kRespond,          // read the request, write `response`, close
    kStall,            // read the request, wait (up to 5 s, or until the server stops), close
    kCloseMidRequest,  // read a few bytes of the request, close
    kCloseAfterRead,   // read the request, close without a word
  };
  Kind kind = Kind::kRespond;
  std::string response;
};

Answer Respond(std::string_view status_line, std::string_view headers = "") {
  return {Answer::Kind::kRespond, std::string(status_line) + "\r\n" + std::string(headers) +
                                      "Content-Length: 0\r\n\r\n"};
}
Answer Just(Answer::Kind kind) { return {kind, ""}; }

// A request as the server read it; header names lower-cased.
struct Request {
  std::string method, target, body;
  std::map<std::string, std::string> headers;
};

// A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1, port 0, with its own thread.
// Connections get the queued answers in order; once the queue is empty, 204.
// Thread safety: all public methods may be called from the test thread while it serves.
class LoopbackServer {
 public:
  // With `tls`, every connection starts with a server-side TLS handshake.
  explicit LoopbackServer(ssl::context* tls = nullptr, std::string_view address = "127.0.0.1")
      : tls_(tls), acceptor_(ioc_) {
    const tcp::endpoint endpoint(net::ip::make_address(address), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.bind(endpoint);
    acceptor_.listen();
    thread_ = std::thread([this] { Run(); });
  }
  ~LoopbackServer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      // shutdown(2) wakes the blocked accept and any blocked read of the current connection.
      ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
      if (connection_ >= 0) ::shutdown(connection_, SHUT_RDWR);
    }
    stop_.notify_all();
    thread_.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void Enqueue(Answer answer) {
    std::lock_guard lock(mu_);
    answers_.push_back(std::move(answer));
  }
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Run() {
    for (;;) {
      tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      Answer answer = Respond("HTTP/1.1 204 No Content");
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        if (ec) continue;
        connection_ = socket.native_handle();
        if (!answers_.empty()) {
          answer = std::move(answers_.front());
          answers_.pop_front();
        }
      }
      if (tls_ != nullptr) {
        ssl::stream<tcp::socket&> stream(socket, *tls_);
        stream.handshake(ssl::stream_base::server, ec);
        if (!ec) Serve(stream, answer);
      } else {
        Serve(socket, answer);
      }
      std::lock_guard lock(mu_);
      connection_ = -1;
      socket.shutdown(tcp::socket::shutdown_both, ec);
      socket.close(ec);
    }
  }

  template <typename Stream>
  void Serve(Stream& stream, const Answer& answer) {
    boost::system::error_code ec;
    if (answer.kind == Answer::Kind::kCloseMidRequest) {
      char some[16];
      stream.read_some(net::buffer(some), ec);
      return;
    }
    boost::beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    http::read(stream, buffer, parser, ec);
    if (ec) return;
    Record(parser.get());
    if (answer.kind == Answer::Kind::kStall) {
      std::unique_lock lock(mu_);
      stop_.wait_for(lock, std::chrono::seconds(5), [&] { return stopping_; });
    } else if (answer.kind == Answer::Kind::kRespond) {
      net::write(stream, net::buffer(answer.response), ec);
    }
  }

  void Record(const http::request<http::string_body>& message) {
    Request r{std::string(message.method_string()), std::string(message.target()),
              message.body(), {}};
    for (const auto& field : message) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(field.value());
    }
    std::lock_guard lock(mu_);
    requests_.push_back(std::move(r));
  }

  ssl::context* const tls_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable stop_;
  bool stopping_ = false;              // GUARDED_BY(mu_)
  int connection_ = -1;                // GUARDED_BY(mu_): the fd being served
  std::deque<Answer> answers_;         // GUARDED_BY(mu_)
  std::vector<Request> requests_;      // GUARDED_BY(mu_)
};

std::string Describe(const Delivery& d) {
  const char* names[] = {"kDelivered", "kRetry", "kRejected"};
  return std::string(names[static_cast<int>(d.outcome)]) + " \"" + d.error +
         "\" retry_after_ms=" + std::to_string(d.retry_after_ms);
}

v1::WorkOrder Order(std::string id = "42-1") {
  v1::WorkOrder order;
  order.set_id(std::move(id));
  order.set_case_id(42);
  order.set_department("roads");
  order.set_issued_at_ms(1772413200000);
  order.set_category("0101");
  order.set_description("Manhole cover missing on Pingjiang Road, \"urgent\" \u4e95\u76d6");
  order.set_urgency(v1::URGENT);
  order.set_reason("dispatch");
  return order;
}

// A temp data dir holding the secret as "roads.key", the city's webhook policy, and a way to
// build the roads department's adapter through the registry.
class WebhookAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/webhook_adapter_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    WriteFile("roads.key", std::string(kSecret) + "\n");
    city_.mutable_delivery()->set_timeout_ms(2000);
    RegisterWebhookAdapter(registry_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void WriteFile(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << text;
  }
  // Allows `url` (its scheme, host and port) in the city and makes a department posting to it.
  v1::Department Roads(const std::string& url) {
    const size_t host_end = url.find('/', url.find("//") + 2);
    city_.add_webhook_allow(url.substr(0, host_end) + "/");
    v1::Department department;
    department.set_id("roads");
    auto* webhook = department.mutable_adapter()->mutable_webhook();
    webhook->set_url(url);
    webhook->set_secret_file("roads.key");
    return department;
  }
  Result<std::unique_ptr<dispatch::Adapter>> Create(const v1::Department& department) {
    return registry_.Create(department, {dir_, &city_});
  }
  std::unique_ptr<dispatch::Adapter> MustCreate(const v1::Department& department) {
    auto adapter = Create(department);
    EXPECT_TRUE(adapter) << adapter.error().ToString();
    return adapter ? std::move(*adapter) : nullptr;
  }
  static std::string Url(const LoopbackServer& server, std::string_view path = "/hooks/roads") {
    return "http://127.0.0.1:" + std::to_string(server.port()) + std::string(path);
  }
  // One delivery of Order() to a fresh server that answers `answer`.
  Delivery DeliverTo(Answer answer) {
    LoopbackServer server;
    server.Enqueue(std::move(answer));
    auto adapter = MustCreate(Roads(Url(server)));
    return adapter ? adapter->Deliver(Order()) : Delivery::Rejected("no adapter");
  }

  std::string dir_;
  v1::CityConfig city_;
  dispatch::AdapterRegistry registry_;
};

TEST_F(WebhookAdapterTest, PostsTheSignedOrderToTheUrlsPath) {
  LoopbackServer server;
  auto adapter = MustCreate(Roads(Url(server, "/hooks/roads?v=1")));
  ASSERT_NE(adapter, nullptr);
  EXPECT_EQ(adapter->Endpoint(), "webhook " + Url(server, "/hooks/roads?v=1"));
  Delivery d = adapter->Deliver(Order());
  EXPECT_EQ(d.outcome, Outcome::kDelivered) << Describe(d);
  const int64_t now_s = std::time(nullptr);

  ASSERT_EQ(server.requests().size(), 1u);
  Request r = server.requests()[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hooks/roads?v=1");
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(r.headers["webhook-id"], "42-1");
  v1::OutboxItem item;
  *item.mutable_work_order() = Order();
  EXPECT_EQ(r.body, WebhookBody(item));
  EXPECT_TRUE(r.body.starts_with(R"({"type":"work_order","data":{)")) << r.body;
  const int64_t timestamp = std::stoll(r.headers["webhook-timestamp"]);
  EXPECT_LE(std::abs(timestamp - now_s), 5);

  Verifier verifier({*ParseSecret(kSecret)});
  Status verified = verifier.Check(r.headers["webhook-id"], r.headers["webhook-timestamp"],
                                   r.headers["webhook-signature"], r.body, now_s);
  EXPECT_TRUE(verified.ok()) << verified.ToString();
  // The signature covers exactly these bytes.
  Status tampered = verifier.Check(r.headers["webhook-id"], r.headers["webhook-timestamp"],
                                   r.headers["webhook-signature"], r.body + " ", now_s);
  EXPECT_FALSE(tampered.ok());
}

TEST_F(WebhookAdapterTest, EveryAttemptOfAnOrderSendsTheSameBody) {
  LoopbackServer server;
  server.Enqueue(Respond("HTTP/1.1 503 Service Unavailable"));
  auto adapter = MustCreate(Roads(Url(server)));
  ASSERT_NE(adapter, nullptr);
  EXPECT_EQ(adapter->Deliver(Order()).outcome, Outcome::kRetry);
  EXPECT_EQ(adapter->Deliver(Order()).outcome, Outcome::kDelivered);
  const std::vector<Request> requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].body, requests[1].body);
  EXPECT_EQ(requests[0].headers.at("webhook-id"), requests[1].headers.at("webhook-id"));
  Verifier verifier({*ParseSecret(kSecret)});
  for (const Request& r : requests) {
    Status s = verifier.Check(r.headers.at("webhook-id"), r.headers.at("webhook-timestamp"),
                              r.headers.at("webhook-signature"), r.body, std::time(nullptr));
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
}

TEST_F(WebhookAdapterTest, PostsANoticeAsTypeNotice) {
  LoopbackServer server;
  auto adapter = MustCreate(Roads(Url(server)));
  ASSERT_NE(adapter, nullptr);
  v1::Notice notice;
  notice.set_id("n42-2-1-0");
  notice.set_case_id(42);
  notice.set_department("roads");
  notice.set_supervision(true);
  Delivery d = adapter->DeliverNotice(notice);
  EXPECT_EQ(d.outcome, Outcome::kDelivered) << Describe(d);
  ASSERT_EQ(server.requests().size(), 1u);
  const Request r = server.requests()[0];
  EXPECT_EQ(r.headers.at("webhook-id"), "n42-2-1-0");
  v1::OutboxItem item;
  *item.mutable_notice() = notice;
  EXPECT_EQ(r.body, WebhookBody(item));
  EXPECT_TRUE(r.body.starts_with(R"({"type":"notice","data":{)")) << r.body;
}

// How one answer is classified; `error` must be in the Delivery's error.
struct Classification {
  const char* name;
  const char* status_line;
  const char* headers;
  Outcome outcome;
  const char* error;
};

class ClassificationTest : public WebhookAdapterTest,
                           public ::testing::WithParamInterface<Classification> {};

TEST_P(ClassificationTest, ClassifiesTheAnswer) {
  const Classification& c = GetParam();
  Delivery d = DeliverTo(Respond(c.status_line, c.headers));
  EXPECT_EQ(d.outcome, c.outcome) << Describe(d);
  EXPECT_NE(d.error.find(c.error), std::string::npos) << Describe(d);
  if (c.outcome == Outcome::kRetry && std::string_view(c.headers).empty()) {
    EXPECT_EQ(d.retry_after_ms, -1);
  }
}

const Classification kClassifications[] = {
    {"Ok200", "HTTP/1.1 200 OK", "", Outcome::kDelivered, ""},
    {"Created201", "HTTP/1.1 201 Created", "", Outcome::kDelivered, ""},
    {"NoContent204", "HTTP/1.1 204 No Content", "", Outcome::kDelivered, ""},
    {"ServerError500", "HTTP/1.1 500 Internal Server Error", "", Outcome::kRetry, "HTTP 500"},
    {"BadGateway502", "HTTP/1.1 502 Bad Gateway", "", Outcome::kRetry, "HTTP 502"},
    {"Unavailable503", "HTTP/1.1 503 Service Unavailable", "", Outcome::kRetry, "HTTP 503"},
    {"RequestTimeout408", "HTTP/1.1 408 Request Timeout", "", Outcome::kRetry, "HTTP 408"},
    {"TooManyRequests429", "HTTP/1.1 429 Too Many Requests", "", Outcome::kRetry, "HTTP 429"},
    {"Moved301", "HTTP/1.1 301 Moved Permanently", "Location: http://127.0.0.1:1/x\r\n",
     Outcome::kRetry, "redirects"},
    {"Found302", "HTTP/1.1 302 Found", "Location: http://127.0.0.1:1/x\r\n", Outcome::kRetry,
     "redirects"},
    {"BadRequest400", "HTTP/1.1 400 Bad Request", "", Outcome::kRejected, "HTTP 400"},
    {"Unauthorized401", "HTTP/1.1 401 Unauthorized", "", Outcome::kRejected, "HTTP 401"},
    {"NotFound404", "HTTP/1.1 404 Not Found", "", Outcome::kRejected, "HTTP 404"},
    {"Gone410", "HTTP/1.1 410 Gone", "", Outcome::kRejected, "HTTP 410"},
    {"Unprocessable422", "HTTP/1.1 422 Unprocessable Entity", "", Outcome::kRejected, "HTTP 422"},
};
INSTANTIATE_TEST_SUITE_P(HttpStatus, ClassificationTest, ::testing::ValuesIn(kClassifications),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(WebhookAdapterTest, HonoursRetryAfterInSeconds) {
  Delivery d = DeliverTo(Respond("HTTP/1.1 503 Service Unavailable", "Retry-After: 7\r\n"));
  EXPECT_EQ(d.outcome, Outcome::kRetry) << Describe(d);
  EXPECT_EQ(d.retry_after_ms, 7000);
}

std::string HttpDate(std::time_t at) {
  std::tm tm{};
  gmtime_r(&at, &tm);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return text;
}

TEST_F(WebhookAdapterTest, HonoursRetryAfterAsAnHttpDate) {
  const std::string when = HttpDate(std::time(nullptr) + 30);
  Delivery d = DeliverTo(Respond("HTTP/1.1 429 Too Many Requests", "Retry-After: " + when + "\r\n"));
  EXPECT_EQ(d.outcome, Outcome::kRetry) << Describe(d);
  EXPECT_NEAR(d.retry_after_ms, 30000, 2000) << when;
}

TEST_F(WebhookAdapterTest, ASlowServerIsRetriedWhenTheTimeoutEnds) {
  city_.mutable_delivery()->set_timeout_ms(300);
  LoopbackServer server;
  server.Enqueue(Just(Answer::Kind::kStall));
  auto adapter = MustCreate(Roads(Url(server)));
  ASSERT_NE(adapter, nullptr);
  const auto start = Clock::now();
  Delivery d = adapter->Deliver(Order());
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  EXPECT_EQ(d.outcome, Outcome::kRetry) << Describe(d);
  EXPECT_NE(d.error.find("timed out"), std::string::npos) << Describe(d);
  EXPECT_GE(took.count(), 250);
  EXPECT_LE(took.count(), 500);
}

TEST_F(WebhookAdapterTest, NothingListeningIsRetried) {
  net::io_context ioc;
  tcp::socket bound(ioc);  // holds the port, never listens: connecting is refused
  bound.open(tcp::v4());
  bound.bind({net::ip::make_address_v4("127.0.0.1"), 0});
  auto adapter = MustCreate(
      Roads("http://127.0.0.1:" + std::to_string(bound.local_endpoint().port()) + "/hooks"));
  ASSERT_NE(adapter, nullptr);
  Delivery d = adapter->Deliver(Order());
  EXPECT_EQ(d.outcome, Outcome::kRetry) << Describe(d);
  EXPECT_NE(d.error.find("connect"), std::string::npos) << Describe(d);
}

TEST_F(WebhookAdapterTest, AServerThatClosesIsRetried) {
  for (Answer::Kind kind : {Answer::Kind::kCloseAfterRead, Answer::Kind::kCloseMidRequest}) {
    Delivery d = DeliverTo(Just(kind));
    EXPECT_EQ(d.outcome, Outcome::kRetry) << static_cast<int>(kind) << ": " << Describe(d);
  }
}

TEST_F(WebhookAdapterTest, AnOversizedHeaderBlockIsNeverDelivered) {
  const std::string one_big = "X-Padding: " + std::string(20000, 'a') + "\r\n";
  std::string many_small;
  for (int i = 0; i < 1000; ++i) many_small += "X-Padding-" + std::to_string(i) + ": aaaaaa\r\n";
  for (const std::string& headers : {one_big, many_small}) {
    Delivery d = DeliverTo(Respond("HTTP/1.1 200 OK", headers));
    EXPECT_NE(d.outcome, Outcome::kDelivered) << Describe(d);
  }
}

TEST(ParseRetryAfterTest, ReadsSecondsAndImfDates) {
  const int64_t now = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(ParseRetryAfter("0", now), 0);
  EXPECT_EQ(ParseRetryAfter("120", now), 120000);
  EXPECT_EQ(ParseRetryAfter(" 5 ", now), 5000);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:50:07 GMT", now), 30000);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), 0);
  EXPECT_EQ(ParseRetryAfter("Sat, 05 Nov 1994 08:49:37 GMT", now), 0);  // in the past
}

TEST(ParseRetryAfterTest, RefusesAnythingElse) {
  const int64_t now = 784111777;
  EXPECT_EQ(ParseRetryAfter("abc", now), -1);
  EXPECT_EQ(ParseRetryAfter("", now), -1);
  EXPECT_EQ(ParseRetryAfter("  ", now), -1);
  EXPECT_EQ(ParseRetryAfter("-5", now), -1);
  EXPECT_EQ(ParseRetryAfter("1.5", now), -1);
  // The obsolete forms RFC 9110 lets a recipient accept, which this parser does not.
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:50:07 GMT", now), -1);  // RFC 850
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:50:07 1994", now), -1);        // asctime
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:50:07 +0000", now), -1);
}

// Creation errors name the field at fault.
TEST_F(WebhookAdapterTest, RefusesAUrlOutsideWebhookAllow) {
  v1::Department department = Roads("http://127.0.0.1:9/hooks");
  department.mutable_adapter()->mutable_webhook()->set_url("http://127.0.0.2:9/hooks");
  auto adapter = Create(department);
  ASSERT_FALSE(adapter);
  EXPECT_EQ(adapter.error().field(), "url");
  EXPECT_NE(adapter.error().message().find("webhook_allow"), std::string::npos)
      << adapter.error().ToString();
  EXPECT_NE(adapter.error().message().find("department roads"), std::string::npos);
}

TEST_F(WebhookAdapterTest, RefusesAnUnsetSecretEnv) {
  v1::Department department = Roads("http://127.0.0.1:9/hooks");
  department.mutable_adapter()->mutable_webhook()->clear_secret_file();
  department.mutable_adapter()->mutable_webhook()->set_secret_env("CASEBUS_TEST_UNSET_SECRET");
  unsetenv("CASEBUS_TEST_UNSET_SECRET");
  auto adapter = Create(department);
  ASSERT_FALSE(adapter);
  EXPECT_EQ(adapter.error().field(), "secret_env");
  EXPECT_NE(adapter.error().message().find("CASEBUS_TEST_UNSET_SECRET"), std::string::npos)
      << adapter.error().ToString();

  setenv("CASEBUS_TEST_SET_SECRET", std::string(kSecret).c_str(), 1);
  department.mutable_adapter()->mutable_webhook()->set_secret_env("CASEBUS_TEST_SET_SECRET");
  auto made = Create(department);
  EXPECT_TRUE(made) << made.error().ToString();
  unsetenv("CASEBUS_TEST_SET_SECRET");
}

TEST_F(WebhookAdapterTest, RefusesAMissingSecretFile) {
  v1::Department department = Roads("http://127.0.0.1:9/hooks");
  department.mutable_adapter()->mutable_webhook()->set_secret_file("absent.key");
  auto adapter = Create(department);
  ASSERT_FALSE(adapter);
  EXPECT_EQ(adapter.error().field(), "secret_file");
  EXPECT_NE(adapter.error().message().find("absent.key"), std::string::npos)
      << adapter.error().ToString();
}

TEST_F(WebhookAdapterTest, RefusesATextThatIsNoSecretWithoutQuotingIt) {
  WriteFile("bad.key", "whsec_not!base64-at-all-but-long-enough-to-matter\n");
  v1::Department department = Roads("http://127.0.0.1:9/hooks");
  department.mutable_adapter()->mutable_webhook()->set_secret_file("bad.key");
  auto adapter = Create(department);
  ASSERT_FALSE(adapter);
  EXPECT_EQ(adapter.error().field(), "secret");
  EXPECT_EQ(adapter.error().message().find("not!base64"), std::string::npos)
      << adapter.error().ToString();
}

// Exactly one of the pair is the loader's rule (config_test.cc); the factory must survive both.
// Neither: see ASecretFileThatIsADirectoryIsACreationError below.
TEST_F(WebhookAdapterTest, NeitherOrBothSecretSourcesDoNotCrash) {
  v1::Department neither = Roads("http://127.0.0.1:9/hooks");
  neither.mutable_adapter()->mutable_webhook()->clear_secret_file();
  Result<std::unique_ptr<dispatch::Adapter>> made = Err(Status::Internal("threw"));
  EXPECT_NO_THROW(made = Create(neither));
  EXPECT_FALSE(made);
  v1::Department both = Roads("http://127.0.0.1:9/hooks");
  setenv("CASEBUS_TEST_BOTH_SECRET", std::string(kSecret).c_str(), 1);
  both.mutable_adapter()->mutable_webhook()->set_secret_env("CASEBUS_TEST_BOTH_SECRET");
  (void)Create(both);
  unsetenv("CASEBUS_TEST_BOTH_SECRET");
}

// Regression tests for bugs found while writing this file; each fails until its fix lands.

// RFC 9110 §15.2: a client must parse 1xx interim responses before the final one, expected
// or not. Today the adapter takes the 103 as the answer and dead-letters the order.
TEST_F(WebhookAdapterTest, AnInterimResponseIsNotTheAnswer) {
  Delivery d = DeliverTo({Answer::Kind::kRespond,
                          "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                          "HTTP/1.1 204 No Content\r\n\r\n"});
  EXPECT_EQ(d.outcome, Outcome::kDelivered) << Describe(d);
}

bool HasIpv6Loopback() {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc);
  boost::system::error_code ec;
  acceptor.open(tcp::v6(), ec);
  if (!ec) acceptor.bind({net::ip::make_address("::1"), 0}, ec);
  return !ec;
}

// The config accepts "http://[::1]:port/"; the adapter resolves "[::1]", brackets included,
// and retries forever.
TEST_F(WebhookAdapterTest, DeliversToAnIpv6LiteralUrl) {
  if (!HasIpv6Loopback()) GTEST_SKIP() << "no ::1 here";
  LoopbackServer server(nullptr, "::1");
  auto adapter = MustCreate(Roads("http://[::1]:" + std::to_string(server.port()) + "/hooks"));
  ASSERT_NE(adapter, nullptr);
  Delivery d = adapter->Deliver(Order());
  EXPECT_EQ(d.outcome, Outcome::kDelivered) << Describe(d);
}

// An empty secret_file reads data_dir + "/", a directory; libstdc++'s filebuf throws on the
// read, and the exception leaves the factory.
TEST_F(WebhookAdapterTest, ASecretFileThatIsADirectoryIsACreationError) {
  std::filesystem::create_directory(dir_ + "/keys");
  v1::Department department = Roads("http://127.0.0.1:9/hooks");
  department.mutable_adapter()->mutable_webhook()->set_secret_file("keys");
  auto adapter = Create(department);
  ASSERT_FALSE(adapter);
  EXPECT_EQ(adapter.error().field(), "secret_file");
}

// IMF-fixdate is exactly "Sun, 06 Nov 1994 08:49:37 GMT"; the header promises -1 for anything
// else, but std::get_time stops at the format's end and takes full day names and 1-digit days.
TEST(ParseRetryAfterTest, RefusesDatesThatAreNotExactlyImfFixdate) {
  const int64_t now = 784111777;
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:50:07 GMT and more", now), -1);
  EXPECT_EQ(ParseRetryAfter("Sunday, 06 Nov 1994 08:50:07 GMT", now), -1);
  EXPECT_EQ(ParseRetryAfter("Sun, 6 Nov 1994 08:50:07 GMT", now), -1);
}

// https: certificates made once per suite with the openssl command line.
class WebhookAdapterTlsTest : public WebhookAdapterTest {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/webhook_adapter_tls_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    certs_ = new std::string(pattern);
    MakeCertificate("loopback", "127.0.0.1", "IP:127.0.0.1,DNS:localhost");
    MakeCertificate("other", "other.example", "DNS:other.example");
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*certs_);
    delete certs_;
  }
  static void MakeCertificate(const std::string& name, const std::string& cn,
                              const std::string& san) {
    const std::string base = *certs_ + "/" + name;
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-keyout " + base + ".key -out " + base + ".pem -subj /CN=" + cn +
        " -addext subjectAltName=" + san + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static std::string Pem(const std::string& name) { return *certs_ + "/" + name + ".pem"; }

  // A server presenting `name`'s certificate.
  std::unique_ptr<LoopbackServer> Serve(const std::string& name) {
    server_tls_ = std::make_unique<ssl::context>(ssl::context::tls_server);
    server_tls_->use_certificate_chain_file(Pem(name));
    server_tls_->use_private_key_file(*certs_ + "/" + name + ".key", ssl::context::pem);
    return std::make_unique<LoopbackServer>(server_tls_.get());
  }
  Delivery DeliverOverTls(LoopbackServer& server, const std::string& host,
                          const std::string& ca_file) {
    v1::Department department =
        Roads("https://" + host + ":" + std::to_string(server.port()) + "/hooks/roads");
    department.mutable_adapter()->mutable_webhook()->set_ca_file(ca_file);
    auto adapter = MustCreate(department);
    return adapter ? adapter->Deliver(Order()) : Delivery::Rejected("no adapter");
  }

  static std::string* certs_;
  std::unique_ptr<ssl::context> server_tls_;
};
std::string* WebhookAdapterTlsTest::certs_ = nullptr;

TEST_F(WebhookAdapterTlsTest, DeliversToAServerTheCaFileVouchesFor) {
  auto server = Serve("loopback");
  Delivery d = DeliverOverTls(*server, "127.0.0.1", Pem("loopback"));
  EXPECT_EQ(d.outcome, Outcome::kDelivered) << Describe(d);
  ASSERT_EQ(server->requests().size(), 1u);
  EXPECT_EQ(server->requests()[0].target, "/hooks/roads");
  EXPECT_EQ(server->requests()[0].headers.at("webhook-id"), "42-1");
  // By host name as well as by IP address.
  d = DeliverOverTls(*server, "localhost", Pem("loopback"));
  EXPECT_EQ(d.outcome, Outcome::kDelivered) << Describe(d);
}

TEST_F(WebhookAdapterTlsTest, TheSystemRootsDoNotTrustASelfSignedServer) {
  auto server = Serve("loopback");
  Delivery d = DeliverOverTls(*server, "127.0.0.1", "");
  EXPECT_EQ(d.outcome, Outcome::kRetry) << Describe(d);
  EXPECT_NE(d.error.find("TLS"), std::string::npos) << Describe(d);
  EXPECT_TRUE(server->requests().empty());
}

TEST_F(WebhookAdapterTlsTest, ACertificateForAnotherHostIsRefused) {
  auto server = Serve("other");
  Delivery d = DeliverOverTls(*server, "127.0.0.1", Pem("other"));
  EXPECT_EQ(d.outcome, Outcome::kRetry) << Describe(d);
  EXPECT_NE(d.error.find("TLS"), std::string::npos) << Describe(d);
  EXPECT_TRUE(server->requests().empty());
}

TEST_F(WebhookAdapterTlsTest, AnUnreadableCaFileIsACreationError) {
  v1::Department department = Roads("https://127.0.0.1:9/hooks");
  department.mutable_adapter()->mutable_webhook()->set_ca_file(dir_ + "/absent.pem");
  auto adapter = Create(department);
  ASSERT_FALSE(adapter);
  EXPECT_EQ(adapter.error().field(), "ca_file");
}

}  // namespace
}  // namespace casebus::webhook

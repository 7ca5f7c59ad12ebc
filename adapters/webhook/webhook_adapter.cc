#include "adapters/webhook/webhook_adapter.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "adapters/http/http_client.h"
#include "adapters/webhook/callback_server.h"
#include "adapters/webhook/signature.h"

namespace casebus::webhook {
namespace {

std::string ReadSecretText(const v1::WebhookAdapter& w, const std::string& data_dir, Status& st) {
  if (!w.secret_env().empty()) {
    const char* v = std::getenv(w.secret_env().c_str());
    if (!v || !*v) st = Status::InvalidArgument("secret_env: " + w.secret_env() + " is not set", "secret_env");
    return v ? std::string(v) : "";
  }
  std::string path = w.secret_file();
  if (path.empty()) {
    st = Status::InvalidArgument("exactly one of secret_file and secret_env must be set", "secret_file");
    return "";
  }
  if (!path.starts_with("/")) path = data_dir + "/" + path;
  std::error_code fs_ec;
  std::ifstream f;
  if (std::filesystem::is_regular_file(path, fs_ec)) f.open(path);
  if (!f.is_open()) {
    st = Status::InvalidArgument("secret_file: cannot read " + path, "secret_file");
    return "";
  }
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

class WebhookAdapter final : public dispatch::Adapter {
 public:
  WebhookAdapter(std::string department, std::string url, http::HttpTarget target,
                 std::vector<Secret> secrets, std::chrono::milliseconds timeout, std::string ca_file)
      : department_(std::move(department)),
        url_(std::move(url)),
        target_(std::move(target)),
        secrets_(std::move(secrets)),
        timeout_(timeout),
        ca_file_(std::move(ca_file)) {}

  ~WebhookAdapter() override {
    if (callback_) callback_->Unregister(department_);
  }

  // Replies come through the shared callback server, verified with this department's secrets.
  void ListenForReplies(std::shared_ptr<CallbackServer> server) {
    callback_ = std::move(server);
    callback_->Register(department_, secrets_);
  }
  std::vector<dispatch::InboundReply> PollReplies() override {
    return callback_ ? callback_->Poll(department_) : std::vector<dispatch::InboundReply>{};
  }
  void Settle(const std::string& token, const v1::CommandResult& result) override {
    if (callback_) callback_->Settle(token, result);
  }

  Status Init() {
    if (!target_.tls) return Status::Ok();
    auto tls = http::TlsContext::Make(ca_file_);
    if (!tls) return Status::InvalidArgument("webhook " + url_ + ": " + tls.error().message(), "ca_file");
    tls_ = std::move(*tls);
    return Status::Ok();
  }

  dispatch::Delivery Deliver(const v1::WorkOrder& order) override {
    v1::OutboxItem item;
    *item.mutable_work_order() = order;
    return Post(order.id(), WebhookBody(item));
  }

  dispatch::Delivery DeliverNotice(const v1::Notice& notice) override {
    v1::OutboxItem item;
    *item.mutable_notice() = notice;
    return Post(notice.id(), WebhookBody(item));
  }

  std::string Endpoint() const override { return "webhook " + url_; }

 private:
  dispatch::Delivery Post(const std::string& id, const std::string& body) {
    const int64_t now_s = std::time(nullptr);
    http::HttpRequest req;
    req.method = http::Method::kPost;
    req.path_and_query = target_.path;
    req.headers = {{"Content-Type", "application/json"},
                   {"webhook-id", id},
                   {"webhook-timestamp", std::to_string(now_s)},
                   {"webhook-signature", SignatureHeader(secrets_, id, now_s, body)}};
    req.body = body;
    http::RequestOptions options;
    options.timeout = timeout_;
    options.max_body_bytes = 0;  // the status and headers are all a webhook answer says
    auto res = http::Request(target_, req, options, tls_.get());
    if (!res) return dispatch::Delivery::Retry(url_ + ": " + res.error().message());

    const int code = res->status;
    const std::string said = "HTTP " + std::to_string(code) + " from " + url_;
    if (code >= 200 && code < 300) return dispatch::Delivery::Delivered();
    if (code == 408 || code == 429 || code >= 500) {
      int64_t retry_after = -1;
      if (std::string v = res->Header("Retry-After"); !v.empty())
        retry_after = ParseRetryAfter(v, std::time(nullptr));
      return dispatch::Delivery::Retry(said, retry_after);
    }
    if (code >= 300 && code < 400) return dispatch::Delivery::Retry(said + " (redirects are not followed)");
    return dispatch::Delivery::Rejected(said);
  }

  std::string department_, url_;
  http::HttpTarget target_;
  std::vector<Secret> secrets_;
  std::chrono::milliseconds timeout_;
  std::string ca_file_;
  std::unique_ptr<http::TlsContext> tls_;
  std::shared_ptr<CallbackServer> callback_;
};

}  // namespace

int64_t ParseRetryAfter(std::string_view value, int64_t now_s) {
  return http::ParseRetryAfter(value, now_s);
}

std::string WebhookBody(const v1::OutboxItem& item) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  std::string data;
  const google::protobuf::Message& m =
      item.has_notice() ? static_cast<const google::protobuf::Message&>(item.notice()) : item.work_order();
  (void)google::protobuf::util::MessageToJsonString(m, &data, opts);
  return std::string("{\"type\":\"") + (item.has_notice() ? "notice" : "work_order") + "\",\"data\":" + data + "}";
}

void RegisterWebhookAdapter(dispatch::AdapterRegistry& registry) {
  registry.Register("webhook", [](const v1::Department& dept, const dispatch::AdapterContext& ctx)
                                   -> Result<std::unique_ptr<dispatch::Adapter>> {
    const v1::WebhookAdapter& w = dept.adapter().webhook();
    const std::string where = "department " + dept.id() + ": adapter.webhook.";
    auto target = http::ParseUrl(w.url());
    if (!target) return Err(Status::InvalidArgument(where + target.error().message(), "url"));
    if (ctx.city) {  // validated at load too; checked again where the socket is made
      const auto& allow = ctx.city->webhook_allow();
      if (std::none_of(allow.begin(), allow.end(), [&](const std::string& p) { return w.url().starts_with(p); }))
        return Err(Status::InvalidArgument(where + "url: " + w.url() + " is not under any webhook_allow prefix", "url"));
    }
    Status st;
    const std::string text = ReadSecretText(w, ctx.data_dir, st);
    if (!st.ok()) return Err(Status::InvalidArgument(where + st.message(), st.field()));
    auto secret = ParseSecret(text);
    if (!secret) return Err(Status::InvalidArgument(where + "secret: " + secret.error().message(), "secret"));
    const uint32_t timeout_ms = ctx.city && ctx.city->delivery().timeout_ms() ? ctx.city->delivery().timeout_ms() : 10'000;
    auto adapter = std::make_unique<WebhookAdapter>(dept.id(), w.url(), std::move(*target),
                                                    std::vector<Secret>{std::move(*secret)},
                                                    std::chrono::milliseconds(timeout_ms), w.ca_file());
    if (Status init = adapter->Init(); !init.ok()) return Err(init);
    if (ctx.city && !ctx.city->webhook_callback().listen().empty()) {
      auto server = CallbackServer::For(ctx.city->webhook_callback().listen());
      if (!server) return Err(Status::InvalidArgument(where.substr(0, where.find(':')) + ": " + server.error().message(), "listen"));
      adapter->ListenForReplies(std::move(*server));
    }
    return std::unique_ptr<dispatch::Adapter>(std::move(adapter));
  });
}

}  // namespace casebus::webhook

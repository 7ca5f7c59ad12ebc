#include "adapters/open311/open311_adapter.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "adapters/http/http_client.h"
#include "adapters/open311/forward_record.h"
#include "adapters/open311/georeport.h"

namespace casebus::open311 {
namespace {

using dispatch::Delivery;

constexpr size_t kMaxAnswerBytes = 1 << 20;
constexpr size_t kMaxQuotedBytes = 512;  // of a server's error description in a Delivery

void Log(const std::string& line) { std::fprintf(stderr, "casebus: %s\n", line.c_str()); }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Settings {
  std::string department;
  v1::Open311Adapter config;
  http::HttpTarget target;  // the endpoint; target.path ends in "/"
  std::string api_key;
  std::chrono::milliseconds timeout{10'000};
  std::chrono::milliseconds poll_interval{60'000};
  std::string dir;  // <data_dir>/open311/<department>
};

class Open311Adapter final : public dispatch::Adapter {
 public:
  explicit Open311Adapter(Settings s)
      : s_(std::move(s)), where_("open311 " + s_.department), records_dir_(s_.dir) {}

  ~Open311Adapter() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (poller_.joinable()) poller_.join();
  }

  Status Init() {
    CASEBUS_RETURN_IF_ERROR(records_dir_.Create());
    CASEBUS_RETURN_IF_ERROR(RecordDirectory(s_.dir + "/notices").Create());
    if (s_.target.tls) {
      auto tls = http::TlsContext::Make("");
      if (!tls) return Status::InvalidArgument(where_ + ": " + tls.error().message(), "endpoint");
      tls_ = std::move(*tls);
    }
    std::vector<std::string> unreadable;
    CASEBUS_RETURN_IF_ERROR(records_dir_.LoadAll(records_, unreadable));
    for (const auto& id : unreadable) {
      // Taken as forwarded (never POSTed again) but not polled: an operator must look.
      Log(where_ + ": the record " + s_.dir + "/" + id + ".json does not parse; work order " + id +
          " counts as forwarded and is not followed up");
      unreadable_.insert(id);
    }
    for (const auto& [id, record] : records_)
      if (record.NextReply()) with_replies_.insert(id);
    return Status::Ok();
  }

  void StartPoller() {
    poller_ = std::thread([this] { PollLoop(); });
  }

  Delivery Deliver(const v1::WorkOrder& order) override {
    if (!SafeName(order.id()))
      return Delivery::Rejected("work order id '" + order.id() + "' is not a safe file name");
    {
      std::lock_guard lock(mu_);
      if (records_.count(order.id()) || unreadable_.count(order.id())) return Delivery::Delivered();
    }
    http::HttpRequest req;
    req.method = http::Method::kPost;
    req.path_and_query = s_.target.path + "requests.json";
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                   {"Accept", "application/json"}};
    req.body = ServiceRequestForm(order, s_.config, s_.api_key);
    PostAnswer answer;
    Delivery d = Classify(Call(req), answer);
    if (!d.ok()) return d;

    ForwardRecord record;
    record.work_order_id = order.id();
    record.case_id = order.case_id();
    record.remote_id = answer.service_request_id;
    record.token = answer.token;
    record.forwarded_at_ms = NowMs();
    record.QueueAccept();
    if (Status st = records_dir_.Save(record); !st.ok())
      return Delivery::Retry(Url("requests.json") + " took it as " + RemoteName(record) +
                             ", but the record could not be written (" + st.message() +
                             "); it will be forwarded again");
    std::lock_guard lock(mu_);
    with_replies_.insert(order.id());
    records_[order.id()] = std::move(record);
    return Delivery::Delivered();
  }

  Delivery DeliverNotice(const v1::Notice& notice) override {
    if (!SafeName(notice.id()))
      return Delivery::Rejected("notice id '" + notice.id() + "' is not a safe file name");
    std::string json;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    if (!google::protobuf::util::MessageToJsonString(notice, &json, opts).ok())
      return Delivery::Rejected("cannot encode notice " + notice.id());
    if (Status st = WriteFileDurably(s_.dir + "/notices", notice.id() + ".json", json + "\n");
        !st.ok())
      return Delivery::Retry(st.message());
    Log(where_ + ": notice " + notice.id() + " for case " + std::to_string(notice.case_id()) +
        " kept in " + s_.dir + "/notices; GeoReport v2 cannot carry it to " + Url(""));
    return Delivery::Delivered();
  }

  std::string Endpoint() const override { return "open311 " + s_.config.endpoint(); }

  std::vector<dispatch::InboundReply> PollReplies() override {
    std::vector<dispatch::InboundReply> out;
    std::lock_guard lock(mu_);
    for (auto it = with_replies_.begin(); it != with_replies_.end();) {
      const ForwardRecord& record = records_.at(*it);
      const QueuedReply* next = record.NextReply();
      if (next == nullptr) {
        it = with_replies_.erase(it);
        continue;
      }
      // One reply of an order at a time, so accept, notes and resolve apply in order.
      if (waiting_.emplace(next->request_id, *it).second)
        out.push_back({record.CommandFor(*next, s_.department), next->request_id, s_.department});
      ++it;
    }
    return out;
  }

  void Settle(const std::string& token, const v1::CommandResult& result) override {
    std::lock_guard lock(mu_);
    auto w = waiting_.find(token);
    if (w == waiting_.end()) return;
    const std::string id = w->second;
    waiting_.erase(w);
    if (result.code() == v1::BUSY || result.code() == v1::UNAVAILABLE) return;  // offered again
    ForwardRecord& record = records_.at(id);
    auto reply = std::find_if(record.replies.begin(), record.replies.end(),
                              [&](const QueuedReply& q) { return q.request_id == token; });
    if (reply == record.replies.end()) return;
    reply->done = true;
    reply->result = v1::Code_Name(result.code());
    if (result.code() != v1::OK) {
      reply->result += ": " + result.message();
      Log(where_ + ": the engine refused " + token + " (work order " + id + ", remote " +
          RemoteName(record) + "): " + reply->result);
    }
    // Even unsaved, it stays done here; after a restart the engine knows the request_id.
    if (Status st = records_dir_.Save(record); !st.ok())
      Log(where_ + ": cannot record the result of " + token + ": " + st.message());
  }

 private:
  std::string Url(const std::string& rest) const { return s_.config.endpoint() + rest; }
  static std::string RemoteName(const ForwardRecord& r) {
    return r.remote_id.empty() ? "token " + r.token : "request " + r.remote_id;
  }
  std::string JurisdictionQuery() const {
    const std::string& j = s_.config.jurisdiction_id();
    return j.empty() ? "" : "?jurisdiction_id=" + FormEscape(j);
  }

  Result<http::HttpResponse> Call(const http::HttpRequest& req) const {
    http::RequestOptions options;
    options.timeout = s_.timeout;
    options.max_body_bytes = kMaxAnswerBytes;
    return http::Request(s_.target, req, options, tls_.get());
  }

  Delivery Classify(const Result<http::HttpResponse>& res, PostAnswer& answer) const {
    const std::string url = Url("requests.json");
    if (!res) return Delivery::Retry(url + ": " + res.error().message());
    const int code = res->status;
    const std::string said = "HTTP " + std::to_string(code) + " from " + url;
    if (code >= 200 && code < 300) {
      auto parsed = ParsePostAnswer(res->body);
      // Retry, not reject: a 2xx without a usable id is most often a passing fault (a proxy's
      // or maintenance page, a half-deployed server), and rejecting would dead-letter a valid
      // order at the first glitch. Retries stay bounded by max_attempts / max_age (then an
      // operator sees a dead letter). If the server did create a request, the next POST makes
      // a second one; attribute[casebus_work_order] lets the server or its staff tell.
      if (!parsed)
        return Delivery::Retry(said + ", but " + parsed.error().message() + "; retrying");
      answer = std::move(*parsed);
      return Delivery::Delivered();
    }
    if (code == 408 || code == 429 || code >= 500) {
      int64_t retry_after = -1;
      if (std::string v = res->Header("Retry-After"); !v.empty())
        retry_after = http::ParseRetryAfter(v, std::time(nullptr));
      return Delivery::Retry(said, retry_after);
    }
    if (code >= 300 && code < 400) return Delivery::Retry(said + " (redirects are not followed)");
    const auto description = ParseErrorDescription(res->body);
    const std::string server_says =
        description ? ": " + Truncate(*description, kMaxQuotedBytes) : "";
    if (code == 401 || code == 403)
      return Delivery::Rejected(
          said + server_says +
          " (the server refused the api_key; check api_key_file / api_key_env)");
    if (code == 404)
      return Delivery::Rejected(said + server_says +
                                " (no such endpoint, jurisdiction or service_code)");
    return Delivery::Rejected(said + server_says);
  }

  // The remote request of a forwarded order, as the poller needs it.
  struct Followed {
    std::string id, remote_id, token;
  };

  void PollLoop() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, s_.poll_interval, [this] { return stop_; })) {
      // A round cut short resumes after the record it stopped at, so one request the server
      // keeps failing on cannot starve the others.
      std::vector<Followed> open;
      auto start = records_.upper_bound(resume_after_);
      for (auto it = start; it != records_.end(); ++it)
        if (!it->second.closed) open.push_back({it->first, it->second.remote_id, it->second.token});
      for (auto it = records_.begin(); it != start; ++it)
        if (!it->second.closed) open.push_back({it->first, it->second.remote_id, it->second.token});
      lock.unlock();
      resume_after_.clear();
      for (const auto& f : open) {
        if (Stopping()) break;
        if (!PollRecord(f)) {
          resume_after_ = f.id;
          break;
        }
      }
      lock.lock();
    }
  }

  bool Stopping() {
    std::lock_guard lock(mu_);
    return stop_;
  }

  // Asks the remote server about one forwarded order and takes in what changed. False when
  // the server is unreachable or failing (5xx): the rest of the round would only wait too.
  bool PollRecord(const Followed& f) {
    std::string remote_id = f.remote_id;
    if (remote_id.empty()) {
      auto found = Fetch("tokens/" + PathEscape(f.token) + ".json", ParseTokenAnswer);
      if (!found) return Complain(f.id, found.error());
      if (found->empty()) return true;  // not assigned yet
      remote_id = *found;
      const bool learned = Update(f.id, [&](ForwardRecord& r) {
        if (!r.remote_id.empty()) return false;
        r.remote_id = remote_id;
        return true;
      });
      if (!learned) return true;
    }
    auto remote = Fetch("requests/" + PathEscape(remote_id) + ".json",
                        [&](std::string_view body) { return ParseRequestStatus(body, remote_id); });
    if (!remote) return Complain(f.id, remote.error());
    complaints_.erase(f.id);
    Update(f.id,
           [&](ForwardRecord& r) { return r.Observe(*remote, Url("requests/" + remote_id)); });
    return true;
  }

  // GET {endpoint}<rest>[?jurisdiction_id=…], parsed by `parse` when the answer is a 200.
  // Unavailable: no answer, or a 5xx; InvalidArgument: any other answer it cannot use.
  template <typename Parse>
  auto Fetch(const std::string& rest, Parse parse) -> decltype(parse(std::string_view())) {
    http::HttpRequest req;
    req.path_and_query = s_.target.path + rest + JurisdictionQuery();
    req.headers = {{"Accept", "application/json"}};
    auto res = Call(req);
    const std::string url = Url(rest);
    if (!res) return Err(Status::Unavailable(url + ": " + res.error().message()));
    const std::string said = "HTTP " + std::to_string(res->status) + " from " + url;
    if (res->status >= 500) return Err(Status::Unavailable(said));
    if (res->status != 200) return Err(Status::InvalidArgument(said));
    auto parsed = parse(res->body);
    if (!parsed) return Err(Status::InvalidArgument(url + ": " + parsed.error().message()));
    return parsed;
  }

  // Applies `change` to a copy of the record and saves it; the record changes in memory only
  // once it is on disk. False when nothing changed or the save failed.
  template <typename Change>
  bool Update(const std::string& id, Change change) {
    std::lock_guard lock(mu_);
    auto it = records_.find(id);
    if (it == records_.end()) return false;
    ForwardRecord next = it->second;
    if (!change(next)) return false;
    if (Status st = records_dir_.Save(next); !st.ok()) {
      Log(where_ + ": work order " + id +
          ": cannot record what the remote server said: " + st.message());
      return false;
    }
    it->second = std::move(next);
    if (it->second.NextReply()) with_replies_.insert(id);
    return true;
  }

  // Logs a polling failure once per distinct reason (poller thread only). False when the
  // server is unavailable.
  bool Complain(const std::string& id, const Status& why) {
    std::string& last = complaints_[id];
    if (last != why.message()) {
      last = why.message();
      Log(where_ + ": work order " + id + ": " + last + "; changing nothing, asking again later");
    }
    return why.code() != StatusCode::kUnavailable;
  }

  const Settings s_;
  const std::string where_;
  const RecordDirectory records_dir_;
  std::unique_ptr<http::TlsContext> tls_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                              // GUARDED_BY(mu_)
  std::map<std::string, ForwardRecord> records_;   // GUARDED_BY(mu_), by work order id
  std::set<std::string> unreadable_;               // GUARDED_BY(mu_)
  std::set<std::string> with_replies_;             // GUARDED_BY(mu_): may have unfinished replies
  std::map<std::string, std::string> waiting_;     // GUARDED_BY(mu_): request_id → work order id
  std::map<std::string, std::string> complaints_;  // poller thread only
  std::string resume_after_;                       // poller thread only
  std::thread poller_;
};

Result<std::string> ReadApiKey(const v1::Open311Adapter& o, const std::string& data_dir) {
  if (!o.api_key_env().empty() && o.api_key_file().empty()) {
    const char* v = std::getenv(o.api_key_env().c_str());
    if (!v || !*v)
      return Err(Status::InvalidArgument("api_key_env: " + o.api_key_env() + " is not set",
                                         "api_key_env"));
    return std::string(v);
  }
  if (o.api_key_file().empty() || !o.api_key_env().empty())
    return Err(Status::InvalidArgument("exactly one of api_key_file and api_key_env must be set",
                                       "api_key_file"));
  std::string path = o.api_key_file();
  if (!path.starts_with("/")) path = data_dir + "/" + path;
  std::error_code ec;
  std::ifstream f;
  if (std::filesystem::is_regular_file(path, ec)) f.open(path);
  if (!f.is_open())
    return Err(Status::InvalidArgument("api_key_file: cannot read " + path, "api_key_file"));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (text.empty())
    return Err(Status::InvalidArgument("api_key_file: " + path + " is empty", "api_key_file"));
  return text;
}

Result<std::unique_ptr<dispatch::Adapter>> Make(const v1::Department& dept,
                                                const dispatch::AdapterContext& ctx) {
  const v1::Open311Adapter& o = dept.adapter().open311();
  const std::string where = "department " + dept.id() + ": adapter.open311.";
  auto target = http::ParseUrl(o.endpoint());
  if (!target)
    return Err(
        Status::InvalidArgument(where + "endpoint: " + target.error().message(), "endpoint"));
  if (!target->path.ends_with("/") || target->path.find('?') != std::string::npos)
    return Err(Status::InvalidArgument(
        where + "endpoint: " + o.endpoint() + " must be a base URL ending in \"/\"", "endpoint"));
  if (ctx.city) {  // validated at load too; checked again where the socket is made
    const auto& allow = ctx.city->webhook_allow();
    if (std::none_of(allow.begin(), allow.end(),
                     [&](const std::string& p) { return o.endpoint().starts_with(p); }))
      return Err(Status::InvalidArgument(
          where + "endpoint: " + o.endpoint() + " is not under any webhook_allow prefix",
          "endpoint"));
  }
  auto key = ReadApiKey(o, ctx.data_dir);
  if (!key) return Err(Status::InvalidArgument(where + key.error().message(), key.error().field()));
  Settings s;
  s.department = dept.id();
  s.config = o;
  s.target = std::move(*target);
  s.api_key = std::move(*key);
  if (ctx.city && ctx.city->delivery().timeout_ms())
    s.timeout = std::chrono::milliseconds(ctx.city->delivery().timeout_ms());
  if (o.poll_interval_ms()) s.poll_interval = std::chrono::milliseconds(o.poll_interval_ms());
  s.dir = ctx.data_dir + "/open311/" + dept.id();
  auto adapter = std::make_unique<Open311Adapter>(std::move(s));
  if (Status st = adapter->Init(); !st.ok()) return Err(st);
  adapter->StartPoller();
  return std::unique_ptr<dispatch::Adapter>(std::move(adapter));
}

}  // namespace

void RegisterOpen311Adapter(dispatch::AdapterRegistry& registry) {
  registry.Register("open311", Make);
}

}  // namespace casebus::open311

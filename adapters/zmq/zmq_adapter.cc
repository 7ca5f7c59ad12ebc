#include "adapters/zmq/zmq_adapter.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "casebus/v1/gateway.pb.h"
#include "engine/auth/policy.h"
#include "engine/base/proto_check.h"

namespace casebus::zmqgw {
namespace {

constexpr size_t kMaxFrameBytes = 1 << 20;
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

Result<std::string> ReadKey(const std::string& file, const std::string& env, const std::string& data_dir,
                            const std::string& what) {
  std::string text;
  if (!env.empty()) {
    const char* v = std::getenv(env.c_str());
    if (!v || !*v) return Err(Status::InvalidArgument(what + "_env: " + env + " is not set", what));
    text = v;
  } else {
    std::string path = file.starts_with("/") ? file : data_dir + "/" + file;
    std::error_code ec;
    std::ifstream f;
    if (!file.empty() && std::filesystem::is_regular_file(path, ec)) f.open(path);
    if (!f.is_open()) return Err(Status::InvalidArgument(what + "_file: cannot read " + path, what));
    std::getline(f, text);
  }
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (text.size() != 40) return Err(Status::InvalidArgument(what + ": not a Z85 CURVE key (40 characters)", what));
  return text;
}

std::string Z85(const unsigned char* key32) {
  char out[41];
  zmq_z85_encode(out, key32, 32);
  return std::string(out, 40);
}

// The gateway: one per bound endpoint, shared by the departments' adapters.
class Gateway {
 public:
  static Result<std::shared_ptr<Gateway>> For(const v1::CityConfig& city, const std::string& data_dir) {
    static std::mutex mu;
    static std::map<std::string, std::weak_ptr<Gateway>> open;
    std::lock_guard lock(mu);
    const auto& gw = city.zmq_gateway();
    if (auto it = open.find(gw.endpoint()); it != open.end())
      if (auto g = it->second.lock()) return g;
    auto secret = ReadKey(gw.secret_key_file(), gw.secret_key_env(), data_dir, "zmq_gateway.secret_key");
    if (!secret) return Err(secret.error());
    std::map<std::string, std::string> allow;
    for (const auto& d : city.departments())
      if (d.adapter().has_zmq())
        for (const auto& k : d.adapter().zmq().client_keys()) allow[k] = d.id();
    auto g = std::shared_ptr<Gateway>(new Gateway(std::move(allow)));
    if (Status st = g->Start(gw.endpoint(), *secret); !st.ok()) return Err(st);
    open[gw.endpoint()] = g;
    return g;
  }

  ~Gateway() {
    stop_.store(true);
    Wake();
    if (thread_.joinable()) thread_.join();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  const std::string& endpoint() const { return endpoint_; }

  dispatch::Delivery Push(const std::string& department, const std::string& id,
                          const v1::GatewayFrame& frame, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (acked_.erase(id)) return dispatch::Delivery::Delivered();  // a late ack of an earlier try
    auto c = client_of_.find(department);
    if (c == client_of_.end())
      return dispatch::Delivery::Retry("no client of " + department + " is connected to the gateway " + endpoint_);
    const std::string routing = c->second;
    out_.push_back({routing, frame.SerializeAsString()});
    lock.unlock();
    Wake();
    lock.lock();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const bool got = cv_.wait_until(lock, deadline, [&] { return acked_.count(id) > 0 || unreachable_.count(routing) > 0; });
    if (acked_.erase(id)) return dispatch::Delivery::Delivered();
    if (unreachable_.erase(routing)) {
      if (auto it = client_of_.find(department); it != client_of_.end() && it->second == routing) client_of_.erase(it);
      return dispatch::Delivery::Retry("the client of " + department + " went away");
    }
    (void)got;
    return dispatch::Delivery::Retry("no ack from " + department + "'s client within " +
                                     std::to_string(timeout.count()) + " ms");
  }

  std::vector<dispatch::InboundReply> Poll(const std::string& department) {
    std::lock_guard lock(mu_);
    auto it = inbound_.find(department);
    if (it == inbound_.end()) return {};
    std::vector<dispatch::InboundReply> out = std::move(it->second);
    inbound_.erase(it);
    return out;
  }

  void Answer(const std::string& token, const v1::CommandResult& result) {
    const size_t sep = token.find('\x1f');
    if (sep == std::string::npos) return;
    v1::GatewayFrame f;
    *f.mutable_result() = result;
    {
      std::lock_guard lock(mu_);
      out_.push_back({token.substr(0, sep), f.SerializeAsString()});
    }
    Wake();
  }

 private:
  struct Outgoing {
    std::string routing, bytes;
  };

  explicit Gateway(std::map<std::string, std::string> allow) : allow_(std::move(allow)) {}

  Status Start(const std::string& endpoint, const std::string& secret) {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return Status::IOError("gateway: eventfd failed");
    if (!zmq_has("curve")) return Status::FailedPrecondition("gateway: this libzmq has no CURVE support");
    try {
      zap_ = zmq::socket_t(ctx_, zmq::socket_type::rep);
      zap_.set(zmq::sockopt::linger, 0);
      zap_.bind(kZapEndpoint);
      router_ = zmq::socket_t(ctx_, zmq::socket_type::router);
      router_.set(zmq::sockopt::linger, 0);
      router_.set(zmq::sockopt::router_mandatory, 1);
      router_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxFrameBytes));
      router_.set(zmq::sockopt::curve_server, 1);
      router_.set(zmq::sockopt::curve_secretkey, secret);
      router_.set(zmq::sockopt::zap_domain, "casebus-departments");
      router_.bind(endpoint);
      endpoint_ = router_.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      return Status::InvalidArgument("zmq_gateway.endpoint " + endpoint + ": " + e.what(), "endpoint");
    }
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "casebus-gateway");
      Loop();
    });
    return Status::Ok();
  }

  void Wake() {
    const uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
  }

  void Loop() {
    while (!stop_.load()) {
      zmq::pollitem_t items[] = {{zap_.handle(), 0, ZMQ_POLLIN, 0},
                                 {router_.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
      zmq::poll(items, 3, std::chrono::milliseconds(200));
      if (items[0].revents & ZMQ_POLLIN) Authenticate();
      if (items[1].revents & ZMQ_POLLIN)
        for (int i = 0; i < 1000 && Receive(); ++i) {
        }
      if (items[2].revents & ZMQ_POLLIN) {
        uint64_t n;
        (void)!::read(wake_fd_, &n, sizeof n);
      }
      Flush();
    }
  }

  // ZAP (RFC 27): admits CURVE clients whose key a department lists; the user id is the
  // department, which every message from that connection then carries.
  void Authenticate() {
    std::vector<zmq::message_t> req;
    while (true) {
      zmq::message_t m;
      if (!zap_.recv(m, zmq::recv_flags::dontwait)) break;
      const bool more = m.more();
      req.push_back(std::move(m));
      if (!more) break;
    }
    std::string status = "400", text = "malformed ZAP request", user;
    if (req.size() >= 7 && req[5].to_string() == "CURVE" && req[6].size() == 32) {
      const std::string key = Z85(static_cast<const unsigned char*>(req[6].data()));
      if (auto it = allow_.find(key); it != allow_.end()) {
        status = "200", text = "OK", user = it->second;
      } else {
        text = "client key not allowed";
        std::fprintf(stderr, "casebus: gateway: refused a client with key %s from %s: not on any department's list\n",
                     key.c_str(), req[3].to_string().c_str());
      }
    } else if (req.size() >= 6) {
      text = "CURVE required";
    }
    const std::string version = req.size() > 0 ? req[0].to_string() : "1.0";
    const std::string id = req.size() > 1 ? req[1].to_string() : "";
    for (const std::string& part : {version, id, status, text, user}) zap_.send(zmq::buffer(part), zmq::send_flags::sndmore);
    zap_.send(zmq::message_t(), zmq::send_flags::none);
  }

  // One message from a client; false when none was waiting.
  bool Receive() {
    zmq::message_t routing, payload;
    if (!router_.recv(routing, zmq::recv_flags::dontwait)) return false;
    if (!routing.more()) return true;
    (void)router_.recv(payload, zmq::recv_flags::none);
    while (payload.more()) {  // extra frames: drain and refuse
      zmq::message_t extra;
      (void)router_.recv(extra, zmq::recv_flags::none);
      payload = zmq::message_t("", 0);
    }
    const char* user = payload.gets("User-Id");
    const std::string department = user ? user : "";
    const std::string rid = routing.to_string();
    if (department.empty()) return true;  // cannot happen: ZAP admits only known keys
    v1::GatewayFrame f;
    std::string bad;
    if (payload.size() == 0) bad = "empty frame (one GatewayFrame per message)";
    else if (!f.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) bad = "the frame is not a GatewayFrame";
    else if (Status u = CheckNoUnknownFields(f, "", "frame"); !u.ok()) bad = u.message();
    else if (f.body_case() == v1::GatewayFrame::BODY_NOT_SET) bad = "the frame has no body";
    std::lock_guard lock(mu_);
    if (!bad.empty()) {
      v1::GatewayFrame e;
      e.mutable_error()->set_reason(bad);
      out_.push_back({rid, e.SerializeAsString()});
      return true;
    }
    client_of_[department] = rid;
    switch (f.body_case()) {
      case v1::GatewayFrame::kHello: break;
      case v1::GatewayFrame::kAck:
        acked_.insert(f.ack().id());
        cv_.notify_all();
        break;
      case v1::GatewayFrame::kCommand: {
        v1::Command cmd = std::move(*f.mutable_command());
        if (cmd.request_id().empty()) {
          v1::GatewayFrame e;
          e.mutable_error()->set_reason("command.request_id: required");
          out_.push_back({rid, e.SerializeAsString()});
          break;
        }
        cmd.set_actor(department);  // the key decides who acts
        *cmd.mutable_caller() = auth::DepartmentCaller(department);  // whatever the frame claimed
        const std::string token = rid + '\x1f' + cmd.request_id();
        inbound_[department].push_back({std::move(cmd), token, department});
        break;
      }
      default: {
        v1::GatewayFrame e;
        e.mutable_error()->set_reason("a client sends hello, ack or command frames only");
        out_.push_back({rid, e.SerializeAsString()});
      }
    }
    return true;
  }

  void Flush() {
    std::deque<Outgoing> out;
    {
      std::lock_guard lock(mu_);
      out.swap(out_);
    }
    std::set<std::string> gone;
    for (auto& o : out) {
      try {
        router_.send(zmq::buffer(o.routing), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        router_.send(zmq::buffer(o.bytes), zmq::send_flags::dontwait);
      } catch (const zmq::error_t&) {
        gone.insert(o.routing);  // EHOSTUNREACH (router_mandatory) or a full pipe
      }
    }
    if (!gone.empty()) {
      std::lock_guard lock(mu_);
      unreachable_.insert(gone.begin(), gone.end());
      cv_.notify_all();
    }
  }

  const std::map<std::string, std::string> allow_;  // client key → department
  zmq::context_t ctx_{1};
  zmq::socket_t zap_, router_;
  std::string endpoint_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Outgoing> out_;
  std::map<std::string, std::string> client_of_;  // department → routing id of its latest client
  std::set<std::string> acked_, unreachable_;
  std::map<std::string, std::vector<dispatch::InboundReply>> inbound_;
};

class ZmqAdapter final : public dispatch::Adapter {
 public:
  ZmqAdapter(std::string department, std::shared_ptr<Gateway> gateway, std::chrono::milliseconds timeout)
      : department_(std::move(department)), gateway_(std::move(gateway)), timeout_(timeout) {}

  dispatch::Delivery Deliver(const v1::WorkOrder& order) override {
    v1::GatewayFrame f;
    *f.mutable_work_order() = order;
    return gateway_->Push(department_, order.id(), f, timeout_);
  }
  dispatch::Delivery DeliverNotice(const v1::Notice& notice) override {
    v1::GatewayFrame f;
    *f.mutable_notice() = notice;
    return gateway_->Push(department_, notice.id(), f, timeout_);
  }
  std::string Endpoint() const override { return "zmq " + gateway_->endpoint() + " " + department_; }
  std::vector<dispatch::InboundReply> PollReplies() override { return gateway_->Poll(department_); }
  void Settle(const std::string& token, const v1::CommandResult& result) override {
    // BUSY / UNAVAILABLE included: the client retries with the same request_id.
    gateway_->Answer(token, result);
  }

 private:
  std::string department_;
  std::shared_ptr<Gateway> gateway_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

Result<KeyPair> NewKeyPair() {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) return Err(Status::FailedPrecondition("this libzmq has no CURVE support"));
  return KeyPair{std::string(pub, 40), std::string(sec, 40)};
}

Result<std::string> PublicKeyOf(const std::string& secret_key) {
  char pub[41];
  if (secret_key.size() != 40 || zmq_curve_public(pub, secret_key.c_str()) != 0)
    return Err(Status::InvalidArgument("not a Z85 CURVE secret key (40 characters)", "secret_key"));
  return std::string(pub, 40);
}

void RegisterZmqAdapter(dispatch::AdapterRegistry& registry) {
  registry.Register("zmq", [](const v1::Department& dept, const dispatch::AdapterContext& ctx)
                               -> Result<std::unique_ptr<dispatch::Adapter>> {
    if (!ctx.city) return Err(Status::InvalidArgument("zmq adapter needs the city config", "adapter"));
    auto gateway = Gateway::For(*ctx.city, ctx.data_dir);
    if (!gateway) return Err(Status::InvalidArgument("department " + dept.id() + ": " + gateway.error().message(),
                                                     gateway.error().field()));
    const uint32_t timeout = ctx.city->delivery().timeout_ms() ? ctx.city->delivery().timeout_ms() : 10'000;
    return std::unique_ptr<dispatch::Adapter>(
        std::make_unique<ZmqAdapter>(dept.id(), std::move(*gateway), std::chrono::milliseconds(timeout)));
  });
}

}  // namespace casebus::zmqgw

#pragma once
// The test's handle on tests/support/open311_server.py: starts it on loopback (port file),
// stops it, and drives its control endpoints (change a request, switch misbehaviour, read what
// it received) through casebus::http. Header-only; test thread only.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "adapters/http/http_client.h"
#include "tests/integration/server_process.h"

namespace casebus::open311::testing {

constexpr const char* kApiKey = "k3y-for-tests-only";

class Open311Server {
 public:
  // `dir` holds the port file and the server's log.
  explicit Open311Server(const std::string& dir, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {CASEBUS_SOURCE_DIR "/tests/support/open311_server.py",
                                     "--port-file", dir + "/open311.port", "--api-key", kApiKey};
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = std::make_unique<casebus::testing::ServerProcess>("/usr/bin/python3", args,
                                                                 dir + "/open311_server.log");
    if (!process_->Start(dir + "/open311.port")) {
      ADD_FAILURE() << "open311_server.py did not start; see " << dir << "/open311_server.log";
      return;
    }
    std::ifstream(dir + "/open311.port") >> port_;
    target_.host = "127.0.0.1";
    target_.port = std::to_string(port_);
  }
  ~Open311Server() {
    if (process_) process_->Terminate();
  }

  int port() const { return port_; }
  std::string Base() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  std::string Endpoint() const { return Base() + "open311/v2/"; }

  // POST /control/requests/{id} with the given fields.
  void Change(const std::string& id, const boost::json::object& fields) {
    Call(http::Method::kPost, "/control/requests/" + id, boost::json::serialize(fields));
  }
  // POST /control/mode, e.g. {{"get", "garbage"}}.
  void Mode(const boost::json::object& mode) {
    Call(http::Method::kPost, "/control/mode", boost::json::serialize(mode));
  }
  // The form fields of every POST requests.json so far, in order.
  std::vector<std::map<std::string, std::string>> Posts() {
    std::vector<std::map<std::string, std::string>> out;
    boost::json::value log = Log();
    if (!log.is_object()) return out;
    for (const auto& p : log.at("posts").as_array()) {
      std::map<std::string, std::string> form;
      for (const auto& [k, v] : p.at("form").as_object())
        form[std::string(k)] = std::string(v.as_string());
      form["(content-type)"] = std::string(p.at("content_type").as_string());
      out.push_back(std::move(form));
    }
    return out;
  }
  // How many GETs a path has had.
  int64_t Gets(const std::string& path) {
    boost::json::value log = Log();
    if (!log.is_object()) return -1;
    const auto* n = log.at("gets").as_object().if_contains(path);
    return n ? n->as_int64() : 0;
  }

 private:
  boost::json::value Log() {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(Call(http::Method::kGet, "/control/log", ""), ec);
    EXPECT_FALSE(ec) << "control/log: " << ec.message();
    return v;
  }
  std::string Call(http::Method method, const std::string& path, const std::string& body) {
    http::HttpRequest req{method, path, {{"Content-Type", "application/json"}}, body};
    auto res = http::Request(target_, req, {std::chrono::milliseconds(5000), 64 << 20}, nullptr);
    EXPECT_TRUE(res) << path << ": " << (res ? "" : res.error().ToString());
    if (!res) return "";
    EXPECT_EQ(res->status, 200) << path << ": " << res->body;
    return res->body;
  }

  std::unique_ptr<casebus::testing::ServerProcess> process_;
  http::HttpTarget target_;
  int port_ = 0;
};

}  // namespace casebus::open311::testing

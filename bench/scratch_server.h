#pragma once
// ScratchServer: a fresh `casebus serve` for one benchmark run — its own temp data directory,
// a free loopback port, no dispatch — stopped (SIGTERM) and its directory removed when it goes
// out of scope. Used by the e2e benchmarks; one thread owns it.

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "tests/integration/server_process.h"

namespace casebus::bench {

class ScratchServer {
 public:
  // nullptr (and a message on stderr naming the log) when the server did not start.
  static std::unique_ptr<ScratchServer> Start(const std::string& binary, const std::string& config,
                                              bool sync) {
    char tmpl[] = "/tmp/casebus-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return nullptr;
    std::unique_ptr<ScratchServer> s(new ScratchServer(tmpl));
    s->endpoint_ = "tcp://127.0.0.1:" + std::to_string(casebus::testing::FreePort());
    std::vector<std::string> args = {"serve",      "--config",        config,
                                     "--data",     s->dir_ + "/data", "--endpoint",
                                     s->endpoint_, "--endpoint-file", s->dir_ + "/ep",
                                     "--http",     "127.0.0.1:0",     "--no-dispatch"};
    if (!sync) args.push_back("--no-sync");
    s->process_ = std::make_unique<casebus::testing::ServerProcess>(binary, std::move(args),
                                                                    s->dir_ + "/server.log");
    if (!s->process_->Start(s->dir_ + "/ep")) {
      std::fprintf(stderr, "server did not start; see %s/server.log\n", s->dir_.c_str());
      s->keep_dir_ = true;
      return nullptr;
    }
    return s;
  }
  ~ScratchServer() {
    if (process_ && process_->running()) process_->Terminate();
    std::error_code ec;
    if (!keep_dir_) std::filesystem::remove_all(dir_, ec);
  }
  ScratchServer(const ScratchServer&) = delete;
  ScratchServer& operator=(const ScratchServer&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return process_->pid(); }

 private:
  explicit ScratchServer(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_, endpoint_;
  std::unique_ptr<casebus::testing::ServerProcess> process_;
  bool keep_dir_ = false;
};

// A load generator's DEALER to the server: no linger, unbounded send and receive queues (the
// client paces itself; a high-water mark would drop or block silently).
inline zmq::socket_t LoadDealer(zmq::context_t& ctx, const std::string& endpoint) {
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::sndhwm, 0);
  sock.set(zmq::sockopt::rcvhwm, 0);
  sock.connect(endpoint);
  return sock;
}

}  // namespace casebus::bench

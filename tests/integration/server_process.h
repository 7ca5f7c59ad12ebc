#pragma once
// ServerProcess: a real `casebus serve` child process for integration tests, started with
// posix_spawn and stopped by PID (SIGTERM for a clean stop, SIGKILL for a crash).

#include <sys/types.h>

#include <string>
#include <vector>

namespace casebus::testing {

class ServerProcess {
 public:
  ServerProcess(std::string binary, std::vector<std::string> args, std::string log_path);
  ~ServerProcess();
  // Starts the process and waits until it writes `ready_file` (the endpoint file).
  // Returns false when it exited or did not become ready within timeout_ms.
  bool Start(const std::string& ready_file, int timeout_ms = 20000);
  void Kill();            // SIGKILL and reap
  int Terminate();        // SIGTERM, wait; returns the exit status (or -1)
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  std::string binary_;
  std::vector<std::string> args_;
  std::string log_path_;
  pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

}  // namespace casebus::testing

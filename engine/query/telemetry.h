#pragma once
// Telemetry: the Prometheus exposition (prometheus-cpp's registry and text serializer), served
// at GET /metrics by the engine's HTTP server. Label sets are bounded by the config:
// department, district, stage (case state or clock stage) and escalation level.
//
// Two kinds of series. Hot-path events (commits, intake frames, accept/handle durations,
// escalations) are counted as they happen, from any thread. Ledger and delivery figures are
// read at scrape time from a Snapshot the engine answers, so a scrape shows the same numbers
// as GET /v1/metrics/closure at that instant.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "casebus/v1/case.pb.h"
#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace casebus::query {

class Telemetry {
 public:
  explicit Telemetry(const v1::CityConfig& config);
  ~Telemetry();

  // Hot path, any thread.
  void Committed(size_t commands, double seconds);
  void CommitFailed();
  void IntakeFrame(bool busy);
  void Accepted(double seconds_since_dispatch);
  void Handled(double seconds_since_dispatch);
  void Escalated(v1::Stage stage, int level);

  // What a scrape reads from the engine.
  struct Snapshot {
    v1::StatusReply status;
    v1::MetricsReply departments;  // all history, by department
    v1::MetricsReply districts;    // all history, by district
    uint64_t queue_depth = 0;
  };
  // The text exposition (format 0.0.4) with the snapshot's figures. Any thread.
  std::string Render(const Snapshot& s);

 private:
  struct Families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> f_;
  std::mutex render_mu_;
};

}  // namespace casebus::query

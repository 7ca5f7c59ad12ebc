#include "engine/query/telemetry.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cctype>

#include "engine/core/ledger.h"

namespace casebus::query {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// The ledger counters exported per department and district (the closure formulas' inputs).
constexpr core::Counter kExported[] = {
    core::kRegistered, core::kDispatched, core::kDue,        core::kClosed,         core::kClosedOnTime,
    core::kOverdueOpen, core::kHandleDue, core::kHandled,    core::kHandledOnTime,  core::kRework,
    core::kReturned,    core::kExtended,  core::kSuspended,  core::kEscalated,      core::kSupervised,
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Wall-time buckets for accept and handle durations: 15 min .. 30 days.
Histogram::BucketBoundaries DurationBuckets() {
  return {900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 259200, 604800, 1209600, 2592000};
}

}  // namespace

struct Telemetry::Families {
  prometheus::Family<prometheus::Gauge>& department_cases;
  prometheus::Family<prometheus::Gauge>& district_cases;
  prometheus::Family<prometheus::Gauge>& open_cases;
  prometheus::Gauge& overdue_open;
  prometheus::Gauge& supervisions_open;
  prometheus::Family<prometheus::Counter>& escalations;
  prometheus::Family<prometheus::Counter>& deliveries;
  prometheus::Family<prometheus::Counter>& dead_total;
  prometheus::Gauge& dead_letters;
  prometheus::Family<prometheus::Gauge>& delivery_pending;
  prometheus::Family<prometheus::Gauge>& delivery_lag;
  prometheus::Family<prometheus::Gauge>& breaker_open;
  prometheus::Counter& intake_requests;
  prometheus::Counter& intake_busy;
  prometheus::Gauge& queue_depth;
  prometheus::Counter& commit_errors;
  prometheus::Gauge& store_healthy;
  prometheus::Gauge& journal_seq;
  prometheus::Histogram& accept_duration;
  prometheus::Histogram& handle_duration;
  prometheus::Histogram& commit_batch;
  prometheus::Histogram& commit_seconds;
};

Telemetry::Telemetry(const v1::CityConfig& config)
    : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  auto& accept = BuildHistogram().Name("casebus_accept_duration_seconds")
                     .Help("Wall time from dispatch to the department's accept (签收), since start").Register(r);
  auto& handle = BuildHistogram().Name("casebus_handle_duration_seconds")
                     .Help("Wall time from dispatch to resolve (处置), since start").Register(r);
  auto& batch = BuildHistogram().Name("casebus_commit_batch_commands")
                    .Help("Commands per group commit").Register(r);
  auto& commit = BuildHistogram().Name("casebus_commit_seconds")
                     .Help("Time of one synced group-commit write").Register(r);
  f_ = std::unique_ptr<Families>(new Families{
      BuildGauge().Name("casebus_department_cases")
          .Help("Closure ledger counters per department, all history as of now (cases)").Register(r),
      BuildGauge().Name("casebus_district_cases")
          .Help("Closure ledger counters per district, all history as of now (cases)").Register(r),
      BuildGauge().Name("casebus_open_cases").Help("Open cases by state").Register(r),
      BuildGauge().Name("casebus_overdue_open_cases")
          .Help("Open cases past their handling deadline").Register(r).Add({}),
      BuildGauge().Name("casebus_supervisions_open")
          .Help("督办 records waiting for the department's written reply").Register(r).Add({}),
      BuildCounter().Name("casebus_escalations_total")
          .Help("Escalation ladder steps fired since start, by clock stage and level").Register(r),
      BuildCounter().Name("casebus_deliveries_total")
          .Help("Outbox items delivered since start, by department").Register(r),
      BuildCounter().Name("casebus_dead_letters_total")
          .Help("Outbox items dead-lettered since start, by department").Register(r),
      BuildGauge().Name("casebus_dead_letters").Help("Dead letters waiting for an operator").Register(r).Add({}),
      BuildGauge().Name("casebus_delivery_pending").Help("Undelivered outbox items per department").Register(r),
      BuildGauge().Name("casebus_delivery_lag_seconds")
          .Help("Age of the oldest undelivered outbox item per department").Register(r),
      BuildGauge().Name("casebus_delivery_breaker_open")
          .Help("1 while the department endpoint's circuit breaker is open or half-open").Register(r),
      BuildCounter().Name("casebus_intake_requests_total").Help("Intake frames received").Register(r).Add({}),
      BuildCounter().Name("casebus_intake_busy_total")
          .Help("Intake frames refused BUSY (queue full)").Register(r).Add({}),
      BuildGauge().Name("casebus_intake_queue_depth").Help("Commands waiting for the core").Register(r).Add({}),
      BuildCounter().Name("casebus_commit_errors_total").Help("Failed group commits").Register(r).Add({}),
      BuildGauge().Name("casebus_store_healthy").Help("1 while the store accepts writes").Register(r).Add({}),
      BuildGauge().Name("casebus_journal_seq").Help("Last committed journal sequence number").Register(r).Add({}),
      accept.Add({}, DurationBuckets()),
      handle.Add({}, DurationBuckets()),
      batch.Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}),
      commit.Add({}, Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1}),
  });
  // Every department's series exist from the start, so the first increase is seen.
  for (const auto& d : config.departments()) {
    f_->deliveries.Add({{"department", d.id()}});
    f_->dead_total.Add({{"department", d.id()}});
  }
  for (const char* stage : {"accept", "handle", "verify"}) {
    const auto& ladder = config.escalation().ladder();
    const int steps = std::string(stage) == "accept" ? ladder.accept_size()
                      : std::string(stage) == "handle" ? ladder.handle_size()
                                                        : ladder.verify_size();
    for (int level = 1; level <= steps; ++level)
      f_->escalations.Add({{"stage", stage}, {"level", std::to_string(level)}});
  }
}

Telemetry::~Telemetry() = default;

void Telemetry::Committed(size_t commands, double seconds) {
  f_->commit_batch.Observe(static_cast<double>(commands));
  f_->commit_seconds.Observe(seconds);
}
void Telemetry::CommitFailed() { f_->commit_errors.Increment(); }
void Telemetry::IntakeFrame(bool busy) {
  f_->intake_requests.Increment();
  if (busy) f_->intake_busy.Increment();
}
void Telemetry::Accepted(double s) { f_->accept_duration.Observe(s); }
void Telemetry::Handled(double s) { f_->handle_duration.Observe(s); }
void Telemetry::Escalated(v1::Stage stage, int level) {
  const char* name = stage == v1::ACCEPT ? "accept" : stage == v1::VERIFY ? "verify" : "handle";
  f_->escalations.Add({{"stage", name}, {"level", std::to_string(std::clamp(level, 1, 9))}}).Increment();
}

std::string Telemetry::Render(const Snapshot& s) {
  std::lock_guard lock(render_mu_);
  for (const auto& row : s.departments.rows()) {
    if (row.key().empty()) continue;  // not yet dispatched: no department to label
    const core::Counts counts = core::CountsFrom(row);
    for (core::Counter c : kExported)
      f_->department_cases.Add({{"department", row.key()}, {"counter", std::string(core::CounterName(c))}})
          .Set(static_cast<double>(counts[c]));
  }
  for (const auto& row : s.districts.rows()) {
    const core::Counts counts = core::CountsFrom(row);
    for (core::Counter c : kExported)
      f_->district_cases.Add({{"district", row.key()}, {"counter", std::string(core::CounterName(c))}})
          .Set(static_cast<double>(counts[c]));
  }
  const auto& st = s.status;
  for (int state = v1::REGISTERED; state <= v1::VERIFIED; ++state) {
    const uint64_t n = state < st.cases_by_state_size() ? st.cases_by_state(state) : 0;
    f_->open_cases.Add({{"stage", Lower(v1::CaseState_Name(static_cast<v1::CaseState>(state)))}})
        .Set(static_cast<double>(n));
  }
  f_->overdue_open.Set(static_cast<double>(s.departments.total().overdue_open()));
  f_->supervisions_open.Set(static_cast<double>(st.supervisions_open()));
  f_->dead_letters.Set(static_cast<double>(st.dead_letters()));
  for (const auto& lane : st.delivery()) {
    const prometheus::Labels dept{{"department", lane.department()}};
    f_->delivery_pending.Add(dept).Set(static_cast<double>(lane.pending()));
    f_->delivery_lag.Add(dept).Set(static_cast<double>(lane.lag_ms()) / 1000.0);
    f_->breaker_open.Add(dept).Set(lane.breaker() == "closed" || lane.breaker().empty() ? 0 : 1);
    auto& delivered = f_->deliveries.Add(dept);
    if (lane.delivered() > delivered.Value()) delivered.Increment(static_cast<double>(lane.delivered()) - delivered.Value());
    auto& dead = f_->dead_total.Add(dept);
    if (lane.dead() > dead.Value()) dead.Increment(static_cast<double>(lane.dead()) - dead.Value());
  }
  f_->queue_depth.Set(static_cast<double>(s.queue_depth));
  f_->store_healthy.Set(st.healthy() ? 1 : 0);
  f_->journal_seq.Set(static_cast<double>(st.journal_seq()));
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace casebus::query

// Read-only answers from the shard's state. Closure figures come from the maintained ledger;
// only a closure table as of another instant than now scans the cases.

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>

#include "engine/auth/policy.h"
#include "engine/base/time_format.h"
#include "engine/core/case_machine.h"

namespace casebus::core {
namespace {

}  // namespace

Ledger CaseMachine::Recount() const {
  Ledger fresh(*config_, calendar_);
  ScanFields([&fresh](uint64_t, const v1::Case& c) { fresh.Add(fresh.Of(&c)); });
  return fresh;
}

v1::QueryResult CaseMachine::AnswerMetrics(const v1::Metrics& q, Millis now) const {
  return core::AnswerMetrics(ledger_, *config_, unit_names_, q, calendar_.LocalDay(now), now);
}

v1::QueryResult CaseMachine::Answer(const v1::Query& q, Millis now) const {
  v1::QueryResult out;
  out.set_code(v1::OK);
  out.set_utc_offset_minutes(config_->calendar().utc_offset_minutes());
  // An authenticated caller: the one policy decides what it may read (engine/auth/policy.h).
  const v1::Caller* caller = q.has_caller() ? &q.caller() : nullptr;
  if (caller && auth::Authorize(*caller, auth::QueryAction(q), {}) == auth::Decision::kDeny) {
    out.set_code(v1::PERMISSION_DENIED);
    out.set_message(std::string(auth::RoleName(caller->role())) + " " + caller->name() + " may not " +
                    std::string(auth::ActionName(auth::QueryAction(q))));
    return out;
  }
  switch (q.body_case()) {
    case v1::Query::kShow: {
      std::optional<v1::Case> c = CaseWithHistory(q.show().case_id());
      if (c && caller) {
        const auth::Resource r{true, c->department()};
        if (auth::Authorize(*caller, auth::Action::kReadCase, r) != auth::Decision::kAllow) c.reset();
        else if (auth::RedactsReporter(*caller)) auth::RedactReporter(*c);
      }
      if (!c) {
        out.set_code(v1::NOT_FOUND);
        out.set_message("case " + std::to_string(q.show().case_id()) + " does not exist");
      } else {
        *out.mutable_found() = std::move(*c);
      }
      break;
    }
    case v1::Query::kList: {
      const auto& f = q.list();
      const uint32_t limit = f.limit() == 0 ? 100 : std::min<uint32_t>(f.limit(), 10000);
      std::vector<std::pair<Millis, uint64_t>> ids;  // (handle deadline, case), by_deadline's order
      const auth::Scope scope = caller ? auth::ScopeOf(*caller, auth::Action::kListCases) : auth::Scope{};
      auto in_scope = [&](const v1::Case& c) {
        if (!caller || scope.all_departments) return true;
        return std::find(scope.departments->begin(), scope.departments->end(), c.department()) !=
               scope.departments->end();
      };
      ScanFields([&](uint64_t id, const v1::Case& c) {
        if (id <= f.after_case_id()) return;
        if (!in_scope(c)) return;
        if (f.work_orders() && c.state() != v1::DISPATCHED && c.state() != v1::ACCEPTED) return;
        if (f.state() != v1::STATE_UNSPECIFIED && c.state() != f.state()) return;
        if (!f.department().empty() && c.department() != f.department()) return;
        if (!f.district().empty() && !c.place().grid().starts_with(f.district())) return;
        if (f.overdue() && !(Undisposed(c.state()) && c.handle_deadline_ms() > 0 &&
                             c.handle_deadline_ms() <= now))
          return;
        if (f.light() != v1::LIGHT_UNSPECIFIED && c.light() != f.light()) return;
        if (f.min_level() > 0 && c.escalation_level() < f.min_level()) return;
        if (!f.category().empty() && c.category() != f.category()) return;
        if (f.reported_from_ms() > 0 && c.reported_at_ms() < f.reported_from_ms()) return;
        if (f.reported_to_ms() > 0 && c.reported_at_ms() >= f.reported_to_ms()) return;
        if (c.state() == v1::MERGED && (f.open_only() || f.closed_only())) return;
        if (f.open_only() && !IsOpen(c.state())) return;
        if (f.closed_only() && IsOpen(c.state())) return;
        const Millis d = c.handle_deadline_ms();
        ids.emplace_back(d > 0 ? d : std::numeric_limits<Millis>::max(), id);
      });
      if (f.by_deadline()) {
        const size_t keep = std::min<size_t>(ids.size(), limit);
        std::partial_sort(ids.begin(), ids.begin() + keep, ids.end());
        ids.resize(keep);
      } else {
        // The scan went in id order.
        if (ids.size() > limit) ids.resize(limit);
      }
      for (const auto& [deadline, id] : ids) {
        v1::Case* c = out.add_cases();
        *c = *Find(id);  // lists carry no history
        if (scope.redact_reporter) auth::RedactReporter(*c);
      }
      break;
    }
    case v1::Query::kClosure: {
      const Millis as_of = q.closure().as_of_ms() > 0 ? q.closure().as_of_ms() : now;
      std::map<std::string, v1::ClosureRow> by_dept, by_district;
      for (const auto& d : config_->departments()) {
        by_dept[d.id()].set_key(d.id());
        by_dept[d.id()].set_name(d.name());
      }
      for (const auto& d : config_->districts()) {
        by_district[d.code()].set_key(d.code());
        by_district[d.code()].set_name(d.name());
      }
      // At now, with every due timer fired, the maintained ledger is the answer; for another
      // instant (or timers not yet fired) the cases are counted as of that instant.
      const bool current = as_of == now && (timers_.NextAt() == 0 || timers_.NextAt() > now);
      if (current) {
        for (const auto& [k, counts] : ledger_.Totals(Dim::kDepartment))
          if (!k.empty()) AddTo(by_dept[k], counts);
        for (const auto& [k, counts] : ledger_.Totals(Dim::kDistrict)) AddTo(by_district[k], counts);
      } else {
        ScanFields([&](uint64_t, const v1::Case& c) {
          if (c.state() == v1::MERGED || c.reported_at_ms() > as_of) return;
          if (!c.department().empty()) CountCase(by_dept[c.department()], c, as_of);
          CountCase(by_district[c.place().grid().substr(0, 6)], c, as_of);
        });
      }
      for (auto& [k, row] : by_dept) FinishRate(*out.add_by_department() = row, config_->metrics());
      for (auto& [k, row] : by_district) FinishRate(*out.add_by_district() = row, config_->metrics());
      break;
    }
    case v1::Query::kStatus: {
      auto* s = out.mutable_status();
      s->set_cases(cases_.size());
      uint64_t open = 0;
      for (int state = 0; state < static_cast<int>(by_state_.size()); ++state) {
        if (state <= v1::MERGED) s->add_cases_by_state(static_cast<uint64_t>(by_state_[state]));
        if (by_state_[state] > 0 && IsOpen(static_cast<v1::CaseState>(state))) open += by_state_[state];
      }
      s->set_open_cases(open);
      s->set_timers(timers_.size());
      s->set_next_timer_ms(timers_.NextAt());
      s->set_escalations(escalations_);
      s->set_supervisions_open(static_cast<uint64_t>(supervisions_open_));
      break;
    }
    case v1::Query::kMetrics:
      return AnswerMetrics(q.metrics(), now);
    default:
      out.set_code(v1::INVALID_ARGUMENT);
      out.set_message("the query has no body (show, list, closure, status, metrics)");
  }
  return out;
}

}  // namespace casebus::core

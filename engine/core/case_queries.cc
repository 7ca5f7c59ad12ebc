// Read-only answers from the shard's state. The closure table here is computed by a scan of
// the cases; the metrics issue replaces it with maintained ledger counters.

#include <algorithm>
#include <map>

#include "engine/core/case_machine.h"

namespace casebus::core {
namespace {

// Counters of `from` into `to`, keeping to's key and name.
void Merge(v1::ClosureRow& to, const v1::ClosureRow& from) {
  to.set_registered(from.registered());
  to.set_dispatched(from.dispatched());
  to.set_due(from.due());
  to.set_closed(from.closed());
  to.set_closed_on_time(from.closed_on_time());
  to.set_overdue_open(from.overdue_open());
  to.set_rework(from.rework());
  to.set_returned(from.returned());
}

void Finish(v1::ClosureRow& row) {
  if (row.due() > 0) {
    row.set_closure_rate(static_cast<double>(row.closed()) / static_cast<double>(row.due()));
    row.set_on_time_closure_rate(static_cast<double>(row.closed_on_time()) /
                                 static_cast<double>(row.due()));
  }
}

}  // namespace

v1::QueryResult CaseMachine::Answer(const v1::Query& q, Millis now) const {
  v1::QueryResult out;
  out.set_code(v1::OK);
  out.set_utc_offset_minutes(config_->calendar().utc_offset_minutes());
  switch (q.body_case()) {
    case v1::Query::kShow: {
      std::optional<v1::Case> c = CaseWithHistory(q.show().case_id());
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
      std::vector<uint64_t> ids;
      for (const auto& [id, s] : cases_) {
        const v1::Case& c = s.fields;
        if (id <= f.after_case_id()) continue;
        if (f.state() != v1::STATE_UNSPECIFIED && c.state() != f.state()) continue;
        if (!f.department().empty() && c.department() != f.department()) continue;
        if (!f.district().empty() && !c.place().grid().starts_with(f.district())) continue;
        if (f.overdue() && !(Undisposed(c.state()) && c.handle_deadline_ms() > 0 &&
                             c.handle_deadline_ms() <= now))
          continue;
        if (f.light() != v1::LIGHT_UNSPECIFIED && c.light() != f.light()) continue;
        if (f.min_level() > 0 && c.escalation_level() < f.min_level()) continue;
        ids.push_back(id);
      }
      std::sort(ids.begin(), ids.end());
      if (ids.size() > limit) ids.resize(limit);
      for (uint64_t id : ids) {
        *out.add_cases() = cases_.at(id).fields;  // lists carry no history
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
        for (const auto& [k, row] : ledger_.by_department()) Merge(by_dept[k], row);
        for (const auto& [k, row] : ledger_.by_district()) Merge(by_district[k], row);
      } else {
        for (const auto& [id, s] : cases_) {
          const v1::Case& c = s.fields;
          if (c.state() == v1::MERGED || c.reported_at_ms() > as_of) continue;
          if (!c.department().empty()) CountCase(by_dept[c.department()], c, as_of);
          CountCase(by_district[c.place().grid().substr(0, 6)], c, as_of);
        }
      }
      for (auto& [k, row] : by_dept) Finish(*out.add_by_department() = row);
      for (auto& [k, row] : by_district) Finish(*out.add_by_district() = row);
      break;
    }
    case v1::Query::kStatus: {
      auto* s = out.mutable_status();
      s->set_cases(cases_.size());
      s->set_open_cases(std::count_if(cases_.begin(), cases_.end(),
                                      [](const auto& kv) { return IsOpen(kv.second.fields.state()); }));
      s->set_timers(timers_.size());
      s->set_next_timer_ms(timers_.NextAt());
      s->set_escalations(escalations_);
      s->set_supervisions_open(static_cast<uint64_t>(supervisions_open_));
      break;
    }
    default:
      out.set_code(v1::INVALID_ARGUMENT);
      out.set_message("the query has no body (show, list, closure, status)");
  }
  return out;
}

}  // namespace casebus::core

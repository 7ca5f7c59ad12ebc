// Applying events: the fold from a case's history to its fields. Deterministic and
// config-independent (every decision the config influenced is recorded in the event), so the
// journal replays to the same state under any later config.

#include "engine/core/case_machine.h"

namespace casebus::core {

void CaseMachine::Apply(const v1::CaseEvent& e, std::string_view history, v1::Case* take) {
  if (e.type() == v1::EV_REPORTED) {
    Stored& s = cases_[e.case_id()];
    if (!s.parsed) {
      if (!s.packed.empty()) {  // (a case id is reported once; this only keeps the count right)
        s.packed = {};
        if (--unparsed_ == 0) backing_.reset();
      }
      s.parsed = std::make_unique<v1::Case>();
    }
    if (take) s.parsed->Swap(take);  // e.reported() itself (the caller's to give)
    else *s.parsed = e.reported();
    next_case_id_ = std::max(next_case_id_, e.case_id() + 1);
    // A bulk replay indexes the case at its end (EndBulkReplay).
    if (!bulk_) deduper_.Add(*s.parsed, e.at_ms(), [this](uint64_t id) { return Find(id); });
    AppendHistory(s, e, history);
    return;
  }
  Stored* stored = cases_.find(e.case_id());
  if (!stored) return;  // cannot happen for events this machine decided
  v1::Case& c = MutableFields(*stored);
  if (e.has_accept_clock() || e.has_handle_clock() || e.has_verify_clock()) {
    // The clock rules were applied when the event was decided (case_clocks.cc).
    *c.mutable_accept_clock() = e.accept_clock();
    *c.mutable_handle_clock() = e.handle_clock();
    *c.mutable_verify_clock() = e.verify_clock();
    c.set_accept_deadline_ms(e.accept_deadline_ms());
    c.set_handle_deadline_ms(e.handle_deadline_ms());
    c.set_verify_deadline_ms(e.verify_deadline_ms());
    const bool new_round = e.handle_clock().running() && e.handle_clock().started_ms() == e.at_ms() &&
                           e.type() != v1::EV_RESUMED;
    if (new_round) {
      c.set_light(v1::GREEN);
      c.set_escalation_level(0);
      c.set_overdue_at_ms(0);
    } else if (!e.handle_clock().running() && !e.accept_clock().running()) {
      c.set_light(v1::LIGHT_UNSPECIFIED);  // handling is over (resolved, closed, voided, ...)
    }
  }
  switch (e.type()) {
    case v1::EV_REGISTERED:
      c.set_state(v1::REGISTERED);
      c.set_registered_at_ms(e.at_ms());
      if (!e.condition().empty()) c.set_condition(e.condition());
      break;
    case v1::EV_REJECTED:
      c.set_state(v1::REJECTED);
      break;
    case v1::EV_DISPATCHED:
      c.set_state(v1::DISPATCHED);
      c.set_department(e.route().department());
      *c.mutable_route() = e.route();
      if (c.dispatched_at_ms() == 0) c.set_dispatched_at_ms(e.at_ms());
      c.set_dispatch_count(c.dispatch_count() + 1);
      c.set_work_order_id(e.work_order_id());
      c.set_accepted_at_ms(0);
      break;
    case v1::EV_ACCEPTED:
      c.set_state(v1::ACCEPTED);
      c.set_accepted_at_ms(e.at_ms());
      if (e.light() != v1::LIGHT_UNSPECIFIED) {  // set by the clock rules (case_clocks.cc)
        c.set_light(e.light());
        c.set_escalation_level(e.level());
      }
      break;
    case v1::EV_RETURNED:
      c.set_state(v1::RETURNED);
      c.set_return_count(c.return_count() + 1);
      c.set_pending_extension_hours(0);
      break;
    case v1::EV_EXTENSION_REQUESTED:
      c.set_pending_extension_hours(e.extension_hours());
      break;
    case v1::EV_EXTENSION_APPROVED:
      c.set_pending_extension_hours(0);
      c.set_extension_count(c.extension_count() + 1);
      c.set_extension_hours(c.extension_hours() + e.extension_hours());
      // An extension that moves the deadline past now takes the case out of overdue; the
      // deadline timer is scheduled again for the new deadline.
      if (c.overdue_at_ms() > 0 && c.handle_deadline_ms() > e.at_ms()) c.set_overdue_at_ms(0);
      break;
    case v1::EV_EXTENSION_DENIED:
      c.set_pending_extension_hours(0);
      break;
    case v1::EV_SUSPENDED:
      c.set_state_before_suspend(c.state());
      c.set_state(v1::SUSPENDED);
      c.set_suspended_at_ms(e.at_ms());
      break;
    case v1::EV_RESUMED:
      c.set_state(c.state_before_suspend());
      c.set_state_before_suspend(v1::STATE_UNSPECIFIED);
      c.set_suspended_at_ms(0);
      c.set_suspended_total_ms(c.suspended_total_ms() + e.accept_deadline_shift_ms());
      break;
    case v1::EV_RESOLVED:
      c.set_pending_extension_hours(0);
      c.set_state(v1::RESOLVED);
      c.set_resolved_at_ms(e.at_ms());
      break;
    case v1::EV_VERIFIED:
      c.set_state(v1::VERIFIED);
      break;
    case v1::EV_REWORK:
    case v1::EV_REOPENED:
      // Back to the same unit with a new work order (返工 / 回头看).
      c.set_state(v1::DISPATCHED);
      if (e.type() == v1::EV_REWORK) c.set_rework_count(c.rework_count() + 1);
      if (e.type() == v1::EV_REOPENED) {
        c.set_reopen_count(c.reopen_count() + 1);
        c.set_closed_at_ms(0);
        c.set_closed_on_time(false);
      }
      c.set_dispatch_count(c.dispatch_count() + 1);
      c.set_work_order_id(e.work_order_id());
      c.set_accepted_at_ms(0);
      c.set_resolved_at_ms(0);
      break;
    case v1::EV_CLOSED:
      c.set_pending_extension_hours(0);
      c.set_state(v1::CLOSED);
      c.set_closed_at_ms(e.at_ms());
      c.set_closed_on_time(c.resolved_at_ms() > 0 && c.resolved_at_ms() <= c.handle_deadline_ms());
      break;
    case v1::EV_MERGED_INTO:
      c.set_pending_extension_hours(0);
      c.set_state(v1::MERGED);
      c.set_merged_into(e.other_case());
      break;
    case v1::EV_ABSORBED:
      c.set_report_count(c.report_count() + std::max(1, e.report_count()));
      if (e.has_reporter()) *c.add_reporters() = e.reporter();
      break;
    case v1::EV_VOIDED:
      c.set_pending_extension_hours(0);
      c.set_state(v1::VOIDED);
      break;
    case v1::EV_ESCALATED: {
      v1::StageClock* k = e.stage() == v1::ACCEPT   ? c.mutable_accept_clock()
                          : e.stage() == v1::HANDLE ? c.mutable_handle_clock()
                                                    : c.mutable_verify_clock();
      k->set_steps_fired(e.step_index() + 1);
      c.set_light(e.light());
      c.set_escalation_level(e.level());
      c.set_escalation_count(c.escalation_count() + 1);
      if (e.supervision()) {
        c.set_supervision_open(true);
        c.set_supervision_count(c.supervision_count() + 1);
      }
      break;
    }
    case v1::EV_OVERDUE:
      c.set_overdue_at_ms(e.due_at_ms());
      break;
    case v1::EV_SUPERVISION_REPLIED:
      c.set_supervision_open(false);
      break;
    default:
      break;
  }
  AppendHistory(*stored, e, history);
}

v1::WorkOrder CaseMachine::MakeWorkOrder(const v1::Case& c, Millis issued_at,
                                         std::string reason) const {
  v1::WorkOrder w;
  w.set_id(c.work_order_id());
  w.set_case_id(c.id());
  w.set_department(c.department());
  w.set_issued_at_ms(issued_at);
  w.set_accept_deadline_ms(c.accept_deadline_ms());
  w.set_handle_deadline_ms(c.handle_deadline_ms());
  w.set_category(c.category());
  if (auto it = categories_.find(c.category()); it != categories_.end())
    w.set_category_name(it->second->name());
  *w.mutable_place() = c.place();
  w.set_description(c.description());
  w.set_urgency(c.urgency());
  w.set_reason(std::move(reason));
  *w.mutable_route() = c.route();
  w.set_rework_count(c.rework_count());
  w.set_utc_offset_minutes(calendar_.utc_offset_minutes_at(issued_at));
  return w;
}

}  // namespace casebus::core

// The time side of the CaseMachine: which stage clocks each event starts, stops, pauses or
// extends (DOMAIN.md §3), the timer queue that follows them, and the escalation ladder that
// fires from it.

#include <algorithm>
#include <cmath>

#include "engine/core/case_machine.h"
#include "engine/core/stage_clock.h"

namespace casebus::core {
namespace {

bool HasClocks(const v1::CaseEvent& e) {
  return e.has_accept_clock() || e.has_handle_clock() || e.has_verify_clock();
}

std::string StageName(v1::Stage s) {
  switch (s) {
    case v1::ACCEPT: return "accept";
    case v1::HANDLE: return "handle";
    case v1::VERIFY: return "verify";
    default: return "none";
  }
}

}  // namespace

void CaseMachine::AttachClocks(Events& events, Millis now) const {
  for (auto& e : events) {
    const v1::Case* c = Find(e.case_id());
    if (!c) continue;  // a new report: no clock runs before dispatch
    v1::StageClock a = c->accept_clock(), h = c->handle_clock(), v = c->verify_clock();
    v1::StageLimits scratch;
    const v1::StageLimits& limits = LimitsFor(*c, scratch);
    switch (e.type()) {
      case v1::EV_DISPATCHED:
        a = StartClock(v1::ACCEPT, now, limits.accept(), calendar_);
        // 捆绑计时: after a return the handling clock keeps running from the first dispatch.
        if (!h.running()) h = StartClock(v1::HANDLE, now, limits.handle(), calendar_);
        break;
      case v1::EV_ACCEPTED: {
        StopClock(a, now, calendar_);
        // From acceptance the light and level are the handling stage's alone.
        const auto& steps = ladder_.Steps(v1::HANDLE);
        v1::TrafficLight light = v1::GREEN;
        for (int i = 0; i < h.steps_fired() && i < static_cast<int>(steps.size()); ++i)
          light = std::max(light, steps[i].light());
        e.set_light(light);
        e.set_level(h.steps_fired());
        break;
      }
      case v1::EV_RETURNED:
        StopClock(a, now, calendar_);
        break;
      case v1::EV_EXTENSION_APPROVED:
        ExtendClock(h, e.extension_hours());
        break;
      case v1::EV_SUSPENDED:
        PauseClock(a, now, calendar_);
        PauseClock(h, now, calendar_);
        break;
      case v1::EV_RESUMED:
        ResumeClock(a, now);
        ResumeClock(h, now);
        break;
      case v1::EV_RESOLVED:
        StopClock(a, now, calendar_);
        StopClock(h, now, calendar_);
        v = StartClock(v1::VERIFY, now, limits.verify(), calendar_);
        break;
      case v1::EV_VERIFIED:
        StopClock(v, now, calendar_);
        break;
      case v1::EV_REWORK:
      case v1::EV_REOPENED:
        StopClock(v, now, calendar_);
        a = StartClock(v1::ACCEPT, now, limits.accept(), calendar_);
        h = StartClock(v1::HANDLE, now,
                       e.type() == v1::EV_REWORK && limits.has_rework() ? limits.rework()
                                                                         : limits.handle(),
                       calendar_);
        break;
      case v1::EV_CLOSED:
      case v1::EV_VOIDED:
      case v1::EV_MERGED_INTO:
      case v1::EV_REJECTED:
        StopClock(a, now, calendar_);
        StopClock(h, now, calendar_);
        StopClock(v, now, calendar_);
        break;
      default:
        continue;
    }
    // Deadlines for people: a ticking clock's deadline, 0 while paused, the last one kept
    // once a stage has ended (so "resolved by the deadline" can still be judged).
    auto deadline = [&](const v1::StageClock& k, Millis old) {
      if (Ticking(k)) return DeadlineOf(k, calendar_);
      return k.running() ? Millis{0} : old;
    };
    e.set_accept_deadline_ms(deadline(a, c->accept_deadline_ms()));
    e.set_handle_deadline_ms(deadline(h, c->handle_deadline_ms()));
    e.set_verify_deadline_ms(deadline(v, c->verify_deadline_ms()));
    *e.mutable_accept_clock() = std::move(a);
    *e.mutable_handle_clock() = std::move(h);
    *e.mutable_verify_clock() = std::move(v);
  }
}

std::array<std::optional<TimerKey>, 4> CaseMachine::NextKeys(const v1::Case& c) const {
  std::array<std::optional<TimerKey>, 4> keys;
  // The handling deadline is a timer of its own, whatever the ladder: when it passes while
  // the case is open, the case becomes due and overdue-open (EV_OVERDUE).
  if (Ticking(c.handle_clock()) && c.overdue_at_ms() == 0)
    keys[3] = TimerKey{DeadlineOf(c.handle_clock(), calendar_), c.id(), v1::HANDLE_DEADLINE};
  const v1::StageClock* clocks[3] = {&c.accept_clock(), &c.handle_clock(), &c.verify_clock()};
  for (int i = 0; i < 3; ++i) {
    const v1::StageClock& k = *clocks[i];
    if (!Ticking(k)) continue;
    const auto& steps = ladder_.Steps(k.stage());
    if (k.steps_fired() >= static_cast<int>(steps.size())) continue;
    const Millis position =
        std::llround(steps[k.steps_fired()].fraction() * static_cast<double>(k.limit_ms()));
    keys[i] = TimerKey{InstantAt(k, position, calendar_), c.id(), k.stage()};
  }
  return keys;
}

void CaseMachine::ApplyScheduled(const v1::CaseEvent& e) {
  Stored* prior_stored = cases_.find(e.case_id());
  const v1::Case* prior = prior_stored ? &Fields(*prior_stored) : nullptr;
  const Ledger::Contribution counted = ledger_.Of(prior, prior_stored ? &prior_stored->ledger_keys : nullptr);
  const bool supervision_before = prior && prior->supervision_open();
  const int state_before = prior ? static_cast<int>(prior->state()) : -1;
  struct StateCount {  // moves the case between the per-state counts once it is applied
    CaseMachine& m;
    int before;
    uint64_t id;
    ~StateCount() {
      const v1::Case* c = m.Find(id);
      const int after = c ? static_cast<int>(c->state()) : -1;
      if (after == before) return;
      if (before >= 0) --m.by_state_[before];
      if (after >= 0) ++m.by_state_[after];
      // The duplicate index holds open cases: out when a case leaves the loop, in again when
      // it is reopened (a new report was added by Apply).
      if (before >= 0 && c) {
        const bool was_open = IsOpen(static_cast<v1::CaseState>(before)), is_open = IsOpen(c->state());
        if (was_open && !is_open) m.deduper_.Remove(*c);
        CaseMachine* machine = &m;
        if (!was_open && is_open)
          m.deduper_.Add(*c, c->reported_at_ms(), [machine](uint64_t id) { return machine->Find(id); });
      }
    }
  } state_count{*this, state_before, e.case_id()};
  if (e.type() == v1::EV_ESCALATED) ++escalations_;
  if (!HasClocks(e) && e.type() != v1::EV_ESCALATED && e.type() != v1::EV_OVERDUE) {
    Apply(e);  // clocks unchanged, so are the case's timers
    Stored& now_stored = cases_.at(e.case_id());
    const v1::Case* now_case = &Fields(now_stored);
    const Ledger::Contribution after = ledger_.Of(now_case, &counted.keys);
    now_stored.ledger_keys = after.keys;
    ledger_.Move(counted, after);
    supervisions_open_ += (now_case->supervision_open() ? 1 : 0) - (supervision_before ? 1 : 0);
    return;
  }
  std::array<std::optional<TimerKey>, 4> before;
  if (const v1::Case* c = Find(e.case_id())) before = NextKeys(*c);
  Apply(e);
  Stored& updated_stored = cases_.at(e.case_id());
  const v1::Case& updated = Fields(updated_stored);
  const auto after = NextKeys(updated);
  const Ledger::Contribution contribution = ledger_.Of(&updated, &counted.keys);
  updated_stored.ledger_keys = contribution.keys;
  ledger_.Move(counted, contribution);
  supervisions_open_ += (updated.supervision_open() ? 1 : 0) - (supervision_before ? 1 : 0);
  for (int i = 0; i < 4; ++i) {
    if (before[i] == after[i]) continue;
    if (before[i] && timers_.Remove(*before[i]) && !replaying_)
      timer_changes_.emplace_back(*before[i], false);
    if (after[i]) {
      timers_.Add(*after[i]);
      if (!replaying_) timer_changes_.emplace_back(*after[i], true);
    }
  }
}

std::vector<Effects> CaseMachine::FireDue(Millis now) {
  std::vector<Effects> out;
  while (timers_.Due(now)) {
    const TimerKey key = timers_.PopFirst();
    timer_changes_.emplace_back(key, false);
    const v1::Case* c = Find(key.case_id);
    if (!c) continue;
    if (key.stage == v1::HANDLE_DEADLINE) {
      if (!Ticking(c->handle_clock()) || c->overdue_at_ms() != 0) continue;
      v1::CaseEvent e;
      e.set_type(v1::EV_OVERDUE);
      e.set_case_id(c->id());
      e.set_at_ms(now);
      e.set_actor("clock");
      e.set_stage(v1::HANDLE);
      e.set_due_at_ms(key.at);
      ApplyScheduled(e);
      Effects fx;
      fx.result.set_code(v1::OK);
      fx.result.set_case_id(e.case_id());
      fx.record.set_at_ms(now);
      fx.record.set_result_case_id(e.case_id());
      *fx.record.add_events() = std::move(e);
      out.push_back(std::move(fx));
      continue;
    }
    const v1::StageClock& k = key.stage == v1::ACCEPT   ? c->accept_clock()
                              : key.stage == v1::HANDLE ? c->handle_clock()
                                                        : c->verify_clock();
    const auto& steps = ladder_.Steps(key.stage);
    if (!Ticking(k) || k.steps_fired() >= static_cast<int>(steps.size())) continue;
    const int index = k.steps_fired();
    const v1::EscalationStep& step = steps[index];
    v1::CaseEvent e;
    e.set_type(v1::EV_ESCALATED);
    e.set_case_id(c->id());
    e.set_at_ms(now);
    e.set_actor("clock");
    e.set_stage(key.stage);
    e.set_step_id(step.id());
    e.set_step_index(index);
    e.set_due_at_ms(key.at);
    e.set_notify(ladder_.Target(step, *c));
    e.set_level(std::max(c->escalation_level(), index + 1));
    e.set_supervision(step.supervision());
    e.set_light(key.stage != v1::VERIFY && step.light() > c->light() ? step.light() : c->light());
    Effects fx;
    fx.result.set_code(v1::OK);
    fx.result.set_case_id(c->id());
    if (!e.notify().empty()) fx.notices.push_back(MakeNotice(*c, e));
    ApplyScheduled(e);  // schedules the stage's next step, which may be due too
    fx.record.set_at_ms(now);
    fx.record.set_result_case_id(e.case_id());
    *fx.record.add_events() = std::move(e);
    out.push_back(std::move(fx));
  }
  return out;
}

v1::Notice CaseMachine::MakeNotice(const v1::Case& c, const v1::CaseEvent& e) const {
  v1::Notice n;
  n.set_id("n" + std::to_string(c.id()) + "-" + StageName(e.stage()) + "-" + e.step_id() + "-" +
           std::to_string(c.dispatch_count()));
  n.set_case_id(c.id());
  n.set_department(e.notify());
  n.set_responsible(c.department());
  n.set_stage(e.stage());
  n.set_step_id(e.step_id());
  n.set_due_at_ms(e.due_at_ms());
  n.set_deadline_ms(e.stage() == v1::ACCEPT   ? c.accept_deadline_ms()
                    : e.stage() == v1::HANDLE ? c.handle_deadline_ms()
                                              : c.verify_deadline_ms());
  n.set_light(e.light());
  n.set_supervision(e.supervision());
  n.set_work_order_id(c.work_order_id());
  n.set_category(c.category());
  *n.mutable_place() = c.place();
  return n;
}

}  // namespace casebus::core

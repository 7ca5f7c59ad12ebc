#include "engine/core/stage_clock.h"

#include <cmath>

namespace casebus::core {

v1::StageClock StartClock(v1::Stage stage, Millis start, const v1::TimeLimit& limit,
                          const WorkingCalendar& calendar) {
  v1::StageClock c;
  c.set_stage(stage);
  c.set_started_ms(start);
  c.set_anchor_ms(start);
  c.set_running(true);
  const double v = limit.value() > 0 ? limit.value() : 1.0;
  switch (limit.clock()) {
    case v1::WORKING_HOURS:
      c.set_working(true);
      c.set_limit_ms(std::llround(v * kHour));
      break;
    case v1::WORKING_DAYS:
      c.set_working(true);
      c.set_limit_ms(calendar.WorkingBetween(start, calendar.Add(start, limit)));
      break;
    case v1::CALENDAR_DAYS:
      c.set_limit_ms(std::llround(v * kDay));
      break;
    default:  // URGENT_HOURS
      c.set_limit_ms(std::llround(v * kHour));
      break;
  }
  return c;
}

bool Ticking(const v1::StageClock& c) { return c.running() && c.anchor_ms() > 0; }

Millis PositionAt(const v1::StageClock& c, Millis t, const WorkingCalendar& cal) {
  if (!Ticking(c) || t <= c.anchor_ms()) return c.consumed_ms();
  return c.consumed_ms() + (c.working() ? cal.WorkingBetween(c.anchor_ms(), t) : t - c.anchor_ms());
}

Millis InstantAt(const v1::StageClock& c, Millis position, const WorkingCalendar& cal) {
  const Millis left = position - c.consumed_ms();
  if (left <= 0) return c.anchor_ms();
  return c.working() ? cal.AddWorking(c.anchor_ms(), left) : c.anchor_ms() + left;
}

Millis DeadlineOf(const v1::StageClock& c, const WorkingCalendar& cal) {
  if (!Ticking(c)) return 0;
  return InstantAt(c, c.limit_ms(), cal);
}

void PauseClock(v1::StageClock& c, Millis now, const WorkingCalendar& cal) {
  if (!Ticking(c)) return;
  c.set_consumed_ms(PositionAt(c, now, cal));
  c.set_anchor_ms(0);
}

void ResumeClock(v1::StageClock& c, Millis now) {
  if (c.running() && c.anchor_ms() == 0) c.set_anchor_ms(now);
}

void StopClock(v1::StageClock& c, Millis now, const WorkingCalendar& cal) {
  if (!c.running()) return;
  PauseClock(c, now, cal);
  c.set_running(false);
}

void ExtendClock(v1::StageClock& c, int hours) {
  c.set_limit_ms(c.limit_ms() + static_cast<Millis>(hours) * kHour);
}

}  // namespace casebus::core

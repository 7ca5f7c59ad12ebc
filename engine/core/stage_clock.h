#pragma once
// Stage clocks: the arithmetic of one stage's time limit (accept, handle, verify) in its own
// measure — wall time for urgent hours and calendar days, working time for working hours and
// days (DOMAIN.md §3). Pure functions over v1::StageClock; the calendar does the conversion.
//
// A clock's position grows with its measure while it runs; suspension banks the position and
// resume continues from it, so a pause costs the department nothing. An extension lengthens
// limit_ms, which moves the deadline and every ladder step not yet fired.

#include "casebus/v1/case.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/base/clock.h"
#include "engine/core/working_calendar.h"

namespace casebus::core {

// A running clock for `limit` from `start`. A working-days limit becomes the working time
// from start to its deadline (WorkingCalendar::Add's convention).
// REQUIRES: limit.value() > 0.
v1::StageClock StartClock(v1::Stage stage, Millis start, const v1::TimeLimit& limit,
                          const WorkingCalendar& calendar);

// Position (in the clock's measure) at `t`.
Millis PositionAt(const v1::StageClock& clock, Millis t, const WorkingCalendar& calendar);
// The instant the clock reaches `position`. REQUIRES: running and not paused.
Millis InstantAt(const v1::StageClock& clock, Millis position, const WorkingCalendar& calendar);
// The deadline instant; 0 when the clock is paused or stopped.
Millis DeadlineOf(const v1::StageClock& clock, const WorkingCalendar& calendar);

void PauseClock(v1::StageClock& clock, Millis now, const WorkingCalendar& calendar);
void ResumeClock(v1::StageClock& clock, Millis now);
void StopClock(v1::StageClock& clock, Millis now, const WorkingCalendar& calendar);
// Adds `hours` in the clock's own measure (working hours on a working clock).
void ExtendClock(v1::StageClock& clock, int hours);

bool Ticking(const v1::StageClock& clock);  // running and not paused

}  // namespace casebus::core

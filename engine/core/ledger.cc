#include "engine/core/ledger.h"

namespace casebus::core {
namespace {

enum Flag : uint32_t {
  kRegistered = 1 << 0,
  kDispatched = 1 << 1,
  kDue = 1 << 2,
  kClosed = 1 << 3,
  kClosedOnTime = 1 << 4,
  kOverdueOpen = 1 << 5,
  kRework = 1 << 6,
  kReturned = 1 << 7,
};

void Bump(v1::ClosureRow& row, uint32_t flags, int sign) {
  if (flags & kRegistered) row.set_registered(row.registered() + sign);
  if (flags & kDispatched) row.set_dispatched(row.dispatched() + sign);
  if (flags & kDue) row.set_due(row.due() + sign);
  if (flags & kClosed) row.set_closed(row.closed() + sign);
  if (flags & kClosedOnTime) row.set_closed_on_time(row.closed_on_time() + sign);
  if (flags & kOverdueOpen) row.set_overdue_open(row.overdue_open() + sign);
  if (flags & kRework) row.set_rework(row.rework() + sign);
  if (flags & kReturned) row.set_returned(row.returned() + sign);
}

uint32_t Flags(const v1::Case& c, bool overdue_open) {
  uint32_t f = 0;
  if (c.registered_at_ms() > 0) f |= kRegistered;
  if (c.dispatched_at_ms() > 0) f |= kDispatched;
  if (overdue_open) f |= kOverdueOpen;
  // 应结案 = disposed + still undisposed past the deadline (DOMAIN.md §4).
  if (Disposed(c.state()) || overdue_open) f |= kDue;
  if (c.state() == v1::CLOSED) f |= kClosed | (c.closed_on_time() ? uint32_t{kClosedOnTime} : 0u);
  if (c.rework_count() > 0) f |= kRework;
  if (c.return_count() > 0) f |= kReturned;
  return f;
}

}  // namespace

bool Undisposed(v1::CaseState s) {
  return s == v1::DISPATCHED || s == v1::ACCEPTED || s == v1::RETURNED;
}
bool Disposed(v1::CaseState s) {
  return s == v1::RESOLVED || s == v1::VERIFIED || s == v1::CLOSED;
}

void CountCase(v1::ClosureRow& row, const v1::Case& c, int64_t as_of) {
  const bool overdue_open =
      Undisposed(c.state()) && c.handle_deadline_ms() > 0 && c.handle_deadline_ms() <= as_of;
  Bump(row, Flags(c, overdue_open), 1);
}

Ledger::Contribution Ledger::Of(const v1::Case* cp) {
  Contribution k;
  if (!cp || cp->state() == v1::MERGED) return k;
  const v1::Case& c = *cp;
  k.counted = true;
  k.department = c.department();
  k.district = c.place().grid().substr(0, 6);
  // The deadline timer sets overdue_at_ms at the instant the deadline passes.
  k.flags = Flags(c, Undisposed(c.state()) && c.overdue_at_ms() > 0);
  return k;
}

void Ledger::Add(const Contribution& k, int sign) {
  if (!k.counted) return;
  if (!k.department.empty()) Bump(by_department_[k.department], k.flags, sign);
  Bump(by_district_[k.district], k.flags, sign);
}

void Ledger::Move(const Contribution& before, const Contribution& after) {
  if (before == after) return;
  Add(before, -1);
  Add(after, +1);
}

}  // namespace casebus::core

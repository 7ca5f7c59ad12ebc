#include "engine/auth/policy.h"

#include <algorithm>
#include <array>
#include <bitset>

namespace casebus::auth {
namespace {

using A = Action;
using Actions = std::bitset<kActionCount>;

constexpr size_t Bit(Action a) { return static_cast<size_t>(a); }

Actions Of(std::initializer_list<Action> actions) {
  Actions s;
  for (Action a : actions) s.set(Bit(a));
  return s;
}

// Role → what it may do. Anything not listed is denied.
const Actions& Allowed(v1::Role role) {
  static const Actions kNone;
  static const Actions kOperator =
      Of({A::kReport, A::kRegister, A::kReject, A::kDispatch, A::kMerge, A::kNote, A::kReadCase,
          A::kListCases, A::kReadMetrics});
  static const Actions kDispatcher =
      Of({A::kReport, A::kRegister, A::kReject, A::kDispatch, A::kApproveExtension,
          A::kDenyExtension, A::kSuspend, A::kResume, A::kVerify, A::kClose, A::kReopen,
          A::kMerge, A::kVoid, A::kNote, A::kReadCase, A::kListCases, A::kReadMetrics,
          A::kReadStatus});
  static const Actions kDepartment =
      Of({A::kAccept, A::kReturn, A::kRequestExtension, A::kResolve, A::kNote,
          A::kSupervisionReply, A::kReadCase, A::kListCases, A::kReadMetrics});
  static const Actions kLeader = Of({A::kReadCase, A::kListCases, A::kReadMetrics, A::kReadStatus});
  static const Actions kAdmin = Of({A::kReadStatus, A::kDeadLetters, A::kReloadConfig, A::kReadMetrics});
  static const Actions kReporter = Of({A::kReport});
  switch (role) {
    case v1::OPERATOR: return kOperator;
    case v1::DISPATCHER: return kDispatcher;
    case v1::DEPARTMENT: return kDepartment;
    case v1::LEADER: return kLeader;
    case v1::ADMIN: return kAdmin;
    case v1::REPORTER: return kReporter;
    default: return kNone;
  }
}

bool HasDepartment(const v1::Caller& caller, std::string_view department) {
  if (department.empty()) return false;
  return std::any_of(caller.departments().begin(), caller.departments().end(),
                     [&](const std::string& d) { return d == department; });
}

}  // namespace

Decision Authorize(const v1::Caller& caller, Action action, const Resource& resource) {
  // A department's world is the cases now with it; every other case does not exist for it,
  // whatever it asks to do with it (so a 403 cannot tell it a foreign id exists).
  if (caller.role() == v1::DEPARTMENT && resource.has_case && !HasDepartment(caller, resource.department))
    return Decision::kNotFound;
  if (!Allowed(caller.role()).test(Bit(action))) return Decision::kDeny;
  return Decision::kAllow;
}

Scope ScopeOf(const v1::Caller& caller, Action list_action) {
  Scope s;
  s.allowed = Allowed(caller.role()).test(Bit(list_action));
  if (!s.allowed) return s;
  if (caller.role() == v1::DEPARTMENT) {
    s.departments = &caller.departments();
  } else {
    s.all_departments = true;
  }
  s.redact_reporter = RedactsReporter(caller);
  return s;
}

v1::Caller DepartmentCaller(const std::string& department) {
  v1::Caller c;
  c.set_name(department);
  c.set_role(v1::DEPARTMENT);
  c.add_departments(department);
  return c;
}

bool RedactsReporter(const v1::Caller& caller) { return caller.role() == v1::LEADER; }

Action ActionOf(const v1::Command& c) {
  using C = v1::Command;
  switch (c.body_case()) {
    case C::kReport: return A::kReport;
    case C::kRegister: return A::kRegister;
    case C::kReject: return A::kReject;
    case C::kDispatch: return A::kDispatch;
    case C::kAccept: return A::kAccept;
    case C::kReturn: return A::kReturn;
    case C::kRequestExtension: return A::kRequestExtension;
    case C::kApproveExtension: return A::kApproveExtension;
    case C::kDenyExtension: return A::kDenyExtension;
    case C::kSuspend: return A::kSuspend;
    case C::kResume: return A::kResume;
    case C::kResolve: return A::kResolve;
    case C::kVerify: return A::kVerify;
    case C::kClose: return A::kClose;
    case C::kReopen: return A::kReopen;
    case C::kMerge: return A::kMerge;
    case C::kVoid: return A::kVoid;
    case C::kNote: return A::kNote;
    case C::kSupervisionReply: return A::kSupervisionReply;
    case C::BODY_NOT_SET: break;
  }
  return A::kReport;  // CheckCommand refuses a command without a body before this matters
}

Action QueryAction(const v1::Query& q) {
  switch (q.body_case()) {
    case v1::Query::kShow: return A::kReadCase;
    case v1::Query::kList: return A::kListCases;
    case v1::Query::kClosure:
    case v1::Query::kMetrics: return A::kReadMetrics;
    case v1::Query::kStatus: return A::kReadStatus;
    case v1::Query::kDeadLetters: return A::kDeadLetters;
    case v1::Query::BODY_NOT_SET: break;
  }
  return A::kReadStatus;
}

void RedactReporter(v1::Case& c) {
  auto clear = [](v1::Reporter* r) {
    r->clear_name();
    r->clear_contact();
  };
  for (auto& r : *c.mutable_reporters()) clear(&r);
  for (auto& e : *c.mutable_history())
    if (e.has_reporter()) clear(e.mutable_reporter());
}

std::string_view ActionName(Action a) {
  static constexpr std::array<std::string_view, kActionCount> kNames = {
      "report", "register", "reject", "dispatch", "accept", "return", "request_extension",
      "approve_extension", "deny_extension", "suspend", "resume", "resolve", "verify", "close",
      "reopen", "merge", "void", "note", "supervision_reply", "read a case", "list cases",
      "read metrics", "read status", "handle dead letters", "reload the config"};
  return kNames[Bit(a)];
}

std::string_view RoleName(v1::Role role) {
  switch (role) {
    case v1::OPERATOR: return "operator";
    case v1::DISPATCHER: return "dispatcher";
    case v1::DEPARTMENT: return "department";
    case v1::LEADER: return "leader";
    case v1::ADMIN: return "admin";
    case v1::REPORTER: return "reporter";
    default: return "unspecified";
  }
}

}  // namespace casebus::auth

#pragma once
// The one authorization policy: Authorize(caller, action, resource) decides every request the
// HTTP API, Open311 and the ZeroMQ intake pass on, and the core calls it where the command or
// query meets the case it acts on, so the decision sees the case as it stands when applied.
//
// Deny by default: a role may do only the actions listed for it in policy.cc. A department
// sees only cases currently with one of its departments; any other case is "not found" (never
// "forbidden"), so ids cannot be probed. Lists are filtered, not post-checked (ScopeOf).
// Thread safety: pure functions.

#include <string>
#include <string_view>

#include "casebus/v1/access.pb.h"
#include "casebus/v1/command.pb.h"

namespace casebus::auth {

enum class Action {
  kReport, kRegister, kReject, kDispatch, kAccept, kReturn, kRequestExtension,
  kApproveExtension, kDenyExtension, kSuspend, kResume, kResolve, kVerify, kClose, kReopen,
  kMerge, kVoid, kNote, kSupervisionReply,
  kReadCase,        // one case (and its history)
  kListCases,       // lists of cases, work-order inboxes
  kReadMetrics,     // closure figures, reports, the dashboard
  kReadStatus,      // engine status, delivery lanes
  kDeadLetters,     // list, retry, drop
  kReloadConfig,
};
inline constexpr int kActionCount = static_cast<int>(Action::kReloadConfig) + 1;

// What an action is applied to. department: the case's current responsible department
// ("" when it has none); for actions on no particular case (report, lists, metrics) leave
// has_case false.
struct Resource {
  bool has_case = false;
  std::string_view department;
};

enum class Decision {
  kAllow,
  kDeny,      // the role may not do this at all: 403 / PERMISSION_DENIED
  kNotFound,  // the object is outside the caller's scope: answered as if it did not exist
};

Decision Authorize(const v1::Caller& caller, Action action, const Resource& resource);

// A list's scope: which departments' cases the caller may see (empty: all of them), and
// whether the reporter's personal data is removed. allowed false: the caller may not list.
struct Scope {
  bool allowed = false;
  bool all_departments = false;
  const google::protobuf::RepeatedPtrField<std::string>* departments = nullptr;
  bool redact_reporter = false;
};
Scope ScopeOf(const v1::Caller& caller, Action list_action);

// Whether cases the caller reads lose their reporter's name and contact (leaders).
bool RedactsReporter(const v1::Caller& caller);

// The action a query asks for (kReadCase for show, kListCases for list, ...).
Action QueryAction(const v1::Query& query);
// Removes the reporter's personal data (name, contact) from a case and its history.
void RedactReporter(v1::Case& c);

// The principal of a department's own channel (its spool directory, signed webhook replies,
// its CURVE gateway key): the adapter knows the department, so commands arriving through it
// act as that department and nothing else, under the same policy.
v1::Caller DepartmentCaller(const std::string& department);

// The action a command asks for.
Action ActionOf(const v1::Command& command);
std::string_view ActionName(Action action);
std::string_view RoleName(v1::Role role);  // "operator", ...; "unspecified" for 0

}  // namespace casebus::auth

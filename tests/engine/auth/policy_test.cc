// engine/auth policy: every role × every action × no case / own case / foreign case / a case
// with no department, against the rules stated here in words (deny by default; a department
// sees only its own cases and everything else is "not found", even what it may never do).

#include <gtest/gtest.h>

#include <set>

#include "engine/auth/policy.h"

namespace casebus::auth {
namespace {

using A = Action;

v1::Caller Make(v1::Role role, std::vector<std::string> departments = {}) {
  v1::Caller c;
  c.set_name("t");
  c.set_role(role);
  for (auto& d : departments) c.add_departments(d);
  return c;
}

// The roles' duties in words (the issue and RELIABILITY.md §3).
std::set<Action> Duties(v1::Role role) {
  switch (role) {
    case v1::OPERATOR:  // 受理: take reports, register or reject, dispatch, merge duplicates
      return {A::kReport, A::kRegister, A::kReject, A::kDispatch, A::kMerge, A::kNote, A::kReadCase,
              A::kListCases, A::kReadMetrics};
    case v1::DISPATCHER:  // the operator's work plus the supervising decisions
      return {A::kReport, A::kRegister, A::kReject, A::kDispatch, A::kApproveExtension, A::kDenyExtension,
              A::kSuspend, A::kResume, A::kVerify, A::kClose, A::kReopen, A::kMerge, A::kVoid, A::kNote,
              A::kReadCase, A::kListCases, A::kReadMetrics, A::kReadStatus};
    case v1::DEPARTMENT:  // handle its work orders
      return {A::kAccept, A::kReturn, A::kRequestExtension, A::kResolve, A::kNote, A::kSupervisionReply,
              A::kReadCase, A::kListCases, A::kReadMetrics};
    case v1::LEADER:
      return {A::kReadCase, A::kListCases, A::kReadMetrics, A::kReadStatus};
    case v1::ADMIN:
      return {A::kReadStatus, A::kDeadLetters, A::kReloadConfig, A::kReadMetrics};
    case v1::REPORTER:
      return {A::kReport};
    default:
      return {};
  }
}

TEST(PolicyTest, EveryRoleEveryActionEveryScope) {
  int decisions = 0, mismatches = 0;
  for (int r = v1::Role_MIN; r <= v1::Role_MAX; ++r) {
    const auto role = static_cast<v1::Role>(r);
    const v1::Caller caller = Make(role, role == v1::DEPARTMENT ? std::vector<std::string>{"d1", "d2"}
                                                                : std::vector<std::string>{});
    const std::set<Action> duties = Duties(role);
    for (int a = 0; a < kActionCount; ++a) {
      const auto action = static_cast<Action>(a);
      const bool duty = duties.count(action) > 0;
      struct Probe {
        Resource resource;
        Decision want;
      };
      const Decision allow_or_deny = duty ? Decision::kAllow : Decision::kDeny;
      const bool dept = role == v1::DEPARTMENT;
      const std::vector<Probe> probes = {
          {Resource{false, ""}, allow_or_deny},
          {Resource{true, "d1"}, allow_or_deny},
          {Resource{true, "d2"}, allow_or_deny},
          {Resource{true, "d3"}, dept ? Decision::kNotFound : allow_or_deny},
          {Resource{true, ""}, dept ? Decision::kNotFound : allow_or_deny},
      };
      for (const auto& p : probes) {
        ++decisions;
        const Decision got = Authorize(caller, action, p.resource);
        if (got != p.want) {
          ++mismatches;
          ADD_FAILURE() << RoleName(role) << " " << ActionName(action) << " on "
                        << (p.resource.has_case ? "case of \"" + std::string(p.resource.department) + "\"" : "no case")
                        << ": got " << static_cast<int>(got) << ", want " << static_cast<int>(p.want);
        }
      }
    }
  }
  EXPECT_EQ(decisions, 7 * kActionCount * 5);
  EXPECT_EQ(mismatches, 0);
}

TEST(PolicyTest, UnspecifiedRoleMayDoNothing) {
  for (int a = 0; a < kActionCount; ++a)
    EXPECT_EQ(Authorize(Make(v1::ROLE_UNSPECIFIED), static_cast<Action>(a), {}), Decision::kDeny) << a;
}

TEST(PolicyTest, ScopesFilterListsForDepartmentsOnly) {
  const v1::Caller dept = Make(v1::DEPARTMENT, {"d1"});
  Scope s = ScopeOf(dept, A::kListCases);
  ASSERT_TRUE(s.allowed);
  EXPECT_FALSE(s.all_departments);
  ASSERT_NE(s.departments, nullptr);
  EXPECT_EQ(s.departments->size(), 1);
  EXPECT_FALSE(s.redact_reporter);
  s = ScopeOf(Make(v1::LEADER), A::kListCases);
  EXPECT_TRUE(s.allowed && s.all_departments && s.redact_reporter);
  s = ScopeOf(Make(v1::OPERATOR), A::kListCases);
  EXPECT_TRUE(s.allowed && s.all_departments && !s.redact_reporter);
  EXPECT_FALSE(ScopeOf(Make(v1::REPORTER), A::kListCases).allowed);
  EXPECT_FALSE(ScopeOf(Make(v1::ADMIN), A::kListCases).allowed);
}

TEST(PolicyTest, EveryCommandHasItsAction) {
  v1::Command c;
  std::set<Action> seen;
  const auto* oneof = v1::Command::descriptor()->FindOneofByName("body");
  ASSERT_NE(oneof, nullptr);
  for (int i = 0; i < oneof->field_count(); ++i) {
    c.Clear();
    c.GetReflection()->MutableMessage(&c, oneof->field(i));
    seen.insert(ActionOf(c));
  }
  // Each of the 19 commands is its own action.
  EXPECT_EQ(seen.size(), static_cast<size_t>(oneof->field_count()));
}

TEST(PolicyTest, RedactionRemovesNameAndContactEverywhere) {
  v1::Case c;
  auto* r = c.add_reporters();
  r->set_name("张三");
  r->set_contact("138");
  r->set_source(v1::HOTLINE);
  auto* e = c.add_history();
  e->mutable_reporter()->set_name("李四");
  e->mutable_reporter()->set_contact("139");
  RedactReporter(c);
  EXPECT_EQ(c.reporters(0).name(), "");
  EXPECT_EQ(c.reporters(0).contact(), "");
  EXPECT_EQ(c.reporters(0).source(), v1::HOTLINE);  // not personal: kept
  EXPECT_EQ(c.history(0).reporter().name(), "");
  EXPECT_EQ(c.history(0).reporter().contact(), "");
}

}  // namespace
}  // namespace casebus::auth

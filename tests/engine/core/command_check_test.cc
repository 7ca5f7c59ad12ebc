// CheckCommand: the stateless field rules of command.proto. Each broken rule gives
// INVALID_ARGUMENT naming the exact field path; the boundary values just inside are accepted.

#include "engine/core/command_check.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/engine/core/machine_fixture.h"

namespace casebus::core {
namespace {

using ::testing::HasSubstr;

struct Check {
  std::string what;
  v1::Command command;
  std::string field;  // empty: the command is valid
};

v1::Command With(v1::Command c, const std::function<void(v1::Command&)>& change) {
  c.set_request_id("req-1");
  change(c);
  return c;
}

std::string Bytes(size_t n) { return std::string(n, 'x'); }

void ExpectChecks(const std::vector<Check>& cases) {
  for (const Check& c : cases) {
    SCOPED_TRACE(c.what);
    Status st = CheckCommand(c.command);
    if (c.field.empty()) {
      EXPECT_TRUE(st.ok()) << st.message();
      continue;
    }
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(st.field(), c.field);
    EXPECT_THAT(st.message(), HasSubstr(c.field == "body" ? "no body" : c.field));
  }
}

TEST(CommandCheckTest, EnvelopeFields) {
  const v1::Command note = cmd::Note(1);
  ExpectChecks({
      {"valid", With(note, [](auto&) {}), ""},
      {"no request id", With(note, [](auto& c) { c.clear_request_id(); }), "request_id"},
      {"128-byte request id", With(note, [](auto& c) { c.set_request_id(Bytes(128)); }), ""},
      {"129-byte request id", With(note, [](auto& c) { c.set_request_id(Bytes(129)); }),
       "request_id"},
      {"no actor", With(note, [](auto& c) { c.clear_actor(); }), "actor"},
      {"65-byte actor", With(note, [](auto& c) { c.set_actor(Bytes(65)); }), "actor"},
      {"no body", With(note, [](auto& c) { c.clear_body(); }), "body"},
  });
}

TEST(CommandCheckTest, ReportFields) {
  const v1::Command r = cmd::ReportAt(kDrainClog, kGridA1, 31.3, 120.6);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  using C = v1::Command;
  ExpectChecks({
      {"valid", With(r, [](C&) {}), ""},
      {"no category", With(r, [](C& c) { c.mutable_report()->clear_category(); }),
       "report.category"},
      {"long category", With(r, [](C& c) { c.mutable_report()->set_category(Bytes(33)); }),
       "report.category"},
      {"long condition", With(r, [](C& c) { c.mutable_report()->set_condition(Bytes(65)); }),
       "report.condition"},
      {"no grid", With(r, [](C& c) { c.mutable_report()->mutable_place()->clear_grid(); }),
       "report.place.grid"},
      {"long grid", With(r, [](C& c) { c.mutable_report()->mutable_place()->set_grid(Bytes(16)); }),
       "report.place.grid"},
      {"NaN lat", With(r, [&](C& c) { c.mutable_report()->mutable_place()->set_lat(nan); }),
       "report.place.lat"},
      {"lat 90.5", With(r, [](C& c) { c.mutable_report()->mutable_place()->set_lat(90.5); }),
       "report.place.lat"},
      {"lat -91", With(r, [](C& c) { c.mutable_report()->mutable_place()->set_lat(-91); }),
       "report.place.lat"},
      {"lat 90", With(r, [](C& c) { c.mutable_report()->mutable_place()->set_lat(90); }), ""},
      {"NaN lat without coordinates",
       With(r,
            [&](C& c) {
              c.mutable_report()->mutable_place()->set_lat(nan);
              c.mutable_report()->mutable_place()->set_has_coordinates(false);
            }),
       ""},
      {"infinite lon", With(r, [&](C& c) { c.mutable_report()->mutable_place()->set_lon(inf); }),
       "report.place.lon"},
      {"lon 181", With(r, [](C& c) { c.mutable_report()->mutable_place()->set_lon(181); }),
       "report.place.lon"},
      {"long address",
       With(r, [](C& c) { c.mutable_report()->mutable_place()->set_address(Bytes(257)); }),
       "report.place.address"},
      {"no source", With(r, [](C& c) { c.mutable_report()->set_source(v1::SOURCE_UNSPECIFIED); }),
       "report.source"},
      {"unknown source",
       With(r, [](C& c) { c.mutable_report()->set_source(static_cast<v1::Source>(99)); }),
       "report.source"},
      {"unknown urgency",
       With(r, [](C& c) { c.mutable_report()->set_urgency(static_cast<v1::Urgency>(7)); }),
       "report.urgency"},
      {"long asset id", With(r, [](C& c) { c.mutable_report()->set_asset_id(Bytes(18)); }),
       "report.asset_id"},
      {"17-digit asset id",
       With(r, [](C& c) { c.mutable_report()->set_asset_id("32050101010000011"); }), ""},
      {"2,000-byte description",
       With(r, [](C& c) { c.mutable_report()->set_description(Bytes(2000)); }), ""},
      {"3,000-byte description",
       With(r, [](C& c) { c.mutable_report()->set_description(Bytes(3000)); }),
       "report.description"},
      {"long reporter name",
       With(r, [](C& c) { c.mutable_report()->mutable_reporter()->set_name(Bytes(65)); }),
       "report.reporter.name"},
      {"long reporter contact",
       With(r, [](C& c) { c.mutable_report()->mutable_reporter()->set_contact(Bytes(65)); }),
       "report.reporter.contact"},
  });
  Status st = CheckCommand(With(r, [](C& c) { c.mutable_report()->set_description(Bytes(3000)); }));
  EXPECT_EQ(st.message(), "report.description is 3000 bytes; at most 2000");
}

TEST(CommandCheckTest, EveryCaseCommandNeedsACaseId) {
  const std::vector<std::pair<v1::Command, std::string>> commands = {
      {cmd::Register(0), "register.case_id"},
      {cmd::Reject(0), "reject.case_id"},
      {cmd::Dispatch(0), "dispatch.case_id"},
      {cmd::Accept(0), "accept.case_id"},
      {cmd::Return(0), "return.case_id"},
      {cmd::RequestExtension(0, 2), "request_extension.case_id"},
      {cmd::ApproveExtension(0), "approve_extension.case_id"},
      {cmd::DenyExtension(0), "deny_extension.case_id"},
      {cmd::Suspend(0), "suspend.case_id"},
      {cmd::Resume(0), "resume.case_id"},
      {cmd::Resolve(0), "resolve.case_id"},
      {cmd::Verify(0, true), "verify.case_id"},
      {cmd::Close(0), "close.case_id"},
      {cmd::Reopen(0), "reopen.case_id"},
      {cmd::Merge(0, 2), "merge.case_id"},
      {cmd::Void(0), "void.case_id"},
      {cmd::Note(0), "note.case_id"},
  };
  std::vector<Check> cases;
  for (const auto& [command, field] : commands) {
    cases.push_back({field, With(command, [](auto&) {}), field});
    // The same command on case 7 is valid.
    v1::Command on7 = With(command, [](auto&) {});
    const auto* body = on7.GetReflection()->GetOneofFieldDescriptor(
        on7, on7.GetDescriptor()->FindOneofByName("body"));
    auto* message = on7.GetReflection()->MutableMessage(&on7, body);
    message->GetReflection()->SetUInt64(message,
                                        message->GetDescriptor()->FindFieldByName("case_id"), 7);
    cases.push_back({field + " = 7", on7, ""});
    EXPECT_EQ(TargetCase(on7), 7u) << field;
    EXPECT_EQ(std::string(CommandName(on7)) + ".case_id", field);
  }
  ExpectChecks(cases);
}

TEST(CommandCheckTest, ReasonsAndTexts) {
  using C = v1::Command;
  ExpectChecks({
      {"reject without reason", With(cmd::Reject(1, ""), [](C&) {}), "reject.reason"},
      {"long reject reason", With(cmd::Reject(1, Bytes(2001)), [](C&) {}), "reject.reason"},
      {"return without reason", With(cmd::Return(1, ""), [](C&) {}), "return.reason"},
      {"suspend without reason",
       With(cmd::Suspend(1), [](C& c) { c.mutable_suspend()->clear_reason(); }), "suspend.reason"},
      {"reopen without reason",
       With(cmd::Reopen(1), [](C& c) { c.mutable_reopen()->clear_reason(); }), "reopen.reason"},
      {"void without reason", With(cmd::Void(1), [](C& c) { c.mutable_void_()->clear_reason(); }),
       "void.reason"},
      {"empty note", With(cmd::Note(1, ""), [](C&) {}), "note.text"},
      {"2,000-byte note", With(cmd::Note(1, Bytes(2000)), [](C&) {}), ""},
      {"2,001-byte note", With(cmd::Note(1, Bytes(2001)), [](C&) {}), "note.text"},
      {"failed verification without reason", With(cmd::Verify(1, false), [](C&) {}),
       "verify.reason"},
      {"failed verification with reason", With(cmd::Verify(1, false, "still broken"), [](C&) {}),
       ""},
      {"passed verification without reason", With(cmd::Verify(1, true), [](C&) {}), ""},
      {"passed verification, long reason", With(cmd::Verify(1, true, Bytes(2001)), [](C&) {}),
       "verify.reason"},
      {"deny without reason",
       With(cmd::DenyExtension(1), [](C& c) { c.mutable_deny_extension()->clear_reason(); }), ""},
      {"long department", With(cmd::Dispatch(1, Bytes(65)), [](C&) {}), "dispatch.department"},
      {"long work order id", With(cmd::Accept(1, Bytes(65)), [](C&) {}), "accept.work_order_id"},
  });
}

TEST(CommandCheckTest, ExtensionHours) {
  using C = v1::Command;
  ExpectChecks({
      {"request 0 h", With(cmd::RequestExtension(1, 0), [](C&) {}), "request_extension.hours"},
      {"request 1 h", With(cmd::RequestExtension(1, 1), [](C&) {}), ""},
      {"request 8760 h", With(cmd::RequestExtension(1, 8760), [](C&) {}), ""},
      {"request 8761 h", With(cmd::RequestExtension(1, 8761), [](C&) {}),
       "request_extension.hours"},
      {"request -5 h", With(cmd::RequestExtension(1, -5), [](C&) {}), "request_extension.hours"},
      {"long request reason",
       With(cmd::RequestExtension(1, 2),
            [](C& c) { c.mutable_request_extension()->set_reason(Bytes(2001)); }),
       "request_extension.reason"},
      {"approve as requested", With(cmd::ApproveExtension(1, 0), [](C&) {}), ""},
      {"approve 8760 h", With(cmd::ApproveExtension(1, 8760), [](C&) {}), ""},
      {"approve 8761 h", With(cmd::ApproveExtension(1, 8761), [](C&) {}),
       "approve_extension.hours"},
      {"approve -1 h", With(cmd::ApproveExtension(1, -1), [](C&) {}), "approve_extension.hours"},
  });
}

TEST(CommandCheckTest, ResolveEvidence) {
  using C = v1::Command;
  ExpectChecks({
      {"one reference", With(cmd::Resolve(1), [](C&) {}), ""},
      {"no evidence", With(cmd::Resolve(1), [](C& c) { c.mutable_resolve()->clear_evidence(); }),
       "resolve.evidence"},
      {"32 references",
       With(cmd::Resolve(1),
            [](C& c) {
              for (int i = 1; i < 32; ++i) c.mutable_resolve()->add_evidence("photo");
            }),
       ""},
      {"33 references",
       With(cmd::Resolve(1),
            [](C& c) {
              for (int i = 1; i < 33; ++i) c.mutable_resolve()->add_evidence("photo");
            }),
       "resolve.evidence"},
      {"empty reference",
       With(cmd::Resolve(1), [](C& c) { c.mutable_resolve()->add_evidence(""); }),
       "resolve.evidence"},
      {"512-byte reference",
       With(cmd::Resolve(1), [](C& c) { c.mutable_resolve()->add_evidence(Bytes(512)); }), ""},
      {"513-byte reference",
       With(cmd::Resolve(1), [](C& c) { c.mutable_resolve()->add_evidence(Bytes(513)); }),
       "resolve.evidence"},
      {"long note", With(cmd::Resolve(1), [](C& c) { c.mutable_resolve()->set_note(Bytes(2001)); }),
       "resolve.note"},
  });
}

TEST(CommandCheckTest, MergeTargets) {
  using C = v1::Command;
  ExpectChecks({
      {"into 2", With(cmd::Merge(1, 2), [](C&) {}), ""},
      {"no target", With(cmd::Merge(1, 0), [](C&) {}), "merge.into_case_id"},
      {"into itself", With(cmd::Merge(3, 3), [](C&) {}), "merge.into_case_id"},
  });
  EXPECT_EQ(CheckCommand(With(cmd::Merge(3, 3), [](C&) {})).message(),
            "merge.into_case_id must differ from merge.case_id");
}

TEST(CommandCheckTest, ReportHasNoTargetCase) {
  v1::Command r = cmd::Report(kDrainClog, kGridA1);
  EXPECT_EQ(TargetCase(r), 0u);
  EXPECT_EQ(CommandName(r), "report");
  EXPECT_EQ(CommandName(v1::Command()), "");
}

using CommandCheckInMachineTest = MachineTest;

TEST_F(CommandCheckInMachineTest, RefusedFieldReachesTheSubmitter) {
  v1::Command r = cmd::Report(kDrainClog, kGridA1);
  r.mutable_report()->set_description(Bytes(3000));
  Effects fx = Run(r, Monday9());
  EXPECT_EQ(fx.result.code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(fx.result.field(), "report.description");
  EXPECT_EQ(fx.result.message(), "report.description is 3000 bytes; at most 2000");
  EXPECT_FALSE(fx.Changed());
  EXPECT_EQ(machine_->case_count(), 0u);

  r = cmd::ReportAt(kDrainClog, kGridA1, std::nan(""), 120.6);
  fx = Run(r, Monday9());
  EXPECT_EQ(fx.result.code(), v1::INVALID_ARGUMENT);
  EXPECT_EQ(fx.result.field(), "report.place.lat");
  EXPECT_EQ(fx.result.message(), "report.place.lat must be within -90..90");

  // A refused command does not use up its request id.
  r = cmd::Report(kDrainClog, kGridA1);
  r.set_request_id("r1");
  EXPECT_EQ(Run(r, Monday9()).result.code(), v1::OK);
}

}  // namespace
}  // namespace casebus::core

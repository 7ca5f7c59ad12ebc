#include "engine/core/command_check.h"

#include <cmath>
#include <string>

namespace casebus::core {
namespace {

Status Required(const std::string& value, const std::string& field, size_t max) {
  if (value.empty()) return Status::InvalidArgument(field + " is required", field);
  if (value.size() > max)
    return Status::InvalidArgument(
        field + " is " + std::to_string(value.size()) + " bytes; at most " + std::to_string(max),
        field);
  return Status::Ok();
}

Status AtMost(const std::string& value, const std::string& field, size_t max) {
  if (value.size() > max)
    return Status::InvalidArgument(
        field + " is " + std::to_string(value.size()) + " bytes; at most " + std::to_string(max),
        field);
  return Status::Ok();
}

Status NeedCase(uint64_t id, const std::string& name) {
  if (id == 0) return Status::InvalidArgument(name + ".case_id is required", name + ".case_id");
  return Status::Ok();
}

Status CheckReport(const v1::Report& r) {
  CASEBUS_RETURN_IF_ERROR(Required(r.category(), "report.category", 32));
  CASEBUS_RETURN_IF_ERROR(AtMost(r.condition(), "report.condition", 64));
  CASEBUS_RETURN_IF_ERROR(Required(r.place().grid(), "report.place.grid", 15));
  if (r.place().has_coordinates()) {
    const double lat = r.place().lat(), lon = r.place().lon();
    if (!std::isfinite(lat) || lat < -90 || lat > 90)
      return Status::InvalidArgument("report.place.lat must be within -90..90", "report.place.lat");
    if (!std::isfinite(lon) || lon < -180 || lon > 180)
      return Status::InvalidArgument("report.place.lon must be within -180..180",
                                     "report.place.lon");
  }
  CASEBUS_RETURN_IF_ERROR(AtMost(r.place().address(), "report.place.address", 256));
  if (r.source() == v1::SOURCE_UNSPECIFIED || !v1::Source_IsValid(r.source()))
    return Status::InvalidArgument("report.source is required (inspector, hotline, app, sensor, ...)",
                                   "report.source");
  if (!v1::Urgency_IsValid(r.urgency()))
    return Status::InvalidArgument("report.urgency is not a known urgency", "report.urgency");
  CASEBUS_RETURN_IF_ERROR(AtMost(r.asset_id(), "report.asset_id", 17));
  CASEBUS_RETURN_IF_ERROR(AtMost(r.description(), "report.description", 2000));
  CASEBUS_RETURN_IF_ERROR(AtMost(r.reporter().name(), "report.reporter.name", 64));
  CASEBUS_RETURN_IF_ERROR(AtMost(r.reporter().contact(), "report.reporter.contact", 64));
  return Status::Ok();
}

}  // namespace

std::string_view CommandName(const v1::Command& c) {
  using C = v1::Command;
  switch (c.body_case()) {
    case C::kReport: return "report";
    case C::kRegister: return "register";
    case C::kReject: return "reject";
    case C::kDispatch: return "dispatch";
    case C::kAccept: return "accept";
    case C::kReturn: return "return";
    case C::kRequestExtension: return "request_extension";
    case C::kApproveExtension: return "approve_extension";
    case C::kDenyExtension: return "deny_extension";
    case C::kSuspend: return "suspend";
    case C::kResume: return "resume";
    case C::kResolve: return "resolve";
    case C::kVerify: return "verify";
    case C::kClose: return "close";
    case C::kReopen: return "reopen";
    case C::kMerge: return "merge";
    case C::kVoid: return "void";
    case C::kNote: return "note";
    case C::kSupervisionReply: return "supervision_reply";
    case C::BODY_NOT_SET: break;
  }
  return "";
}

uint64_t TargetCase(const v1::Command& c) {
  using C = v1::Command;
  switch (c.body_case()) {
    case C::kRegister: return c.register_().case_id();
    case C::kReject: return c.reject().case_id();
    case C::kDispatch: return c.dispatch().case_id();
    case C::kAccept: return c.accept().case_id();
    case C::kReturn: return c.return_().case_id();
    case C::kRequestExtension: return c.request_extension().case_id();
    case C::kApproveExtension: return c.approve_extension().case_id();
    case C::kDenyExtension: return c.deny_extension().case_id();
    case C::kSuspend: return c.suspend().case_id();
    case C::kResume: return c.resume().case_id();
    case C::kResolve: return c.resolve().case_id();
    case C::kVerify: return c.verify().case_id();
    case C::kClose: return c.close().case_id();
    case C::kReopen: return c.reopen().case_id();
    case C::kMerge: return c.merge().case_id();
    case C::kVoid: return c.void_().case_id();
    case C::kNote: return c.note().case_id();
    case C::kSupervisionReply: return c.supervision_reply().case_id();
    default: return 0;
  }
}

Status CheckCommand(const v1::Command& c) {
  CASEBUS_RETURN_IF_ERROR(Required(c.request_id(), "request_id", 128));
  CASEBUS_RETURN_IF_ERROR(Required(c.actor(), "actor", 64));
  using C = v1::Command;
  const std::string name(CommandName(c));
  switch (c.body_case()) {
    case C::BODY_NOT_SET:
      return Status::InvalidArgument("the command has no body (report, register, dispatch, ...)",
                                     "body");
    case C::kReport:
      return CheckReport(c.report());
    case C::kReject:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.reject().case_id(), name));
      return Required(c.reject().reason(), "reject.reason", 2000);
    case C::kReturn:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.return_().case_id(), name));
      return Required(c.return_().reason(), "return.reason", 2000);
    case C::kRequestExtension: {
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.request_extension().case_id(), name));
      int h = c.request_extension().hours();
      if (h < 1 || h > 8760)
        return Status::InvalidArgument("request_extension.hours must be within 1..8760",
                                       "request_extension.hours");
      return AtMost(c.request_extension().reason(), "request_extension.reason", 2000);
    }
    case C::kApproveExtension: {
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.approve_extension().case_id(), name));
      int h = c.approve_extension().hours();
      if (h < 0 || h > 8760)
        return Status::InvalidArgument("approve_extension.hours must be within 0..8760",
                                       "approve_extension.hours");
      return Status::Ok();
    }
    case C::kSuspend:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.suspend().case_id(), name));
      return Required(c.suspend().reason(), "suspend.reason", 2000);
    case C::kResolve: {
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.resolve().case_id(), name));
      if (c.resolve().evidence_size() == 0)
        return Status::InvalidArgument("resolve.evidence needs at least one reference (photo id, URL)",
                                       "resolve.evidence");
      if (c.resolve().evidence_size() > 32)
        return Status::InvalidArgument("resolve.evidence has more than 32 references",
                                       "resolve.evidence");
      for (const auto& e : c.resolve().evidence())
        CASEBUS_RETURN_IF_ERROR(Required(e, "resolve.evidence", 512));
      return AtMost(c.resolve().note(), "resolve.note", 2000);
    }
    case C::kVerify:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.verify().case_id(), name));
      if (!c.verify().passed())
        return Required(c.verify().reason(), "verify.reason", 2000);
      return AtMost(c.verify().reason(), "verify.reason", 2000);
    case C::kReopen:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.reopen().case_id(), name));
      return Required(c.reopen().reason(), "reopen.reason", 2000);
    case C::kMerge:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.merge().case_id(), name));
      if (c.merge().into_case_id() == 0)
        return Status::InvalidArgument("merge.into_case_id is required", "merge.into_case_id");
      if (c.merge().into_case_id() == c.merge().case_id())
        return Status::InvalidArgument("merge.into_case_id must differ from merge.case_id",
                                       "merge.into_case_id");
      return Status::Ok();
    case C::kVoid:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.void_().case_id(), name));
      return Required(c.void_().reason(), "void.reason", 2000);
    case C::kNote:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.note().case_id(), name));
      return Required(c.note().text(), "note.text", 2000);
    case C::kSupervisionReply:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.supervision_reply().case_id(), name));
      return Required(c.supervision_reply().text(), "supervision_reply.text", 2000);
    case C::kDispatch:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.dispatch().case_id(), name));
      return AtMost(c.dispatch().department(), "dispatch.department", 64);
    case C::kAccept:
      CASEBUS_RETURN_IF_ERROR(NeedCase(c.accept().case_id(), name));
      return AtMost(c.accept().work_order_id(), "accept.work_order_id", 64);
    default:
      return NeedCase(TargetCase(c), name);
  }
}

}  // namespace casebus::core

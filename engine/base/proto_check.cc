#include "engine/base/proto_check.h"

#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

namespace casebus {

Status CheckNoUnknownFields(const google::protobuf::Message& m, const std::string& path,
                            std::string_view what) {
  const auto* refl = m.GetReflection();
  const auto& unknown = refl->GetUnknownFields(m);
  if (!unknown.empty())
    return Status::InvalidArgument(
        (path.empty() ? std::string(what) : path) + " has unknown field number " +
            std::to_string(unknown.field(0).number()) + "; this server speaks casebus.v1",
        path);
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  refl->ListFields(m, &fields);
  for (const auto* f : fields) {
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const std::string sub = path.empty() ? f->name() : path + "." + f->name();
    if (f->is_repeated()) {
      for (int i = 0; i < refl->FieldSize(m, f); ++i)
        CASEBUS_RETURN_IF_ERROR(CheckNoUnknownFields(refl->GetRepeatedMessage(m, f, i),
                                                     sub + "[" + std::to_string(i) + "]", what));
    } else {
      CASEBUS_RETURN_IF_ERROR(CheckNoUnknownFields(refl->GetMessage(m, f), sub, what));
    }
  }
  return Status::Ok();
}

}  // namespace casebus

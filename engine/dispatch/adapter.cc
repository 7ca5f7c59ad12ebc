#include "engine/dispatch/adapter.h"

namespace casebus::dispatch {

void AdapterRegistry::Register(std::string kind, Factory factory) {
  factories_[std::move(kind)] = std::move(factory);
}

std::string AdapterRegistry::KindOf(const v1::AdapterConfig& config) {
  const auto* oneof = config.GetDescriptor()->FindOneofByName("kind");
  const auto* field = config.GetReflection()->GetOneofFieldDescriptor(config, oneof);
  return field ? field->name() : "";
}

Result<std::unique_ptr<Adapter>> AdapterRegistry::Create(const v1::Department& dept,
                                                         const AdapterContext& ctx) const {
  const std::string kind = KindOf(dept.adapter());
  auto it = factories_.find(kind);
  if (it == factories_.end())
    return Err(Status::InvalidArgument("department " + dept.id() + ": no adapter of kind '" +
                                       kind + "' is registered", "adapter"));
  return it->second(dept, ctx);
}

}  // namespace casebus::dispatch

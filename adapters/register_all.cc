#include "adapters/register_all.h"

#include "adapters/spool/spool_adapter.h"

namespace casebus::adapters {
void RegisterAllAdapters(dispatch::AdapterRegistry& registry) { RegisterSpoolAdapter(registry); }
}  // namespace casebus::adapters

#include "adapters/register_all.h"

#include "adapters/open311/open311_adapter.h"
#include "adapters/spool/spool_adapter.h"
#include "adapters/webhook/webhook_adapter.h"
#include "adapters/zmq/zmq_adapter.h"

namespace casebus::adapters {
void RegisterAllAdapters(dispatch::AdapterRegistry& registry) {
  RegisterSpoolAdapter(registry);
  webhook::RegisterWebhookAdapter(registry);
  zmqgw::RegisterZmqAdapter(registry);
  open311::RegisterOpen311Adapter(registry);
}
}  // namespace casebus::adapters

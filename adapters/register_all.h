#pragma once
// The one file that knows every concrete adapter.
#include "engine/dispatch/adapter.h"

namespace casebus::adapters {
void RegisterAllAdapters(dispatch::AdapterRegistry& registry);
}

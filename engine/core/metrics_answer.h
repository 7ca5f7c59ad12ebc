#pragma once
// The answer to a metrics query (Query.metrics) from a ledger: rows of one grouping over a
// range of local days, with names, rates, the composite index and ranks. CaseMachine answers
// with it; the ledger benchmark calls it on a ledger filled directly.

#include <string>
#include <unordered_map>

#include "casebus/v1/command.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/base/clock.h"
#include "engine/core/ledger.h"

namespace casebus::core {

// "department:<id>", "district:<code>", "street:<code>", "category:<code>" → name.
using UnitNames = std::unordered_map<std::string, std::string>;
UnitNames UnitNamesOf(const v1::CityConfig& config);

// today: the local day of `now` in the city's calendar. Bad group_by / from / to give
// INVALID_ARGUMENT naming metrics.<field>.
v1::QueryResult AnswerMetrics(const Ledger& ledger, const v1::CityConfig& config, const UnitNames& names,
                              const v1::Metrics& q, int64_t today, Millis now);

}  // namespace casebus::core

#pragma once
// The metrics API's JSON (GET /v1/metrics/closure): rows of ledger counters and rates, as
// documented in engine/query/README.md. Rates are fractions 0..1 at full precision, null where
// the denominator is 0; index and rank null where there is none.

#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "casebus/v1/command.pb.h"

namespace casebus::query {

// "department" → BY_DEPARTMENT ...; nullopt for anything else.
std::optional<v1::MetricsGroup> ParseGroup(std::string_view name);
std::string_view GroupName(v1::MetricsGroup g);
// The names accepted, for error messages: "department, district, ...".
std::string GroupNames();

boost::json::object RowJson(const v1::ClosureRow& row, v1::MetricsGroup group);
boost::json::object MetricsJson(const v1::MetricsReply& reply, int utc_offset_minutes);

}  // namespace casebus::query

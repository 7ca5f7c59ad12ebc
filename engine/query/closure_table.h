#pragma once
// Closure tables for people: aligned text with units, from the engine's ClosureRow answers.

#include <string>

#include "casebus/v1/command.pb.h"

namespace casebus::query {

// title: the heading above the table ("By department"). Rates are shown as percentages with
// one decimal; "—" where nothing was due.
std::string FormatClosureTable(const std::string& title,
                               const google::protobuf::RepeatedPtrField<v1::ClosureRow>& rows,
                               bool with_name = true);

}  // namespace casebus::query

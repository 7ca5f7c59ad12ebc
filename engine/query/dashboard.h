#pragma once
// The leadership dashboard (assets/dashboard.html), built into the binary: one page with its
// script and SVG charts inline, served at GET /dashboard; it reads GET /v1/metrics/closure.

#include <string_view>

namespace casebus::query {

std::string_view DashboardHtml();

}  // namespace casebus::query

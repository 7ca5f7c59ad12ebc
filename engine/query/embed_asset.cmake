# cmake -DIN=<file> -DOUT=<cc> -P embed_asset.cmake: the dashboard page, built into the binary
# as bytes (a raw string literal would break on a ")" followed by its delimiter).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "// Generated from engine/query/assets/dashboard.html. Do not edit.\n#include <string_view>\nnamespace casebus::query {\nstd::string_view DashboardHtml() {\n  static const unsigned char kBytes[] = {${bytes} 0};\n  return {reinterpret_cast<const char*>(kBytes), sizeof(kBytes) - 1};\n}\n}  // namespace casebus::query\n")

# cmake -DIN=<file> -DOUT=<cc> [-DNS=casebus::query -DFUNC=DashboardHtml] -P embed_asset.cmake:
# a file built into the binary as bytes, returned by `std::string_view NS::FUNC()` (a raw
# string literal would break on a ")" followed by its delimiter).
if(NOT NS)
  set(NS casebus::query)
endif()
if(NOT FUNC)
  set(FUNC DashboardHtml)
endif()
get_filename_component(name ${IN} NAME)
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "// Generated from ${name}. Do not edit.\n#include <string_view>\nnamespace ${NS} {\nstd::string_view ${FUNC}() {\n  static const unsigned char kBytes[] = {${bytes} 0};\n  return {reinterpret_cast<const char*>(kBytes), sizeof(kBytes) - 1};\n}\n}  // namespace ${NS}\n")

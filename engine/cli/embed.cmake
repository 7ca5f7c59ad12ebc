# cmake -DIN=<yaml> -DOUT=<cc> -P embed.cmake: the sample city, built into the binary.
file(READ ${IN} content)
file(WRITE ${OUT} "// Generated from deploy/config/sample-city.yaml. Do not edit.\n#include <string_view>\nnamespace casebus::cli {\nstd::string_view EmbeddedSampleCity() {\n  static const char kText[] = R\"casebus_yaml(${content})casebus_yaml\";\n  return {kText, sizeof(kText) - 1};\n}\n}  // namespace casebus::cli\n")

// `casebus token new`: a bearer token for the HTTP API and the access-file line that admits it.

#include <cstdio>

#include "engine/auth/access.h"
#include "engine/auth/policy.h"
#include "engine/cli/commands.h"
#include "engine/cli/flags.h"

namespace casebus::cli {

int RunToken(const Args& args) {
  auto flags = Flags::Parse(args, {"name", "role", "department"}, {});
  if (!flags || flags->positional().size() != 1 || flags->positional()[0] != "new" || !flags->Has("name") ||
      !flags->Has("role")) {
    std::fputs("usage: casebus token new --name NAME --role operator|dispatcher|department|leader|admin|reporter\n"
               "                        [--department D[,D...]]   (role department: the departments it acts for)\n",
               stderr);
    return 2;
  }
  const std::string role = flags->GetOr("role", "");
  v1::Role parsed = v1::ROLE_UNSPECIFIED;
  std::string upper;
  for (char c : role) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (!v1::Role_Parse(upper, &parsed) || parsed == v1::ROLE_UNSPECIFIED) {
    std::fprintf(stderr, "casebus token: --role: \"%s\" is not operator, dispatcher, department, leader, admin or reporter\n",
                 role.c_str());
    return 2;
  }
  const std::string departments = flags->GetOr("department", "");
  if ((parsed == v1::DEPARTMENT) != !departments.empty()) {
    std::fputs("casebus token: --department is required for role department, and only for it\n", stderr);
    return 2;
  }
  const std::string token = auth::NewToken();
  std::printf("token (give it to the client once; casebus keeps only its hash):\n  %s\n\n", token.c_str());
  std::printf("add to the access file (serve --access FILE), then reload (SIGHUP or POST /v1/admin/reload):\n");
  std::printf("tokens:\n  - {name: %s, role: %s%s%s%s, sha256: %s}\n", flags->GetOr("name", "").c_str(),
              std::string(auth::RoleName(parsed)).c_str(), departments.empty() ? "" : ", departments: [",
              departments.c_str(), departments.empty() ? "" : "]", auth::TokenHash(token).c_str());
  return 0;
}

}  // namespace casebus::cli

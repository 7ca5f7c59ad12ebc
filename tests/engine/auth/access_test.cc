// engine/auth access file, tokens and rate limiter: every malformed entry is named with its
// line; a valid file maps each token (and nothing else) to its principal.

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "engine/auth/access.h"
#include "engine/config/loader.h"

namespace casebus::auth {
namespace {

std::shared_ptr<const v1::CityConfig> City() {
  static auto city = *config::LoadCityConfigFile(CASEBUS_SOURCE_DIR "/deploy/config/sample-city.yaml");
  return city;
}

Result<std::shared_ptr<const Access>> LoadText(const std::string& yaml) {
  return Access::Load(yaml, "access.yaml", *City(), "/nonexistent");
}

TEST(AccessTest, TokensMapToTheirPrincipalsOnly) {
  const std::string op = NewToken(), dept = NewToken();
  auto a = LoadText("tokens:\n  - {name: op-zhang, role: operator, sha256: " + TokenHash(op) +
                    "}\n  - {name: water, role: department, departments: [water-supply], sha256: " + TokenHash(dept) +
                    "}\n");
  ASSERT_TRUE(a.has_value()) << a.error().ToString();
  const v1::Caller* c = (*a)->FindToken(op);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->name(), "op-zhang");
  EXPECT_EQ(c->role(), v1::OPERATOR);
  c = (*a)->FindToken(dept);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->role(), v1::DEPARTMENT);
  ASSERT_EQ(c->departments_size(), 1);
  EXPECT_EQ(c->departments(0), "water-supply");
  EXPECT_EQ((*a)->FindToken(""), nullptr);
  EXPECT_EQ((*a)->FindToken(TokenHash(op)), nullptr);  // the hash is not the token
  EXPECT_EQ((*a)->FindToken(op + "x"), nullptr);
  EXPECT_EQ((*a)->FindToken(op.substr(0, op.size() - 1)), nullptr);
  EXPECT_EQ((*a)->FindToken(std::string(100000, 'a')), nullptr);
  EXPECT_FALSE(Access::Empty()->has_tokens());
  EXPECT_EQ(Access::Empty()->FindToken(op), nullptr);
}

TEST(AccessTest, EveryMistakeIsNamedWithItsLine) {
  const std::string h = TokenHash("x");
  struct Case {
    std::string yaml;
    std::string want;  // in the message
  };
  const std::vector<Case> cases = {
      {"tokens:\n  - {role: operator, sha256: " + h + "}\n", "access.yaml:2: tokens[0].name: required"},
      {"tokens:\n  - {name: a, sha256: " + h + "}\n", "tokens[0].role: required"},
      {"tokens:\n  - {name: a, role: operator}\n", "tokens[0].sha256: required"},
      {"tokens:\n  - {name: a, role: operator, sha256: ABC}\n", "tokens[0].sha256"},
      {"tokens:\n  - {name: a, role: operator, sha256: " + std::string(64, 'G') + "}\n", "tokens[0].sha256"},
      {"tokens:\n  - {name: a, role: department, sha256: " + h + "}\n", "tokens[0].departments: required"},
      {"tokens:\n  - {name: a, role: operator, departments: [water-supply], sha256: " + h + "}\n",
       "only role department"},
      {"tokens:\n  - {name: a, role: department, departments: [nowhere], sha256: " + h + "}\n",
       "tokens[0].departments[0]: \"nowhere\" is not a department"},
      {"tokens:\n  - {name: a, role: operator, sha256: " + h + "}\n  - {name: a, role: leader, sha256: " +
           TokenHash("y") + "}\n",
       "tokens[1].name: \"a\" is used twice"},
      {"tokens:\n  - {name: a, role: operator, sha256: " + h + "}\n  - {name: b, role: leader, sha256: " + h + "}\n",
       "tokens[1].sha256: the same token hash appears twice"},
      {"tokens:\n  - {name: a, role: superuser, sha256: " + h + "}\n", "tokens[0].role"},
      {"tokkens: []\n", "tokkens"},
      {"tokens: [\n", "access.yaml"},
      {"curve_clients:\n  - {name: g, role: operator, public_key: short}\n", "curve_clients[0].public_key"},
      {"curve_clients:\n  - {name: g, role: operator, public_key: \"" + std::string(40, 'a') + "\"}\n",
       "curve_secret_key_file: required"},
      {"curve_secret_key_file: missing.key\n", "curve_secret_key_file"},
      {"rate_per_second: -1\n", "rate_per_second"},
  };
  for (const auto& c : cases) {
    auto a = LoadText(c.yaml);
    ASSERT_FALSE(a.has_value()) << c.yaml;
    EXPECT_NE(a.error().message().find(c.want), std::string::npos) << c.yaml << "\n→ " << a.error().message();
  }
}

TEST(AccessTest, HostileFilesAreRefusedNotCrashedOn) {
  EXPECT_FALSE(LoadText(std::string(5 << 20, ' ')).has_value());           // oversized
  EXPECT_FALSE(LoadText(std::string(10000, '[')).has_value());              // deep
  EXPECT_FALSE(LoadText("tokens: *x\n").has_value());                       // undefined alias
  EXPECT_FALSE(LoadText(std::string("tokens:\n  - {name: \"\\0\"}\n")).has_value());
  auto empty = LoadText("");  // an empty file is a mistake, not "nobody"
  ASSERT_FALSE(empty.has_value());
  EXPECT_NE(empty.error().message().find("access.yaml"), std::string::npos) << empty.error().message();
  EXPECT_TRUE(LoadText("tokens: []\n").has_value());  // no credentials, said on purpose
}

TEST(AccessTest, CurveSecretKeyIsReadFromItsFile) {
  char dir[] = "/tmp/casebus-access-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";  // 40 Z85 characters
  std::ofstream(std::string(dir) + "/intake.key") << key << "\n";
  const std::string client = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  std::ofstream(std::string(dir) + "/access.yaml")
      << "curve_secret_key_file: intake.key\ncurve_clients:\n  - {name: gw, role: operator, public_key: \"" << client
      << "\"}\n";
  auto a = Access::LoadFile(std::string(dir) + "/access.yaml", *City());
  ASSERT_TRUE(a.has_value()) << a.error().ToString();
  EXPECT_TRUE((*a)->has_curve());
  EXPECT_EQ((*a)->curve_secret_key(), key);
  ASSERT_NE((*a)->FindCurveKey(client), nullptr);
  EXPECT_EQ((*a)->FindCurveKey(client)->name(), "gw");
  EXPECT_EQ((*a)->FindCurveKey(key), nullptr);
  std::filesystem::remove_all(dir);
}

TEST(AccessTest, TokensAreLongRandomAndHashedAsDocumented) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string t = NewToken();
    EXPECT_EQ(t.size(), 4u + 43u) << t;
    EXPECT_EQ(t.rfind("cbt_", 0), 0u);
    EXPECT_EQ(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 4),
              std::string::npos);
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 1000u);
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  EXPECT_EQ(TokenHash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AccessTest, RateLimiterRefillsAtItsRate) {
  RateLimiter limiter;
  Millis retry = 0;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.Take("a", 5, 10, 1000, &retry)) << i;
  EXPECT_FALSE(limiter.Take("a", 5, 10, 1000, &retry));
  EXPECT_GT(retry, 0);
  EXPECT_LE(retry, 201);
  EXPECT_TRUE(limiter.Take("b", 5, 10, 1000, &retry));  // another principal: its own bucket
  EXPECT_FALSE(limiter.Take("a", 5, 10, 1100, &retry));  // 0.5 of a request refilled
  EXPECT_TRUE(limiter.Take("a", 5, 10, 1200, &retry));   // 1 refilled
  EXPECT_FALSE(limiter.Take("a", 5, 10, 1200, &retry));
  EXPECT_FALSE(limiter.Take("a", 5, 10, 500, &retry));   // the clock going back refills nothing
  int taken = 0;
  while (limiter.Take("a", 5, 10, 100000, &retry)) ++taken;
  EXPECT_EQ(taken, 10);  // never more than the burst
}

}  // namespace
}  // namespace casebus::auth

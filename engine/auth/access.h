#pragma once
// Access: the credentials the edges accept and the principal each one stands for, loaded from
// the access file (`serve --access FILE`, YAML of casebus.v1.AccessConfig):
//
//   tokens:
//     - {name: op-zhang,  role: operator,   sha256: 3f0c…}   # hash of the bearer token
//     - {name: water-co,  role: department, departments: [city-water], sha256: 9a41…}
//   curve_secret_key_file: intake.key      # relative to the access file
//   curve_clients:
//     - {name: gateway-1, role: operator, public_key: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}
//
// Tokens are 256-bit random strings (NewToken, `casebus token new`); only their SHA-256 is
// kept, so the file reveals none. An immutable snapshot, replaced whole on reload.
// RateLimiter: a token bucket per principal, kept across reloads.
// Thread safety: Access is immutable; RateLimiter is internally locked.

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "casebus/v1/access.pb.h"
#include "casebus/v1/config.pb.h"
#include "engine/base/clock.h"
#include "engine/base/status.h"

namespace casebus::auth {

class Access {
 public:
  // No credentials at all: every authenticated route answers 401.
  static std::shared_ptr<const Access> Empty();
  // Parses and checks the file's text against the city (departments must exist). Errors list
  // every problem as "FILE:LINE: path: reason". base_dir resolves curve_secret_key_file.
  static Result<std::shared_ptr<const Access>> Load(std::string_view yaml, std::string_view source_name,
                                                    const v1::CityConfig& city,
                                                    const std::string& base_dir);
  static Result<std::shared_ptr<const Access>> LoadFile(const std::string& path,
                                                        const v1::CityConfig& city);

  // The principal a presented bearer token stands for; nullptr when it is no known token.
  const v1::Caller* FindToken(std::string_view token) const;
  // The principal for a CURVE client public key (Z85); nullptr when not allowed.
  const v1::Caller* FindCurveKey(std::string_view public_key_z85) const;
  bool has_tokens() const { return !by_hash_.empty(); }
  bool has_curve() const { return !curve_secret_.empty(); }
  const std::string& curve_secret_key() const { return curve_secret_; }  // Z85
  double rate_per_second() const { return rate_; }
  double burst() const { return burst_; }
  const v1::AccessConfig& config() const { return config_; }

 private:
  v1::AccessConfig config_;
  std::unordered_map<std::string, v1::Caller> by_hash_;  // token SHA-256 (raw 32 bytes)
  std::unordered_map<std::string, v1::Caller> by_curve_key_;
  std::string curve_secret_;
  double rate_ = 50;
  double burst_ = 100;
};

// A fresh bearer token: "cbt_" and 43 base64url characters (256 random bits).
std::string NewToken();
// Lower-case hex SHA-256 of a token, as the access file keeps it.
std::string TokenHash(std::string_view token);

class RateLimiter {
 public:
  // Takes one request from `who`'s bucket (rate per second, holding at most burst). false:
  // the bucket is empty; retry_after_ms says when the next request may go.
  bool Take(const std::string& who, double rate, double burst, Millis now, Millis* retry_after_ms);

 private:
  struct Bucket {
    double tokens;
    Millis at;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace casebus::auth

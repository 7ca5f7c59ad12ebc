#include "engine/auth/access.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/auth/policy.h"
#include "engine/config/problems.h"
#include "engine/config/yaml_reader.h"

namespace casebus::auth {
namespace {

constexpr size_t kMaxAccessBytes = 4 << 20;
constexpr std::string_view kZ85 =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

std::string Sha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool IsZ85Key(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return kZ85.find(c) != kZ85.npos; });
}

// 64 lower-case hex digits → 32 bytes; empty on anything else.
std::string FromHex(std::string_view hex) {
  if (hex.size() != 64) return {};
  std::string out;
  for (size_t i = 0; i < 64; i += 2) {
    auto nib = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
    const int hi = nib(hex[i]), lo = nib(hex[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// The checks a token and a CURVE client share: name, role, departments.
template <typename Entry>
void CheckPrincipal(const Entry& e, const std::string& path, const std::set<std::string>& departments,
                    std::set<std::string>& names, const config::SourceLines& lines,
                    config::Problems& problems) {
  if (e.name().empty() || e.name().size() > 64)
    problems.Add(lines, path + ".name", "required, 1..64 bytes");
  else if (!names.insert(e.name()).second)
    problems.Add(lines, path + ".name", "\"" + e.name() + "\" is used twice; each credential needs its own name");
  if (e.role() == v1::ROLE_UNSPECIFIED)
    problems.Add(lines, path + ".role", "required: operator, dispatcher, department, leader, admin or reporter");
  if (e.role() == v1::DEPARTMENT && e.departments().empty())
    problems.Add(lines, path + ".departments", "required for role department: the departments it acts for");
  if (e.role() != v1::DEPARTMENT && !e.departments().empty())
    problems.Add(lines, path + ".departments", "only role department acts for departments");
  for (int i = 0; i < e.departments_size(); ++i)
    if (!departments.count(e.departments(i)))
      problems.Add(lines, path + ".departments[" + std::to_string(i) + "]",
                   "\"" + e.departments(i) + "\" is not a department of the city");
}

v1::Caller CallerOf(const auto& e) {
  v1::Caller c;
  c.set_name(e.name());
  c.set_role(e.role());
  *c.mutable_departments() = e.departments();
  return c;
}

Result<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Err(Status::NotFound(path + ": cannot open"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > limit) return Err(Status::InvalidArgument(path + ": larger than " + std::to_string(limit) + " bytes"));
  return text;
}

}  // namespace

std::shared_ptr<const Access> Access::Empty() {
  static const auto empty = std::shared_ptr<const Access>(new Access());
  return empty;
}

Result<std::shared_ptr<const Access>> Access::Load(std::string_view yaml, std::string_view source_name,
                                                   const v1::CityConfig& city, const std::string& base_dir) {
  auto access = std::shared_ptr<Access>(new Access());
  config::SourceLines lines;
  config::Problems problems(source_name);
  if (yaml.size() > kMaxAccessBytes) {
    problems.Add(0, "", "larger than 4 MiB");
    return Err(problems.ToStatus());
  }
  config::ReadYaml(yaml, access->config_, lines, problems);
  if (!problems.empty()) return Err(problems.ToStatus());
  const v1::AccessConfig& cfg = access->config_;
  std::set<std::string> departments;
  for (const auto& d : city.departments()) departments.insert(d.id());
  std::set<std::string> names;
  for (int i = 0; i < cfg.tokens_size(); ++i) {
    const auto& t = cfg.tokens(i);
    const std::string path = "tokens[" + std::to_string(i) + "]";
    CheckPrincipal(t, path, departments, names, lines, problems);
    const std::string hash = FromHex(t.sha256());
    if (hash.empty())
      problems.Add(lines, path + ".sha256", "required: 64 lower-case hex digits (casebus token new prints it)");
    else if (!access->by_hash_.emplace(hash, CallerOf(t)).second)
      problems.Add(lines, path + ".sha256", "the same token hash appears twice");
  }
  std::set<std::string> curve_names;
  for (int i = 0; i < cfg.curve_clients_size(); ++i) {
    const auto& c = cfg.curve_clients(i);
    const std::string path = "curve_clients[" + std::to_string(i) + "]";
    CheckPrincipal(c, path, departments, curve_names, lines, problems);
    if (!IsZ85Key(c.public_key()))
      problems.Add(lines, path + ".public_key", "required: a CURVE public key, 40 Z85 characters");
    else if (!access->by_curve_key_.emplace(c.public_key(), CallerOf(c)).second)
      problems.Add(lines, path + ".public_key", "the same key appears twice");
  }
  if (!cfg.curve_clients().empty() && cfg.curve_secret_key_file().empty())
    problems.Add(lines, "curve_secret_key_file", "required when curve_clients are listed");
  if (!cfg.curve_secret_key_file().empty()) {
    std::string path = cfg.curve_secret_key_file();
    if (path.front() != '/' && !base_dir.empty()) path = base_dir + "/" + path;
    auto text = ReadSmallFile(path, 4096);
    if (!text) {
      problems.Add(lines, "curve_secret_key_file", text.error().message());
    } else {
      std::string key = *text;
      key.erase(std::remove_if(key.begin(), key.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }), key.end());
      if (!IsZ85Key(key))
        problems.Add(lines, "curve_secret_key_file", path + " does not hold a CURVE secret key (40 Z85 characters)");
      else
        access->curve_secret_ = key;
    }
  }
  if (cfg.rate_per_second() < 0 || cfg.rate_per_second() > 1e6)
    problems.Add(lines, "rate_per_second", "must be 0 (the default, 50) .. 1,000,000");
  if (cfg.burst() > 1000000) problems.Add(lines, "burst", "must be at most 1,000,000");
  if (!problems.empty()) return Err(problems.ToStatus());
  if (cfg.rate_per_second() > 0) access->rate_ = cfg.rate_per_second();
  if (cfg.burst() > 0) access->burst_ = cfg.burst();
  return std::shared_ptr<const Access>(std::move(access));
}

Result<std::shared_ptr<const Access>> Access::LoadFile(const std::string& path, const v1::CityConfig& city) {
  auto text = ReadSmallFile(path, kMaxAccessBytes);
  if (!text) return Err(text.error());
  const size_t slash = path.rfind('/');
  return Load(*text, path, city, slash == std::string::npos ? "." : path.substr(0, slash));
}

const v1::Caller* Access::FindToken(std::string_view token) const {
  if (token.empty() || token.size() > 256) return nullptr;
  auto it = by_hash_.find(Sha256(token));
  return it == by_hash_.end() ? nullptr : &it->second;
}

const v1::Caller* Access::FindCurveKey(std::string_view key) const {
  auto it = by_curve_key_.find(std::string(key));
  return it == by_curve_key_.end() ? nullptr : &it->second;
}

std::string NewToken() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no randomness for a token");
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out = "cbt_";
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : raw) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kB64[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kB64[(acc << (6 - bits)) & 63]);
  return out;
}

std::string TokenHash(std::string_view token) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : Sha256(token)) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

bool RateLimiter::Take(const std::string& who, double rate, double burst, Millis now, Millis* retry_after_ms) {
  std::lock_guard lock(mu_);
  if (buckets_.size() > 100000) buckets_.clear();  // bounded: only known principals reach here
  auto [it, fresh] = buckets_.try_emplace(who, Bucket{burst, now});
  Bucket& b = it->second;
  if (!fresh && now > b.at) b.tokens = std::min(burst, b.tokens + rate * static_cast<double>(now - b.at) / 1000.0);
  b.at = std::max(b.at, now);
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  if (retry_after_ms) *retry_after_ms = static_cast<Millis>((1.0 - b.tokens) / rate * 1000.0) + 1;
  return false;
}

}  // namespace casebus::auth

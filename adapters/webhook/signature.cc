#include "adapters/webhook/signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <memory>

namespace casebus::webhook {
namespace {

constexpr std::string_view kIdHeader = "webhook-id";
constexpr std::string_view kTimestampHeader = "webhook-timestamp";
constexpr std::string_view kSignatureHeader = "webhook-signature";
// Beyond this the receiver's clock is broken, and now + window could overflow.
constexpr int64_t kMaxNowS = std::numeric_limits<int64_t>::max() / 2;

using Digest = std::array<unsigned char, 32>;

Status HeaderError(std::string_view header, const std::string& reason) {
  return Status::InvalidArgument(std::string(header) + ": " + reason, std::string(header));
}

Status SecretError(const std::string& reason) {
  return Status::InvalidArgument("webhook secret " + reason, "secret");
}

// HMAC-SHA256 fails only without memory or with a broken OpenSSL install; Sign's contract has
// no error to report that with, and nothing sensible can continue.
[[noreturn]] void DieOpenSsl(const char* what) {
  std::fprintf(stderr, "casebus::webhook: OpenSSL %s failed\n", what);
  std::abort();
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

Digest HmacSha256(std::string_view key, std::initializer_list<std::string_view> parts) {
  // An EVP_MAC is immutable once fetched and may be shared by threads; fetch it once.
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  if (hmac == nullptr) DieOpenSsl("EVP_MAC_fetch(HMAC)");
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(EVP_MAC_CTX_new(hmac),
                                                                &EVP_MAC_CTX_free);
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_init(ctx.get(), Bytes(key), key.size(), params) != 1) {
    DieOpenSsl("EVP_MAC_init");
  }
  for (std::string_view part : parts) {
    if (!part.empty() && EVP_MAC_update(ctx.get(), Bytes(part), part.size()) != 1) {
      DieOpenSsl("EVP_MAC_update");
    }
  }
  Digest out;
  size_t n = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &n, out.size()) != 1 || n != out.size()) {
    DieOpenSsl("EVP_MAC_final");
  }
  return out;
}

std::string Base64(const Digest& bytes) {
  // EVP_EncodeBlock writes 4 characters per 3 bytes, padded, and a terminating NUL.
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// `offset` is where `b64` starts in the text the user gave, for the error message.
Result<std::string> DecodeKey(std::string_view b64, size_t offset) {
  const size_t data_len = b64.find_last_not_of('=') + 1;  // npos + 1 == 0: all padding
  const size_t pad = b64.size() - data_len;
  for (size_t i = 0; i < data_len; ++i) {
    if (!IsBase64Char(b64[i])) {
      return Err(SecretError("is not base64: the character at offset " +
                             std::to_string(offset + i) +
                             " is outside the standard base64 alphabet"));
    }
  }
  if (data_len == 0 || pad > 2 || data_len % 4 == 1 || (pad > 0 && b64.size() % 4 != 0)) {
    return Err(SecretError("is not base64: " + std::to_string(b64.size()) +
                           " characters after any whsec_ prefix is not a valid length or "
                           "padding"));
  }
  const size_t key_bytes = data_len * 3 / 4;
  if (key_bytes < kMinSecretBytes || key_bytes > kMaxSecretBytes) {
    return Err(SecretError("decodes to " + std::to_string(key_bytes) + " bytes; a key must be " +
                           std::to_string(kMinSecretBytes) + " to " +
                           std::to_string(kMaxSecretBytes) + " bytes"));
  }
  // EVP_DecodeBlock wants whole 4-character groups, and counts each '=' as a decoded zero
  // byte; pad the text to a whole group and cut the output to the real key length.
  std::string padded(b64.substr(0, data_len));
  padded.append((4 - data_len % 4) % 4, '=');
  std::string key(padded.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()), Bytes(padded),
                                static_cast<int>(padded.size()));
  OPENSSL_cleanse(padded.data(), padded.size());
  if (n < 0 || static_cast<size_t>(n) < key_bytes) {
    OPENSSL_cleanse(key.data(), key.size());
    return Err(SecretError("is not base64"));
  }
  key.resize(key_bytes);
  return key;
}

Status CheckId(std::string_view id) {
  if (id.empty()) return HeaderError(kIdHeader, "missing");
  if (id.size() > kMaxIdBytes) {
    return HeaderError(kIdHeader, std::to_string(id.size()) + " bytes; at most " +
                                      std::to_string(kMaxIdBytes) + " are allowed");
  }
  for (size_t i = 0; i < id.size(); ++i) {
    if (id[i] < 0x21 || id[i] > 0x7e) {
      return HeaderError(kIdHeader, "the byte at offset " + std::to_string(i) +
                                        " is not printable ASCII (space excluded)");
    }
  }
  return Status::Ok();
}

Result<int64_t> ParseTimestamp(std::string_view text) {
  if (text.empty()) return Err(HeaderError(kTimestampHeader, "missing"));
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Err(HeaderError(kTimestampHeader, "not Unix seconds; only the digits 0-9 are allowed"));
  }
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Err(HeaderError(kTimestampHeader, "does not fit in a 64-bit integer"));
  }
  return value;
}

// REQUIRES: 0 <= timestamp_s, 0 <= now_s <= kMaxNowS, so the difference cannot overflow.
Status CheckFreshness(int64_t timestamp_s, int64_t now_s, int64_t tolerance_s) {
  const int64_t age = now_s - timestamp_s;
  const std::string tolerance = "; the tolerance is " + std::to_string(tolerance_s) + " s";
  if (age > tolerance_s) {
    return HeaderError(kTimestampHeader,
                       "expired, " + std::to_string(age) + " s older than now" + tolerance);
  }
  if (-age > tolerance_s) {
    return HeaderError(kTimestampHeader,
                       "from the future, " + std::to_string(-age) + " s ahead of now" + tolerance);
  }
  return Status::Ok();
}

// The signatures of the v1 entries in a webhook-signature value; other versions are skipped.
Result<std::vector<std::string_view>> V1Signatures(std::string_view header) {
  std::vector<std::string_view> v1;
  size_t entries = 0;
  for (size_t pos = 0; pos < header.size();) {
    const size_t end = std::min(header.find(' ', pos), header.size());
    const std::string_view entry = header.substr(pos, end - pos);
    pos = end + 1;
    if (entry.empty()) continue;
    ++entries;
    const size_t comma = entry.find(',');
    if (comma != std::string_view::npos && entry.substr(0, comma) == "v1") {
      v1.push_back(entry.substr(comma + 1));
    }
  }
  if (entries == 0) return Err(HeaderError(kSignatureHeader, "missing or empty"));
  if (v1.empty()) {
    return Err(HeaderError(
        kSignatureHeader, "none of its " + std::to_string(entries) + " entries is a v1 signature"));
  }
  return v1;
}

bool AnyMatches(const std::vector<std::string_view>& given,
                const std::vector<std::string>& expected) {
  bool match = false;
  for (std::string_view g : given) {
    for (const std::string& e : expected) {
      // Lengths are public (every v1 signature is 44 characters); the bytes are not.
      match |= g.size() == e.size() && CRYPTO_memcmp(g.data(), e.data(), e.size()) == 0;
    }
  }
  return match;
}

VerifierOptions Clamped(VerifierOptions options) {
  options.tolerance_s = std::clamp<int64_t>(options.tolerance_s, 0, kMaxWindowS);
  options.replay_window_s = std::clamp<int64_t>(options.replay_window_s, 0, kMaxWindowS);
  return options;
}

// The base64 part of a v1 signature.
std::string V1Mac(const Secret& secret, std::string_view msg_id, int64_t timestamp_s,
                  std::string_view body) {
  const std::string timestamp = std::to_string(timestamp_s);
  return Base64(HmacSha256(secret.key(), {msg_id, ".", timestamp, ".", body}));
}

}  // namespace

Result<Secret> ParseSecret(std::string_view text) {
  if (text.empty()) return Err(SecretError("is empty"));
  const size_t offset = text.starts_with(kSecretPrefix) ? kSecretPrefix.size() : 0;
  if (offset == text.size()) return Err(SecretError("has nothing after the whsec_ prefix"));
  Result<std::string> key = DecodeKey(text.substr(offset), offset);
  if (!key) return Err(key.error());
  return Secret(std::move(*key));
}

std::string Sign(const Secret& secret, std::string_view msg_id, int64_t timestamp_s,
                 std::string_view body) {
  return "v1," + V1Mac(secret, msg_id, timestamp_s, body);
}

std::string SignatureHeader(const std::vector<Secret>& secrets, std::string_view msg_id,
                            int64_t timestamp_s, std::string_view body) {
  std::string header;
  for (const Secret& secret : secrets) {
    if (!header.empty()) header += ' ';
    header += Sign(secret, msg_id, timestamp_s, body);
  }
  return header;
}

Verifier::Verifier(std::vector<Secret> secrets, VerifierOptions options)
    : secrets_(std::move(secrets)), options_(Clamped(options)) {}

Result<int64_t> Verifier::Authenticate(std::string_view webhook_id,
                                       std::string_view webhook_timestamp,
                                       std::string_view webhook_signature, std::string_view body,
                                       int64_t now_s) const {
  if (secrets_.empty()) {
    return Err(Status::FailedPrecondition("webhook verifier has no secret configured"));
  }
  if (now_s < 0 || now_s > kMaxNowS) {
    return Err(Status::Internal("receiver clock reads " + std::to_string(now_s) +
                                " s, not a plausible Unix time"));
  }
  if (Status s = CheckId(webhook_id); !s.ok()) return Err(s);
  Result<int64_t> timestamp = ParseTimestamp(webhook_timestamp);
  if (!timestamp) return timestamp;
  Result<std::vector<std::string_view>> given = V1Signatures(webhook_signature);
  if (!given) return Err(given.error());
  if (Status s = CheckFreshness(*timestamp, now_s, options_.tolerance_s); !s.ok()) return Err(s);

  std::vector<std::string> expected;
  expected.reserve(secrets_.size());
  for (const Secret& secret : secrets_) {
    expected.push_back(V1Mac(secret, webhook_id, *timestamp, body));
  }
  if (!AnyMatches(*given, expected)) {
    return Err(HeaderError(kSignatureHeader,
                           "no v1 signature matches the message under any configured secret"));
  }
  return timestamp;
}

Status Verifier::RefuseIfRemembered(std::string_view webhook_id, int64_t now_s) const {
  const auto it = ids_.find(webhook_id);
  if (it == ids_.end() || it->second->first < now_s) return Status::Ok();
  return Status::AlreadyExists(std::string(kIdHeader) + ": \"" + std::string(webhook_id) +
                               "\" was already accepted; refusing a replayed delivery");
}

void Verifier::DropExpired(int64_t now_s) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first < now_s) {
    ids_.erase(std::string_view(by_expiry_.begin()->second));
    by_expiry_.erase(by_expiry_.begin());
  }
}

Status Verifier::Verify(std::string_view webhook_id, std::string_view webhook_timestamp,
                        std::string_view webhook_signature, std::string_view body, int64_t now_s) {
  Result<int64_t> timestamp =
      Authenticate(webhook_id, webhook_timestamp, webhook_signature, body, now_s);
  if (!timestamp) return timestamp.error();
  // Keeping the id until its timestamp leaves the tolerance is what makes a verbatim replay
  // impossible; the replay window only lengthens that.
  const int64_t expiry =
      std::max(*timestamp + options_.tolerance_s, now_s + options_.replay_window_s);

  std::lock_guard<std::mutex> lock(mu_);
  DropExpired(now_s);
  CASEBUS_RETURN_IF_ERROR(RefuseIfRemembered(webhook_id, now_s));
  if (ids_.size() >= options_.max_remembered_ids) {
    return Status::Unavailable(std::string(kIdHeader) + ": the replay cache is full (" +
                               std::to_string(options_.max_remembered_ids) +
                               " ids); retry after older ids expire");
  }
  const auto node = by_expiry_.emplace(expiry, std::string(webhook_id));
  ids_.emplace(std::string_view(node->second), node);
  return Status::Ok();
}

Status Verifier::Check(std::string_view webhook_id, std::string_view webhook_timestamp,
                       std::string_view webhook_signature, std::string_view body,
                       int64_t now_s) const {
  Result<int64_t> timestamp =
      Authenticate(webhook_id, webhook_timestamp, webhook_signature, body, now_s);
  if (!timestamp) return timestamp.error();
  std::lock_guard<std::mutex> lock(mu_);
  return RefuseIfRemembered(webhook_id, now_s);
}

void Verifier::Forget(std::string_view webhook_id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = ids_.find(webhook_id);
  if (it == ids_.end()) return;
  const auto node = it->second;
  ids_.erase(it);  // before the node, whose string its key views
  by_expiry_.erase(node);
}

size_t Verifier::remembered_ids() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ids_.size();
}

}  // namespace casebus::webhook

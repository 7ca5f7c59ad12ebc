#include "engine/base/audit_chain.h"

#include <openssl/evp.h>

namespace casebus {

namespace {

// SHA-256 fetched once, and one digest context per thread: OpenSSL 3 looks the algorithm up
// on every EVP_sha256() init, which costs more than hashing a journal record.
struct Sha256 {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  ~Sha256() { EVP_MD_free(md); }
};
const EVP_MD* Md() {
  static Sha256 sha;
  return sha.md;
}
struct Ctx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

std::string AuditLink(uint64_t seq, std::string_view record_bytes) {
  unsigned char be[8];
  for (int i = 0; i < 8; ++i) be[i] = static_cast<unsigned char>(seq >> (56 - 8 * i));
  thread_local Ctx c;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestInit_ex2(c.ctx, Md(), nullptr);
  EVP_DigestUpdate(c.ctx, be, sizeof be);
  EVP_DigestUpdate(c.ctx, record_bytes.data(), record_bytes.size());
  EVP_DigestFinal_ex(c.ctx, out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Hex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

}  // namespace casebus

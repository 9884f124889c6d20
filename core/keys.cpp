#include "core/keys.hpp"

#include "core/encoding.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace core {

namespace {

// 16 bytes as an RFC 4122 version 4 UUID (8-4-4-4-12 hex digits), written in place: one
// allocation, the string itself (a request id is made for every request).
std::string uuid_v4_text(std::array<unsigned char, 16> b) {
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  const std::string_view bytes(reinterpret_cast<const char*>(b.data()), b.size());
  std::string id(36, '-');
  char* p = id.data();
  std::size_t from = 0;
  for (const std::size_t n : {4, 2, 2, 2, 6}) {
    if (from != 0) ++p;  // over the dash
    p = hex_encode_to(p, bytes.substr(from, n));
    from += n;
  }
  return id;
}

}  // namespace

std::string generate_uuid_v4() {
  std::array<unsigned char, 16> b{};
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1)
    throw std::runtime_error("RAND_bytes failed");  // no entropy: not an expected failure
  return uuid_v4_text(b);
}

std::string generate_request_id() {
  // splitmix64 over a random 64-bit start: distinct outputs for 2^64 calls per thread.
  thread_local std::uint64_t state = [] {
    std::uint64_t seed = 0;
    RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed);
    return seed;
  }();
  auto next = [] {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  std::array<unsigned char, 16> b{};
  const std::uint64_t hi = next(), lo = next();
  std::memcpy(b.data(), &hi, 8);
  std::memcpy(b.data() + 8, &lo, 8);
  return uuid_v4_text(b);
}

std::string generate_user_key() {
  return "sk-" + generate_uuid_v4();
}

bool is_uuid(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

bool valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[32];
  unsigned int len = 0;
  // Fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up in its provider store on
  // every call (a lock and a hash lookup), and this runs for every authenticated request.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  // One context per thread, reused: EVP_Digest would allocate and free one per call.
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                                 &EVP_MD_CTX_free);
  const EVP_MD* type = sha256 ? sha256 : EVP_sha256();
  if (!ctx || EVP_DigestInit_ex(ctx.get(), type, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), md, &len) != 1)
    EVP_Digest(data.data(), data.size(), md, &len, type, nullptr);
  return hex_encode({reinterpret_cast<const char*>(md), len});
}

std::string key_prefix(std::string_view key) {
  return std::string(key.substr(0, 11));
}

std::string mask_secret(std::string_view s) {
  if (s.size() < 12) return "****";
  return std::string(s.substr(0, 4)) + "..." + std::string(s.substr(s.size() - 4));
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  // Hash both so the comparison length never depends on the secret's length.
  unsigned char ha[32], hb[32];
  EVP_Digest(a.data(), a.size(), ha, nullptr, EVP_sha256(), nullptr);
  EVP_Digest(b.data(), b.size(), hb, nullptr, EVP_sha256(), nullptr);
  return CRYPTO_memcmp(ha, hb, sizeof ha) == 0 && a.size() == b.size();
}

std::string_view bearer_token(std::string_view h) noexcept {
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  constexpr std::string_view kScheme = "bearer ";
  if (h.size() <= kScheme.size()) return {};
  for (std::size_t i = 0; i < kScheme.size(); ++i)
    if ((h[i] | 0x20) != kScheme[i]) return {};
  h.remove_prefix(kScheme.size());
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  return h;
}

}  // namespace core

#include "core/crypto.hpp"

#include "core/encoding.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>

namespace core {
namespace {

constexpr int kNonce = 12;
constexpr int kTag = 16;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherCtx new_ctx() {
  return {EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free};
}

const unsigned char* u8(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* u8(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

}  // namespace

std::string seal(std::string_view key, std::string_view plaintext) {
  if (key.size() != 32) throw std::invalid_argument("AES-256 key must be 32 bytes");
  std::string out(kNonce + plaintext.size() + kTag, '\0');
  if (RAND_bytes(u8(out), kNonce) != 1) throw std::runtime_error("RAND_bytes failed");
  auto ctx = new_ctx();
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u8(key), u8(out)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), u8(out) + kNonce, &len, u8(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), u8(out) + kNonce + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, u8(out) + kNonce + plaintext.size()) != 1)
    throw std::runtime_error("AES-GCM encryption failed");
  return base64_encode(out);
}

Result<std::string> open(std::string_view key, std::string_view sealed_b64) {
  auto raw = base64_decode(sealed_b64);
  if (key.size() != 32 || !raw || raw->size() < kNonce + kTag) return Error{errc::internal, {}};
  const std::string_view all(*raw);
  const auto nonce = all.substr(0, kNonce);
  const auto body = all.substr(kNonce, all.size() - kNonce - kTag);
  std::string tag(all.substr(all.size() - kTag));
  std::string plain(body.size(), '\0');
  auto ctx = new_ctx();
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, u8(key), u8(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), u8(plain), &len, u8(body), static_cast<int>(body.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, u8(tag)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), u8(plain) + len, &len) != 1)
    return Error{errc::internal, {}};  // tampered, truncated, or wrong key
  return plain;
}

}  // namespace core

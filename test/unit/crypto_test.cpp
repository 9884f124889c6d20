#include "core/crypto.hpp"
#include "core/encoding.hpp"

#include <catch2/catch.hpp>

namespace {
const std::string kKey(32, '\x42');
}

TEST_CASE("crypto: AES-256-GCM round trip with a fresh nonce each time") {
  const std::string secret = "sk-proj-very-secret-provider-key";
  auto a = core::seal(kKey, secret);
  auto b = core::seal(kKey, secret);
  CHECK(a != b);  // random nonce
  CHECK(a.find(secret) == std::string::npos);
  auto opened = core::open(kKey, a);
  REQUIRE(opened);
  CHECK(*opened == secret);
  CHECK(*core::open(kKey, core::seal(kKey, "")) == "");
}

TEST_CASE("crypto: tampering, truncation and a wrong key are detected") {
  auto sealed = core::seal(kKey, "provider-key-123");
  auto raw = *core::base64_decode(sealed);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    auto t = raw;
    t[i] = static_cast<char>(t[i] ^ 1);
    CHECK_FALSE(core::open(kKey, core::base64_encode(t)));
  }
  CHECK_FALSE(core::open(kKey, core::base64_encode(raw.substr(0, raw.size() - 1))));
  CHECK_FALSE(core::open(std::string(32, '\x43'), sealed));
  CHECK_FALSE(core::open(kKey, "not base64 !!"));
}

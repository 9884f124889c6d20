#include "core/keys.hpp"
#include "core/encoding.hpp"

#include <catch2/catch.hpp>

#include <set>

TEST_CASE("keys: sk- + UUIDv4 format, unique") {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto k = core::generate_user_key();
    REQUIRE(k.size() == 39);
    CHECK(k.rfind("sk-", 0) == 0);
    CHECK(core::is_uuid(k.substr(3)));
    CHECK(k[3 + 14] == '4');                                          // version
    CHECK(std::string("89ab").find(k[3 + 19]) != std::string::npos);  // variant
    seen.insert(k);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("keys: sha256 known vector") {
  CHECK(core::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(core::sha256_hex("").size() == 64);
}

TEST_CASE("keys: uuid validation") {
  CHECK(core::is_uuid("3f1c9a4e-8b2d-4c6f-9a1e-2b3c4d5e6f70"));
  CHECK_FALSE(core::is_uuid("3f1c9a4e8b2d4c6f9a1e2b3c4d5e6f70"));
  CHECK_FALSE(core::is_uuid("3f1c9a4e-8b2d-4c6f-9a1e-2b3c4d5e6f7z"));
  CHECK_FALSE(core::is_uuid("not-a-uuid"));
}

TEST_CASE("keys: masking shows only the ends") {
  CHECK(core::mask_secret("sk-proj-abcdefghijklmnopwxyz") == "sk-p...wxyz");
  CHECK(core::mask_secret("short") == "****");
  CHECK(core::key_prefix("sk-3f1c9a4e-8b2d") == "sk-3f1c9a4e");
}

TEST_CASE("keys: constant-time equality") {
  CHECK(core::constant_time_equal("secret-admin-key", "secret-admin-key"));
  CHECK_FALSE(core::constant_time_equal("secret-admin-key", "secret-admin-kez"));
  CHECK_FALSE(core::constant_time_equal("secret", "secret-admin-key"));
  CHECK_FALSE(core::constant_time_equal("", "x"));
}

TEST_CASE("keys: bearer token extraction") {
  CHECK(core::bearer_token("Bearer sk-abc") == "sk-abc");
  CHECK(core::bearer_token("bearer   sk-abc  ") == "sk-abc");
  CHECK(core::bearer_token("Basic xyz").empty());
  CHECK(core::bearer_token("Bearer ").empty());
  CHECK(core::bearer_token("").empty());
}

TEST_CASE("encoding: hex and base64 round trips") {
  const std::string bytes("\x00\x01\xfe\xffhello", 9);
  CHECK(core::hex_decode(core::hex_encode(bytes)) == bytes);
  for (std::size_t n = 0; n < bytes.size(); ++n)
    CHECK(core::base64_decode(core::base64_encode(bytes.substr(0, n))) == bytes.substr(0, n));
  CHECK(core::base64_encode("foobar") == "Zm9vYmFy");
  CHECK(core::base64_encode("fo") == "Zm8=");
  CHECK_FALSE(core::base64_decode("a$bc"));
  CHECK_FALSE(core::hex_decode("abz0"));
}

TEST_CASE("keys: request ids are UUID-shaped and distinct") {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    auto id = core::generate_request_id();
    REQUIRE(core::is_uuid(id));
    CHECK(id[14] == '4');  // version 4, RFC 4122 variant
    CHECK(std::string_view("89ab").find(id[19]) != std::string_view::npos);
    seen.insert(std::move(id));
  }
  CHECK(seen.size() == 10000);
}

TEST_CASE("keys: request ids we accept") {
  CHECK(core::valid_request_id("req_abc-123.x:y"));
  CHECK(core::valid_request_id(std::string(128, 'a')));
  CHECK_FALSE(core::valid_request_id(std::string(129, 'a')));
  CHECK_FALSE(core::valid_request_id(""));
  CHECK_FALSE(core::valid_request_id("a b"));
  CHECK_FALSE(core::valid_request_id("a\xff"));
  CHECK_FALSE(core::valid_request_id("a/b"));
}

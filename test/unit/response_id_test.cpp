#include "core/response_id.hpp"

#include <catch2/catch.hpp>

namespace {
std::string scan(std::string_view body, std::size_t step) {
  core::FirstIdScanner s;
  for (std::size_t i = 0; i < body.size(); i += step) s.feed(body.substr(i, step));
  return s.found() ? s.id() : "";
}
}  // namespace

TEST_CASE("response id: found in a body and in a stream, whatever the read boundaries") {
  const std::string body = R"({"id":"resp_67ccd2bed1ec8190","object":"response","output":[{"id":"msg_1"}]})";
  const std::string stream =
      "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,"
      "\"response\":{\"id\" : \"resp_abc-123\",\"object\":\"response\"}}\n\n";
  for (std::size_t step : {std::size_t(1), std::size_t(2), std::size_t(5), std::size_t(1000)}) {
    CHECK(scan(body, step) == "resp_67ccd2bed1ec8190");
    CHECK(scan(stream, step) == "resp_abc-123");
  }
}

TEST_CASE("response id: look-alikes are skipped; an odd value does not count") {
  CHECK(scan(R"({"idx":"a","x":"\"id\"","id":"resp_1"})", 3) == "resp_1");
  CHECK(scan(R"({"id":7,"y":{"id":"resp_2"}})", 1) == "resp_2");
  CHECK(scan(R"({"id":"has space","id":"resp_3"})", 1) == "resp_3");
  CHECK(scan(R"({"id":""})", 1).empty());
  CHECK(scan(R"({"id":")" + std::string(200, 'a') + "\"}", 7).empty());
  core::FirstIdScanner s;
  s.feed(std::string(core::FirstIdScanner::kScanLimit + 1, ' '));
  s.feed(R"({"id":"late"})");
  CHECK_FALSE(s.found());
}

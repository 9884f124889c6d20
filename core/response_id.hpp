#pragma once
// Finds the id of a Responses API object in the bytes the relay forwards, without holding the body:
// the first "id" member is the response's id both in a body ({"id":"resp_...",...}) and in a stream
// (the first event, response.created, carries {"response":{"id":"resp_..."}}). Incremental (a
// match may span reads), gives up after the first kScanLimit bytes.
#include <cstddef>
#include <string>
#include <string_view>

namespace core {

class FirstIdScanner {
 public:
  static constexpr std::size_t kScanLimit = 64 * 1024;
  static constexpr std::size_t kMaxId = 128;

  void feed(std::string_view bytes) noexcept;
  bool found() const noexcept { return state_ == State::found; }
  const std::string& id() const noexcept { return id_; }

 private:
  enum class State : unsigned char { key, before_colon, before_value, value, found, gave_up };
  void restart(char c) noexcept;

  State state_ = State::key;
  std::size_t matched_ = 0;  // bytes of "\"id\"" matched so far
  std::size_t seen_ = 0;
  std::string id_;
};

}  // namespace core

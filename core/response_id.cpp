#include "core/response_id.hpp"

namespace core {
namespace {

constexpr std::string_view kKey = "\"id\"";

bool is_ws(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool id_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

}  // namespace

void FirstIdScanner::restart(char c) noexcept {
  state_ = State::key;
  id_.clear();
  matched_ = c == '"' ? 1 : 0;
}

void FirstIdScanner::feed(std::string_view bytes) noexcept {
  for (char c : bytes) {
    if (state_ == State::found || state_ == State::gave_up) return;
    if (++seen_ > kScanLimit) {
      state_ = State::gave_up;
      return;
    }
    switch (state_) {
      case State::key:
        if (c == kKey[matched_]) {
          if (++matched_ == kKey.size()) state_ = State::before_colon;
        } else {
          matched_ = c == '"' ? 1 : 0;
        }
        break;
      case State::before_colon:
        if (c == ':')
          state_ = State::before_value;
        else if (!is_ws(c))
          restart(c);
        break;
      case State::before_value:
        if (c == '"')
          state_ = State::value;
        else if (!is_ws(c))
          restart(c);
        break;
      case State::value:
        if (c == '"' && !id_.empty()) {
          state_ = State::found;
        } else if (id_char(c) && id_.size() < kMaxId) {
          id_.push_back(c);
        } else {
          restart(c);
        }
        break;
      case State::found:
      case State::gave_up:
        break;
    }
  }
}

}  // namespace core

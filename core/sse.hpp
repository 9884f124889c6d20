#pragma once
// Server-sent events, incrementally: bytes in, whole events out, however the reads split them.
// Bounded: an event longer than max_event is passed on in pieces, marked oversized, never held.
#include <cstddef>
#include <string>
#include <string_view>

namespace core {

struct SseEvent {
  std::string_view bytes;  // the whole event as received, its blank line included
  std::string_view event;  // the `event:` field, empty when absent
  std::string_view data;   // the first `data:` line's value (events here carry one)
  bool oversized = false;  // bytes is only a piece: the event was too long to keep whole
};

class SseSplitter {
 public:
  explicit SseSplitter(std::size_t max_event = 256 * 1024) : max_(max_event) {}

  // Feeds bytes; calls on_event(const SseEvent&) for every event completed by them. Views are valid
  // during the call only. Bytes of an incomplete event stay pending().
  template <class F>
  void feed(std::string_view in, F&& on_event);
  // What is held: the start of an event not yet complete.
  std::string_view pending() const noexcept { return held_; }
  // The stream ended: a last event without a blank line (if any) is delivered.
  template <class F>
  void finish(F&& on_event);

  // Splits one complete event's fields (exposed for tests).
  static SseEvent parse(std::string_view bytes);

 private:
  std::size_t max_;
  std::string held_;
  bool oversized_ = false;  // the held event overflowed: its rest is passed through too
};

// Where the blank line ending the first event in s ends (\n\n, \r\n\r\n, or mixed), or npos.
std::size_t sse_event_end(std::string_view s) noexcept;

template <class F>
void SseSplitter::feed(std::string_view in, F&& on_event) {
  while (!in.empty()) {
    std::size_t end;
    if (held_.empty()) {
      end = sse_event_end(in);
      if (end != std::string_view::npos) {  // a whole event inside this read: no copy
        SseEvent e = parse(in.substr(0, end));
        if (oversized_) {  // the tail of an event passed on in pieces: its fields are not here
          e = SseEvent{in.substr(0, end), {}, {}, true};
          oversized_ = false;
        }
        on_event(e);
        in.remove_prefix(end);
        continue;
      }
      held_.assign(in);
      in = {};
    } else {
      // The end may straddle the two: look across at most 3 held bytes.
      const std::size_t back = held_.size() < 3 ? held_.size() : 3;
      const std::size_t old = held_.size();
      const std::size_t take = in.size() < max_ ? in.size() : max_;
      held_.append(in.substr(0, take));
      end = sse_event_end(std::string_view(held_).substr(old - back));
      if (end != std::string_view::npos) {
        end += old - back;
        const std::string_view bytes = std::string_view(held_).substr(0, end);
        on_event(oversized_ ? SseEvent{bytes, {}, {}, true} : parse(bytes));
        in.remove_prefix(end - old);
        held_.clear();
        oversized_ = false;
        continue;
      }
      in.remove_prefix(take);
    }
    if (held_.size() > max_) {  // too long to keep: pass it on in pieces
      SseEvent piece;
      piece.bytes = held_;
      piece.oversized = true;
      on_event(piece);
      held_.clear();
      oversized_ = true;
    }
  }
}

template <class F>
void SseSplitter::finish(F&& on_event) {
  if (held_.empty()) return;
  on_event(oversized_ ? SseEvent{held_, {}, {}, true} : parse(held_));
  held_.clear();
  oversized_ = false;
}

}  // namespace core

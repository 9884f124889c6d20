#pragma once
// RESP encoding and incremental decoding. Replies are parsed by hiredis, so we never hand-roll the
// parser; a command is a plain array of bulk strings, encoded here (and tested against hiredis's
// encoder). Sockets and timing belong to Asio (see redis_client.hpp).
#include "cache/redis_reply.hpp"
#include "core/result.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisReader;

namespace cache {

// Appends one command in RESP form to `out`. Arguments are binary safe.
void encode_command(const std::vector<std::string>& args, std::string& out);

// Feed raw bytes, then pull complete replies. One parser per connection: it holds partial replies.
class ReplyParser {
 public:
  ReplyParser();
  ~ReplyParser();

  // Returns false on a protocol error (the connection must then be dropped).
  bool feed(const char* data, std::size_t n);
  // A complete reply, nullopt if more bytes are needed, or an error on a protocol violation.
  core::Result<std::optional<Reply>> next();

 private:
  struct Free {
    void operator()(redisReader* r) const noexcept;
  };
  std::unique_ptr<redisReader, Free> reader_;
};

}  // namespace cache

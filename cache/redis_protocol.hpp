#pragma once
// RESP encoding and incremental decoding. Replies are parsed by hiredis, so we never hand-roll the
// parser; a command is a plain array of bulk strings, encoded here (and tested against hiredis's
// encoder). Sockets and timing belong to Asio (see redis_client.hpp).
#include "cache/redis_reply.hpp"
#include "core/result.hpp"

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace cache {

// Appends one command in RESP form to `out`. Arguments are binary safe.
void encode_command(const std::vector<std::string>& args, std::string& out);

// Commands already in RESP form, back to back: for callers on the request path that write them in
// place (CommandWriter) rather than build a vector of strings per command.
struct EncodedCommands {
  std::string bytes;
  std::size_t count = 0;
};

// Writes one command into `out`: its argument count first, then exactly that many arguments.
class CommandWriter {
 public:
  CommandWriter(EncodedCommands& out, std::size_t args);
  ~CommandWriter();
  CommandWriter(const CommandWriter&) = delete;
  CommandWriter& operator=(const CommandWriter&) = delete;

  CommandWriter& arg(std::string_view a);
  CommandWriter& arg(std::int64_t n);                                       // in decimal
  CommandWriter& arg_parts(std::initializer_list<std::string_view> parts);  // one argument

 private:
  std::string& out_;
  std::size_t left_;
};

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

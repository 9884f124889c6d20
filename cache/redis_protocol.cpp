#include "cache/redis_protocol.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cassert>
#include <charconv>

namespace cache {

namespace {

// "*3\r\n" or "$5\r\n": a marker, a decimal count, CRLF.
void append_count(char marker, std::size_t n, std::string& out) {
  char buf[24];
  buf[0] = marker;
  char* end = std::to_chars(buf + 1, buf + sizeof buf - 2, n).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out.append(buf, static_cast<std::size_t>(end - buf));
}

// "$<len>\r\n<bytes>\r\n": one bulk string, made of `parts`.
void append_bulk(std::initializer_list<std::string_view> parts, std::string& out) {
  std::size_t size = 0;
  for (auto p : parts) size += p.size();
  append_count('$', size, out);
  for (auto p : parts) out.append(p);
  out.append("\r\n", 2);
}

}  // namespace

// RESP's request form is an array of bulk strings: "*<n>\r\n", then "$<len>\r\n<bytes>\r\n" per
// argument. Written here rather than by hiredis's redisFormatCommandArgv, which formats every
// length with sprintf and copies the command once more (about 2,000 instructions per argument: a
// limited key's two scripts cost 25,000 per request); a test holds the two to the same bytes.
void encode_command(const std::vector<std::string>& args, std::string& out) {
  std::size_t size = 16;
  for (const auto& a : args) size += a.size() + 16;
  if (out.capacity() - out.size() < size) out.reserve(std::max(out.size() + size, 2 * out.capacity()));
  append_count('*', args.size(), out);
  for (const auto& a : args) append_bulk({a}, out);
}

CommandWriter::CommandWriter(EncodedCommands& out, std::size_t args) : out_(out.bytes), left_(args) {
  ++out.count;
  append_count('*', args, out_);
}

// A command with fewer or more arguments than it announced would desynchronise the connection.
CommandWriter::~CommandWriter() {
  assert(left_ == 0);
}

CommandWriter& CommandWriter::arg(std::string_view a) {
  return arg_parts({a});
}

CommandWriter& CommandWriter::arg(std::int64_t n) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, n).ptr;
  return arg(std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

CommandWriter& CommandWriter::arg_parts(std::initializer_list<std::string_view> parts) {
  assert(left_ > 0);
  --left_;
  append_bulk(parts, out_);
  return *this;
}

void ReplyParser::Free::operator()(redisReader* r) const noexcept {
  redisReaderFree(r);
}

ReplyParser::ReplyParser() : reader_(redisReaderCreate()) {
  if (!reader_) throw std::bad_alloc();
}
ReplyParser::~ReplyParser() = default;

bool ReplyParser::feed(const char* data, std::size_t n) {
  return redisReaderFeed(reader_.get(), data, n) == REDIS_OK;
}

core::Result<std::optional<Reply>> ReplyParser::next() {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK)
    return core::Error{core::errc::cache_unavailable, "redis protocol error"};
  if (!raw) return std::optional<Reply>{};
  // Own the hiredis tree only long enough to copy it.
  std::unique_ptr<redisReply, void (*)(void*)> owned(static_cast<redisReply*>(raw), freeReplyObject);
  return std::optional<Reply>{to_reply(*owned)};
}

}  // namespace cache

#include "cache/redis_protocol.hpp"

#include <hiredis/hiredis.h>

namespace cache {

void encode_command(const std::vector<std::string>& args, std::string& out) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int n = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
  if (n < 0) throw std::bad_alloc();  // hiredis only fails here when out of memory
  out.append(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
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

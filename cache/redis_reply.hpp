#pragma once
// A Redis reply as a plain value type, so callers never see hiredis' C structures or own their memory.
#include <string>
#include <vector>

struct redisReply;

namespace cache {

struct Reply {
  enum class Type { string, array, integer, nil, status, error };
  Type type = Type::nil;
  std::string str;              // string, status and error payloads
  long long integer = 0;        // integer replies
  std::vector<Reply> elements;  // array replies

  bool is_error() const noexcept { return type == Type::error; }
};

// Deep-copies a hiredis reply tree (the caller still frees `r`).
Reply to_reply(const redisReply& r);

}  // namespace cache

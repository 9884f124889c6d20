#pragma once
// One request/response exchange within a client connection, as handlers see it.
#include "core/route_table.hpp"
#include "core/usage.hpp"
#include "gateway/deadlines.hpp"
#include "gateway/local_cache.hpp"
#include "gateway/read_buffer.hpp"
#include "gateway/request.hpp"
#include "gateway/response.hpp"
#include "gateway/session_list.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace gw {

struct Exchange {
  Exchange(Request& r, tcp::socket& c, ReadBuffer& in, Deadline& d, SessionEntry& s)
      : req(r), client(c), client_in(in), client_deadline(d), session(s) {}

  Request& req;
  tcp::socket& client;
  ReadBuffer& client_in;  // the connection's input buffer (the request's body has been read from it)
  Deadline& client_deadline;
  SessionEntry& session;
  Flavor flavor = Flavor::openai;
  core::PathParams params;
  std::string request_id;  // the one we answer with, log and send upstream
  KeyPtr key;              // the authenticated user key (/v1)

  // Set by handlers that write their own response (the streaming relay); the session then only
  // logs and decides whether the connection can be reused.
  bool responded = false;
  unsigned status = 0;
  bool keep_alive = true;

  // For the access log.
  std::string model;
  std::string upstream_request_id;
  std::string error;           // what went wrong, when something did (never a secret)
  std::string provider;        // the provider that answered
  std::string upstream_model;  // the name it was asked for
  struct Attempt {
    std::string provider;
    unsigned status = 0;  // 0: no response (connect / timeout / protocol)
    std::int64_t ms = 0;  // rounded
    std::string error;
  };
  std::vector<Attempt> attempts;
  const core::RouteTarget* served = nullptr;  // the route that answered (valid during the handler)
  bool stream = false;                        // the request asked for a stream
  core::Usage usage;                          // read from the response as it passed
  std::optional<double> cost;                 // USD, when the route's prices are known
  Clock::time_point first_body_at{};          // the first body byte went to the client
  std::chrono::system_clock::time_point received_at = std::chrono::system_clock::now();
  const Clock::time_point started = Clock::now();  // the same moment, for intervals

  Response fail(const core::Error& e) const { return error_response(flavor, e); }

  // A stream may hold the connection for minutes: meanwhile a client that sent nothing more holds no
  // input buffer (the next head gets a fresh one; the watch for a vanished client only peeks).
  void set_stream(bool s) {
    stream = s;
    if (s) client_in.release();
  }
};

}  // namespace gw

#include "core/relay_plan.hpp"

#include "core/http1_write.hpp"

namespace core::http1 {

RelayPlan plan_relay(const ResponseHead& up, const ClientView& client) {
  RelayPlan p;
  const bool streamed = client.version_minor == 1;  // 1.0: the body ends at close
  switch (up.framing) {
    case Framing::none:
      p.framing = Framing::none;
      p.length_header = up.status != 204 && up.status != 304;
      break;
    case Framing::length:
      if (!client.body_may_change) {
        p.framing = Framing::length;
        p.content_length = up.content_length;
        break;
      }
      [[fallthrough]];
    case Framing::chunked:
    case Framing::until_close:
      p.framing = streamed ? Framing::chunked : Framing::until_close;
      break;
  }
  p.keep_alive = client.keep_alive && p.framing != Framing::until_close;
  return p;
}

void render_relay_head(const ResponseHead& up, const RelayPlan& plan, int client_version_minor,
                       FieldFilter forward, std::span<const Field> extra, std::string& out) {
  HeadWriter w(out);
  w.status_line(client_version_minor, up.status, up.reason);
  // Forwarded lines go out as received, and adjacent ones (a provider's x-ratelimit-* block) in
  // one copy: `run` is the pending stretch of the received head.
  std::string_view run;
  const auto flush = [&] {
    out.append(run);
    run = {};
  };
  for (const auto& f : up.fields) {
    if (!forward(f.name)) continue;
    if (f.line.empty()) {
      flush();
      w.field(f.name, f.value);
    } else if (!run.empty() && run.data() + run.size() == f.line.data()) {
      run = std::string_view(run.data(), run.size() + f.line.size());
    } else {
      flush();
      run = f.line;
    }
  }
  flush();
  for (const auto& f : extra) w.field(f.name, f.value);
  if (plan.length_header) write_framing(w, plan.framing, plan.content_length);
  if (!plan.keep_alive)
    w.field("Connection", "close");
  else if (client_version_minor == 0)
    w.field("Connection", "keep-alive");
  w.end();
}

}  // namespace core::http1

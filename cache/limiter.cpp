#include "cache/limiter.hpp"

#include "cache/limiter_scripts.hpp"
#include "core/encoding.hpp"

#include <openssl/evp.h>

namespace cache {
namespace {

namespace net = boost::asio;
using core::errc;

std::string sha1_hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr);
  return core::hex_encode({reinterpret_cast<const char*>(md), len});
}

bool noscript(const Reply& r) {
  return r.is_error() && r.str.rfind("NOSCRIPT", 0) == 0;
}

std::int64_t int_at(const Reply& r, std::size_t i) {
  return i < r.elements.size() ? r.elements[i].integer : 0;
}

core::LimitReason reason_of(std::string_view s) {
  if (s == "rpm") return core::LimitReason::rpm;
  if (s == "rpd") return core::LimitReason::rpd;
  if (s == "tpm") return core::LimitReason::tpm;
  if (s == "max_parallel") return core::LimitReason::parallel;
  if (s == "token_budget") return core::LimitReason::token_budget;
  if (s == "budget_usd") return core::LimitReason::budget_usd;
  return core::LimitReason::none;
}

core::Admission admission_from(const Reply& r, const core::KeyLimits& lim) {
  core::Admission a;
  a.admitted = int_at(r, 0) == 1;
  a.reason = a.admitted ? core::LimitReason::none : reason_of(r.elements.size() > 1 ? r.elements[1].str : "");
  if (!a.admitted)
    if (const auto retry = int_at(r, 2); retry >= 0) a.retry_after = core::Millis(retry);
  // The headers as they stand after this request (refused: as they stood).
  if (const auto lim = int_at(r, 3); lim > 0) {
    a.headers.limit_requests = lim;
    a.headers.remaining_requests = int_at(r, 4);
    a.headers.reset_requests = core::Millis(int_at(r, 5));
  }
  if (const auto lim_tok = int_at(r, 6); lim_tok > 0) {
    a.headers.limit_tokens = lim_tok;
    a.headers.remaining_tokens = int_at(r, 7);
    a.headers.reset_tokens = core::Millis(int_at(r, 8));
  }
  if (lim.token_budget) a.headers.budget_tokens_left = int_at(r, 14);
  if (lim.budget_usd) a.headers.budget_micro_usd_left = int_at(r, 15);
  a.reserved_tokens = int_at(r, 9);
  a.reserved_micro_usd = int_at(r, 10);
  return a;
}

// A script as sent: the shared parts it uses, then its body. Built once for the process, so a
// queued command's NOSCRIPT handler can still send it by text after its Limiter is gone.
struct Texts {
  std::string admit_key, admit_provider, reconcile, release, release_provider, renew;
};

const Texts& texts() {
  using namespace scripts;
  auto cat = [](std::initializer_list<std::string_view> parts) {
    std::string s;
    for (auto p : parts) s += p;
    return s;
  };
  static const Texts t{
      .admit_key = cat({kClock, kTokens, kReservations, kAdmitKey}),
      .admit_provider = cat({kClock, kAdmitProvider}),
      .reconcile = cat({kClock, kTokens, kReservations, kReconcile}),
      .release = cat({kClock, kTokens, kReservations, kRelease}),
      .release_provider = cat({kReleaseProvider}),
      .renew = cat({kClock, kRenew}),
  };
  return t;
}

}  // namespace

Limiter::Script::Script(std::string_view t) : text(t), sha(sha1_hex(t)) {}

Limiter::Limiter(std::shared_ptr<RedisClient> redis, std::string prefix, core::Millis clock_offset,
                 core::Millis lease)
    : redis_(std::move(redis)),
      prefix_(std::move(prefix)),
      offset_(clock_offset),
      lease_(lease),
      admit_key_(texts().admit_key),
      admit_provider_(texts().admit_provider),
      reconcile_(texts().reconcile),
      release_(texts().release),
      release_provider_(texts().release_provider),
      renew_(texts().renew) {}

std::string Limiter::key_name(const std::string& key_id, std::string_view what) const {
  return key_base(key_id) + std::string(what);
}

std::string Limiter::key_base(const std::string& key_id) const {
  return prefix_ + "rl:{k:" + key_id + "}:";
}

std::string Limiter::provider_base(const std::string& provider_id) const {
  return prefix_ + "rl:{providers}:" + provider_id + ":";
}

namespace {

// Room for one script call: a sha, six key names with their prefix and a dozen numbers.
constexpr std::size_t kCommandBytes = 768;

// Room for `n` script calls: one allocation, not one per doubling.
EncodedCommands with_room(std::size_t n) {
  EncodedCommands c;
  c.bytes.reserve(kCommandBytes * n);
  return c;
}

// EVALSHA <sha> <number of keys>, announcing its keys and arguments once; they follow.
class ScriptCall : public CommandWriter {
 public:
  ScriptCall(EncodedCommands& out, std::string_view sha, std::size_t keys, std::size_t args)
      : CommandWriter(out, 3 + keys + args) {
    arg("EVALSHA").arg(sha).arg(static_cast<std::int64_t>(keys));
  }
};

// SCRIPT LOAD of each script, then `cmds` again: what to send after their NOSCRIPT reply.
EncodedCommands loaded_then(std::span<const std::string_view> texts, const EncodedCommands& cmds) {
  EncodedCommands out;
  for (auto text : texts) CommandWriter(out, 3).arg("SCRIPT").arg("LOAD").arg(text);
  out.bytes += cmds.bytes;
  out.count += cmds.count;
  return out;
}

}  // namespace

net::awaitable<core::Result<AdmitResult>> Limiter::admit(const KeyAdmit* key,
                                                         std::span<const ProviderCandidate> candidates,
                                                         std::string admission_id) {
  AdmitResult out;
  out.key.admitted = true;
  const bool check_key = key && key->limits.any();
  // Providers: the limited ones up to the first without limits (that one always has quota).
  std::size_t limited = 0;
  while (limited < candidates.size() && candidates[limited].limits.any()) ++limited;
  if (limited == 0 && !candidates.empty()) out.provider = 0;
  if (!check_key && limited == 0) co_return out;

  // Command i (the key's script first, if any, then the providers'), written into `cmds`.
  const Script* scripts[2] = {nullptr, nullptr};
  auto write = [&](std::size_t i, EncodedCommands& cmds) {
    if (check_key && i == 0) {
      const auto& l = key->limits;
      const auto base = key_base(key->key_id);
      ScriptCall w(cmds, admit_key_.sha, 6, 11);
      w.arg_parts({base, "rpm"}).arg_parts({base, "rpd"}).arg_parts({base, "tok"});
      w.arg_parts({base, "par"}).arg_parts({base, "used"}).arg_parts({base, "rsv"});
      w.arg(offset_.count()).arg(admission_id).arg(l.rpm.value_or(0)).arg(l.rpd.value_or(0));
      w.arg(l.tpm.value_or(0)).arg(l.max_parallel.value_or(0)).arg(l.token_budget.value_or(0));
      w.arg(l.budget_usd ? core::to_micro_usd(*l.budget_usd) : 0).arg(key->est_tokens);
      w.arg(key->est_micro_usd).arg(lease_.count());
      return;
    }
    ScriptCall w(cmds, admit_provider_.sha, 2 * limited, 3 + 2 * limited);
    for (std::size_t c = 0; c < limited; ++c) {
      const auto base = provider_base(candidates[c].provider_id);
      w.arg_parts({base, "rpm"}).arg_parts({base, "rpd"});
    }
    w.arg(offset_.count()).arg(admission_id).arg(static_cast<std::int64_t>(limited));
    for (std::size_t c = 0; c < limited; ++c)
      w.arg(candidates[c].limits.rpm.value_or(0)).arg(candidates[c].limits.rpd.value_or(0));
  };
  std::size_t n = 0;
  if (check_key) scripts[n++] = &admit_key_;
  if (limited > 0) scripts[n++] = &admit_provider_;
  auto cmds = with_room(n);
  for (std::size_t i = 0; i < n; ++i) write(i, cmds);

  auto replies = co_await redis_->pipeline(std::move(cmds));
  if (!replies) co_return replies.error();
  // Scripts not loaded yet (a restarted or flushed Redis): those commands did nothing; load the
  // scripts and run them again. Commands that did run are not repeated.
  std::vector<std::size_t> missing;
  for (std::size_t i = 0; i < replies->size(); ++i)
    if (noscript((*replies)[i])) missing.push_back(i);
  if (!missing.empty()) {
    std::vector<std::string_view> texts;
    EncodedCommands again;
    for (auto i : missing) {
      texts.push_back(scripts[i]->text);
      write(i, again);
    }
    auto retry = loaded_then(texts, again);
    auto retried = co_await redis_->pipeline(std::move(retry));
    if (!retried) co_return retried.error();
    for (std::size_t j = 0; j < missing.size(); ++j)
      (*replies)[missing[j]] = std::move((*retried)[texts.size() + j]);
  }
  for (const auto& r : *replies)
    if (r.is_error() || r.type != Reply::Type::array)
      co_return core::Error{errc::cache_unavailable, "limiter script failed"};

  std::size_t at = 0;
  if (check_key) {
    const Reply& r = (*replies)[at++];
    out.key = admission_from(r, key->limits);
    out.used = {int_at(r, 11), int_at(r, 12)};
    out.at_ms = int_at(r, 13);
  }
  if (limited > 0) {
    const Reply& r = (*replies)[at];
    // With a key, at_ms stays the key script's time: its tpm bucket and day (reconcile, release).
    if (!check_key) out.at_ms = int_at(r, 2);
    if (const auto index = int_at(r, 0); index > 0)
      out.provider = static_cast<std::size_t>(index - 1);
    else if (limited < candidates.size())
      out.provider = limited;  // the first candidate without limits
    else
      out.provider_retry = core::Millis(int_at(r, 1));
  }
  co_return out;
}

bool Limiter::fire(const Script& s, EncodedCommands cmd) {
  auto shared = std::make_shared<const EncodedCommands>(std::move(cmd));
  // NOSCRIPT (a restarted or flushed Redis): the command did nothing; load the script and send it again.
  auto again = [redis = std::weak_ptr<RedisClient>(redis_), shared,
                text = s.text](std::vector<Reply>& replies) {
    auto client = redis.lock();
    if (!client || replies.empty() || !noscript(replies.front())) return;
    const std::string_view texts[] = {text};
    client->send(loaded_then(texts, *shared));
  };
  return redis_->send(*shared, std::move(again));
}

bool Limiter::reconcile(const KeyAdmit& key, const std::string& admission_id, std::int64_t at_ms,
                        std::int64_t tokens, std::int64_t micro_usd) {
  const auto& l = key.limits;
  const bool budgets = l.token_budget || l.budget_usd;
  const auto base = key_base(key.key_id);
  auto cmd = with_room(1);
  {
    ScriptCall w(cmd, reconcile_.sha, 4, 8);
    w.arg_parts({base, "tok"}).arg_parts({base, "par"}).arg_parts({base, "used"}).arg_parts({base, "rsv"});
    w.arg(offset_.count()).arg(admission_id).arg(tokens).arg(micro_usd);
    w.arg(l.tpm ? "1" : "0").arg(budgets ? "1" : "0").arg(key.est_tokens).arg(at_ms);
  }
  return fire(reconcile_, std::move(cmd));
}

bool Limiter::release(const KeyAdmit& key, const std::string& admission_id, std::int64_t at_ms) {
  const auto base = key_base(key.key_id);
  auto cmd = with_room(1);
  {
    ScriptCall w(cmd, release_.sha, 5, 5);
    w.arg_parts({base, "rpm"}).arg_parts({base, "rpd"}).arg_parts({base, "tok"});
    w.arg_parts({base, "par"}).arg_parts({base, "rsv"});
    w.arg(offset_.count()).arg(admission_id).arg(key.limits.rpd ? "1" : "0");
    w.arg(key.limits.tpm ? key.est_tokens : 0).arg(at_ms);
  }
  return fire(release_, std::move(cmd));
}

bool Limiter::release(const ProviderCandidate& p, const std::string& admission_id, std::int64_t at_ms) {
  const auto base = provider_base(p.provider_id);
  auto cmd = with_room(1);
  {
    ScriptCall w(cmd, release_provider_.sha, 2, 4);
    w.arg_parts({base, "rpm"}).arg_parts({base, "rpd"});
    w.arg(offset_.count()).arg(admission_id).arg(p.limits.rpd ? "1" : "0").arg(at_ms);
  }
  return fire(release_provider_, std::move(cmd));
}

bool Limiter::renew(const std::string& key_id, const std::vector<std::string>& admission_ids) {
  if (admission_ids.empty()) return true;
  const auto base = key_base(key_id);
  auto cmd = with_room(1);
  {
    ScriptCall w(cmd, renew_.sha, 2, 2 + admission_ids.size());
    w.arg_parts({base, "par"}).arg_parts({base, "rsv"}).arg(offset_.count()).arg(lease_.count());
    for (const auto& id : admission_ids) w.arg(id);
  }
  return fire(renew_, std::move(cmd));
}

net::awaitable<core::Status> Limiter::seed_used(std::vector<UsedSeed> seeds, bool overwrite) {
  constexpr std::size_t kBatch = 500;  // keys per round trip
  for (std::size_t at = 0; at < seeds.size(); at += kBatch) {
    std::vector<std::vector<std::string>> cmds;
    for (std::size_t i = at; i < std::min(seeds.size(), at + kBatch); ++i) {
      const auto used = key_name(seeds[i].key_id, "used");
      if (overwrite) {
        cmds.push_back(
            {"HSET", used, "t", std::to_string(seeds[i].tokens), "m", std::to_string(seeds[i].micro_usd)});
      } else {
        cmds.push_back({"HSETNX", used, "t", std::to_string(seeds[i].tokens)});
        cmds.push_back({"HSETNX", used, "m", std::to_string(seeds[i].micro_usd)});
      }
    }
    auto r = co_await redis_->pipeline(std::move(cmds));
    if (!r) co_return r.error();
  }
  co_return core::ok();
}

net::awaitable<core::Status> Limiter::seed_used(const std::string& key_id, std::int64_t tokens,
                                                std::int64_t micro_usd) {
  std::vector<UsedSeed> one{{key_id, tokens, micro_usd}};
  co_return co_await seed_used(std::move(one), false);
}

net::awaitable<core::Result<std::optional<core::LocalLimiter::Used>>> Limiter::used(
    const std::string& key_id) {
  std::vector<std::string> cmd{"HMGET", key_name(key_id, "used"), "t", "m"};
  auto r = co_await redis_->command(std::move(cmd));
  if (!r) co_return r.error();
  if (r->type != Reply::Type::array || r->elements.size() != 2 || r->elements[0].type == Reply::Type::nil)
    co_return std::optional<core::LocalLimiter::Used>{};
  auto number = [](const Reply& e) {
    return e.type == Reply::Type::string ? std::atoll(e.str.c_str()) : 0LL;
  };
  co_return std::optional<core::LocalLimiter::Used>{
      core::LocalLimiter::Used{number(r->elements[0]), number(r->elements[1])}};
}

net::awaitable<core::Status> Limiter::reset_used(const std::string& key_id, bool zero) {
  std::vector<std::string> del{"DEL", key_name(key_id, "rsv")};
  if (!zero) del.push_back(key_name(key_id, "used"));
  auto r = co_await redis_->command(std::move(del));
  if (!r) co_return r.error();
  if (!zero) co_return core::ok();
  // Counting starts again at an explicit 0: with no hash, readers would fall back to PostgreSQL's
  // count, which a log batch running across the reset may still raise with older requests.
  std::vector<std::string> set{"HSET", key_name(key_id, "used"), "t", "0", "m", "0"};
  auto z = co_await redis_->command(std::move(set));
  if (!z) co_return z.error();
  co_return core::ok();
}

}  // namespace cache

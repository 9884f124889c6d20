#pragma once
// The rate limiter's Lua scripts. Each runs atomically in Redis, takes the time from Redis itself
// (one clock for every replica; ARGV[1] adds a test offset in ms) and touches only the keys it is
// given, which share one hash tag (a key's limits: {k:<id>}; providers: {providers}), so they run
// on Redis Cluster too. 0 means "no limit" in every numeric argument. Lifetimes are relative to
// now (PEXPIRE, never PEXPIREAT): with an offset the scripts' clock is not Redis's own.
//
// A script as sent is its body after the shared parts it names (see Limiter): the clock, the tpm
// window, the budget reservations. Every check costs O(1) amortized Redis commands, whatever the
// limits and the number of requests in flight: counters are kept as running totals, and what leaves
// a window is dropped once, when it leaves (a bench key with every limit cost about 30 commands and
// 85 µs of Redis CPU per request when the admission summed every tpm bucket and every reservation).
#include <string_view>

namespace cache::scripts {

// `now`: Redis's time in ms, plus the offset.
inline constexpr std::string_view kClock = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
)lua";

// A key's tpm window: a hash of second -> tokens counted in it (always > 0), with 'sum', their
// total, and 'lo', a second no bucket is older than (kept at the oldest one where it is known). A
// second leaves the window 60 s after it began: the window is [now_s - 59, now_s].
inline constexpr std::string_view kTokens = R"lua(
-- Drops the buckets that left the window; returns the tokens in it and its oldest second (nil: none).
local function tok_window(key, first, last)
  local f = redis.call('HMGET', key, 'sum', 'lo')
  local sum, lo = tonumber(f[1]), tonumber(f[2])
  local sum0, lo0 = sum, lo
  if sum and lo and first - lo <= 60 then
    for s = lo, first - 1 do
      local v = redis.call('HGET', key, s)
      if v then
        sum = sum - tonumber(v)
        redis.call('HDEL', key, s)
      end
    end
  else
    -- No running sum yet, or everything kept is older than a window: count the buckets again.
    sum = 0
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
      local s = tonumber(all[i])
      if s and s < first then
        redis.call('HDEL', key, all[i])
      elseif s then
        sum = sum + tonumber(all[i + 1])
      end
    end
  end
  local oldest = nil
  if sum > 0 then
    oldest = math.max(lo or first, first)
    while oldest < last and redis.call('HEXISTS', key, oldest) == 0 do oldest = oldest + 1 end
    lo = oldest
  else
    lo = last  -- no bucket: the next one is this second's or later
  end
  if sum ~= sum0 or lo ~= lo0 then
    redis.call('HSET', key, 'sum', sum, 'lo', lo)
    redis.call('PEXPIRE', key, 120000)
  end
  return sum, oldest
end
-- Adds `delta` to the bucket of second `sec` (in the window); a bucket at 0 or below goes.
local function tok_add(key, sec, delta)
  local v = redis.call('HINCRBY', key, sec, delta)
  if v <= 0 then
    redis.call('HDEL', key, sec)
    delta = delta - v
  elseif v == delta then  -- a new bucket, maybe older than 'lo' (a reconcile in an emptied second)
    local lo = tonumber(redis.call('HGET', key, 'lo'))
    if not lo or sec < lo then redis.call('HSET', key, 'lo', sec) end
  end
  if delta ~= 0 then redis.call('HINCRBY', key, 'sum', delta) end
  redis.call('PEXPIRE', key, 120000)
end
)lua";

// A key's budget reservations: a hash of admission id -> 'tokens:micro-USD', with their totals in
// '#t' and '#m'. A reservation ends with its request (reconcile, release) or with the request's
// lease in the key's lease zset (a replica that died mid-request).
inline constexpr std::string_view kReservations = R"lua(
local function rsv_drop(key, id)
  local v = redis.call('HGET', key, id)
  if not v then return end
  redis.call('HDEL', key, id)
  local a, b = string.match(v, '^(%d+):(%d+)$')
  if a then
    if a ~= '0' then redis.call('HINCRBY', key, '#t', '-' .. a) end
    if b ~= '0' then redis.call('HINCRBY', key, '#m', '-' .. b) end
  end
end
local function leases_expire(leases, rsv, now)
  local gone = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
  if #gone == 0 then return end
  for i = 1, #gone do rsv_drop(rsv, gone[i]) end
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
end
)lua";

// KEYS: rpm zset, rpd hash, tpm window, lease zset, used hash, reservations hash.
// ARGV: offset, admission id, rpm, rpd, tpm, max_parallel, token_budget, budget_micro_usd,
//       estimated tokens, estimated micro-USD, lease ms.
// Reads every counter, checks every limit, then (all passed) counts the request, adds its
// estimated tokens to this second's tpm bucket (reconcile corrects them), takes a lease (the
// max_parallel slot, and how long the reservation lives) and reserves budget.
// Returns {admitted, reason, retry_ms, limit_req, remaining_req, reset_req_ms, limit_tok,
//  remaining_tok, reset_tok_ms, reserved_tokens, reserved_micro, used_tokens, used_micro, now_ms,
//  budget_left_tokens, budget_left_micro},
// the header values after this request (or, refused, as they stand); retry_ms -1: never refills.
//
// rpm is a sliding log (one zset member per admitted request, scored by time): exact, so any
// 60 s window holds at most rpm requests, and it costs O(rpm) memory per key, which is fine for
// per-key request limits. rpd counts per UTC day (the day is the window by definition). tpm sums
// per-second buckets over the last 60 s: tokens arrive in amounts, not one by one.
inline constexpr std::string_view kAdmitKey = R"lua(
local id = ARGV[2]
local rpm, rpd, tpm, par = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local tb, bm = tonumber(ARGV[7]), tonumber(ARGV[8])
local est_t, est_m, lease = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local budgets = tb > 0 or bm > 0
local day = math.floor(now / 86400000)
local day_end = (day + 1) * 86400000
local now_s = math.floor(now / 1000)

local rpm_count, oldest = 0, now
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
  rpm_count = redis.call('ZCARD', KEYS[1])
  if rpm_count > 0 then oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]) end
end
local day_count = 0
if rpd > 0 then day_count = tonumber(redis.call('HGET', KEYS[2], day) or '0') end
local minute_tokens, oldest_sec = 0, nil
if tpm > 0 then
  minute_tokens, oldest_sec = tok_window(KEYS[3], now_s - 59, now_s)
end
if par > 0 or budgets then leases_expire(KEYS[4], KEYS[6], now) end
local in_flight = 0
if par > 0 then in_flight = redis.call('ZCARD', KEYS[4]) end
local used_t, used_m, res_t, res_m = 0, 0, 0, 0
if budgets then
  local u = redis.call('HMGET', KEYS[5], 't', 'm')
  used_t, used_m = tonumber(u[1] or '0'), tonumber(u[2] or '0')
  local r = redis.call('HMGET', KEYS[6], '#t', '#m')
  res_t, res_m = tonumber(r[1] or '0'), tonumber(r[2] or '0')
end

local function reply(admitted, reason, retry, rt, rm)
  local lim_req, rem_req, reset_req = 0, 0, 0
  if rpm > 0 then
    lim_req, rem_req, reset_req = rpm, rpm - rpm_count, oldest + 60000 - now
  elseif rpd > 0 then
    lim_req, rem_req, reset_req = rpd, rpd - day_count, day_end - now
  end
  local reset_tok = 0
  if oldest_sec then reset_tok = (oldest_sec + 60) * 1000 - now end
  return {admitted, reason, math.floor(retry), lim_req, rem_req, math.floor(reset_req), tpm, tpm - minute_tokens,
          math.floor(reset_tok), rt, rm, used_t, used_m, now, tb - used_t - res_t - rt, bm - used_m - res_m - rm}
end

if rpm > 0 and rpm_count >= rpm then return reply(0, 'rpm', oldest + 60000 - now, 0, 0) end
if rpd > 0 and day_count >= rpd then return reply(0, 'rpd', day_end - now, 0, 0) end
if tpm > 0 and minute_tokens >= tpm then return reply(0, 'tpm', (oldest_sec + 60) * 1000 - now, 0, 0) end
if par > 0 and in_flight >= par then
  local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  return reply(0, 'max_parallel', math.min(1000, tonumber(first[2]) - now), 0, 0)
end
if tb > 0 and used_t + res_t >= tb then return reply(0, 'token_budget', -1, 0, 0) end
if bm > 0 and used_m + res_m >= bm then return reply(0, 'budget_usd', -1, 0, 0) end

if rpm > 0 then
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('PEXPIRE', KEYS[1], 61000)
  rpm_count = rpm_count + 1
  if rpm_count == 1 then oldest = now end
end
if rpd > 0 then
  redis.call('HINCRBY', KEYS[2], day, 1)
  if day_count == 0 then  -- the day's first: the day before goes, the hash lives until this day ends
    redis.call('HDEL', KEYS[2], day - 1)
    redis.call('PEXPIRE', KEYS[2], day_end - now + 3600000)
  end
  day_count = day_count + 1
end
if tpm > 0 and est_t > 0 then
  tok_add(KEYS[3], now_s, est_t)
  minute_tokens = minute_tokens + est_t
  if not oldest_sec then oldest_sec = now_s end
end
if par > 0 or budgets then
  redis.call('ZADD', KEYS[4], now + lease, id)
  redis.call('PEXPIRE', KEYS[4], lease + 60000)
end
local rt, rm = 0, 0
if budgets then
  if tb > 0 then rt = math.max(0, math.min(est_t, tb - used_t - res_t)) end
  if bm > 0 then rm = math.max(0, math.min(est_m, bm - used_m - res_m)) end
  redis.call('HSET', KEYS[6], id, string.format('%d:%d', rt, rm))
  if rt > 0 then redis.call('HINCRBY', KEYS[6], '#t', string.format('%d', rt)) end
  if rm > 0 then redis.call('HINCRBY', KEYS[6], '#m', string.format('%d', rm)) end
  redis.call('PEXPIRE', KEYS[6], lease + 60000)
end
return reply(1, '', 0, rt, rm)
)lua";

// KEYS: for each candidate provider with limits, its rpm zset and rpd hash (in route order).
// ARGV: offset, admission id, n, then rpm and rpd of each candidate (0 = none).
// Takes the first candidate with quota: counts the request there. Returns {index (1-based), 0, now_ms},
// or {0, retry_ms, now_ms} with the earliest time one of them frees up.
inline constexpr std::string_view kAdmitProvider = R"lua(
local id, n = ARGV[2], tonumber(ARGV[3])
local day = math.floor(now / 86400000)
local day_end = (day + 1) * 86400000
local earliest = nil
for i = 1, n do
  local rpm, rpd = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local zk, hk = KEYS[2 * i - 1], KEYS[2 * i]
  local wait = nil
  if rpm > 0 then
    redis.call('ZREMRANGEBYSCORE', zk, '-inf', now - 60000)
    if redis.call('ZCARD', zk) >= rpm then
      wait = tonumber(redis.call('ZRANGE', zk, 0, 0, 'WITHSCORES')[2]) + 60000 - now
    end
  end
  if not wait and rpd > 0 and tonumber(redis.call('HGET', hk, day) or '0') >= rpd then wait = day_end - now end
  if not wait then
    if rpm > 0 then
      redis.call('ZADD', zk, now, id)
      redis.call('PEXPIRE', zk, 61000)
    end
    if rpd > 0 then
      redis.call('HINCRBY', hk, day, 1)
      redis.call('HDEL', hk, day - 1)
      redis.call('PEXPIRE', hk, day_end - now + 3600000)
    end
    return {i, 0, now}
  end
  if not earliest or wait < earliest then earliest = wait end
end
return {0, math.floor(earliest or 1000), now}
)lua";

// KEYS: tpm window, lease zset, used hash, reservations hash.
// ARGV: offset, admission id, tokens used, micro-USD used, count tpm (0/1), count budgets (0/1),
//       tokens estimated at admission, admission time (ms, from kAdmitKey).
// The request is over: its lease and reservation go, its real usage counts; the tpm bucket of its
// admission second gets the difference between real and estimated tokens (while that second is
// still in the window).
inline constexpr std::string_view kReconcile = R"lua(
redis.call('ZREM', KEYS[2], ARGV[2])
rsv_drop(KEYS[4], ARGV[2])
local tokens, micro = tonumber(ARGV[3]), tonumber(ARGV[4])
if ARGV[6] == '1' then
  if tokens > 0 then redis.call('HINCRBY', KEYS[3], 't', ARGV[3]) end
  if micro > 0 then redis.call('HINCRBY', KEYS[3], 'm', ARGV[4]) end
end
if ARGV[5] == '1' then
  local sec = math.floor(tonumber(ARGV[8]) / 1000)
  local delta = tokens - tonumber(ARGV[7])
  if sec > math.floor(now / 1000) - 60 and delta ~= 0 then tok_add(KEYS[1], sec, delta) end
end
return 1
)lua";

// KEYS: rpm zset, rpd hash, tpm window, lease zset, reservations hash.
// ARGV: offset, admission id, whether the day was counted (0/1), tokens estimated at admission,
//       admission time (ms).
// Undoes a key's admission that was not used (no route could take the request).
inline constexpr std::string_view kRelease = R"lua(
local admitted = tonumber(ARGV[5])
local day = math.floor(admitted / 86400000)
redis.call('ZREM', KEYS[1], ARGV[2])
if ARGV[3] == '1' and tonumber(redis.call('HGET', KEYS[2], day) or '0') > 0 then
  redis.call('HINCRBY', KEYS[2], day, -1)
end
local sec, est = math.floor(admitted / 1000), tonumber(ARGV[4])
if est > 0 and sec > math.floor(now / 1000) - 60 and redis.call('HEXISTS', KEYS[3], sec) == 1 then
  tok_add(KEYS[3], sec, -est)
end
redis.call('ZREM', KEYS[4], ARGV[2])
rsv_drop(KEYS[5], ARGV[2])
return 1
)lua";

// KEYS: a provider's rpm zset and rpd hash. ARGV: offset, admission id, whether the day was
// counted (0/1), admission time (ms). Undoes a provider admission that was not used.
inline constexpr std::string_view kReleaseProvider = R"lua(
local day = math.floor(tonumber(ARGV[4]) / 86400000)
redis.call('ZREM', KEYS[1], ARGV[2])
if ARGV[3] == '1' and tonumber(redis.call('HGET', KEYS[2], day) or '0') > 0 then
  redis.call('HINCRBY', KEYS[2], day, -1)
end
return 1
)lua";

// KEYS: lease zset, reservations hash. ARGV: offset, lease ms, then admission ids.
// Requests still running keep their lease (their slot and reservation) for another lease.
inline constexpr std::string_view kRenew = R"lua(
local until_ = now + tonumber(ARGV[2])
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[i]) end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 60000)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) + 60000)
return 1
)lua";

}  // namespace cache::scripts

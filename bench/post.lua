-- wrk script: POST /v1/chat/completions with a ~320 byte chat body, as an OpenAI SDK would send it.
--   BENCH_KEY      bearer token (a gateway user key; any non-empty string for direct / nginx / Portkey)
--   BENCH_MODEL    model name in the body (default gpt-bench)
--   BENCH_HEADERS  extra request headers, "Name: value" separated by "|" (Portkey's x-portkey-*)
--   BENCH_RANDOM_KEY=1  a different, never valid key on every request ("sk-bench-invalid-<n>"): the
--                  invalid-key flood. Every answer is then expected to be a 401 (wrk counts it as a
--                  non-2xx "status" error; run.sh checks that all of them were).
-- done() prints one machine-readable line, "BENCH_JSON {...}", read by bench/run.sh: requests,
-- errors, and latency percentiles in µs (wrk's own histogram, 1 µs resolution).

local key = os.getenv("BENCH_KEY") or "sk-bench"
local model = os.getenv("BENCH_MODEL") or "gpt-bench"
local random_key = os.getenv("BENCH_RANDOM_KEY") == "1"

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Accept"] = "application/json"
for h in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
  local name, value = string.match(h, "^%s*([^:]+):%s*(.-)%s*$")
  if name then wrk.headers[name] = value end
end
wrk.body = '{"model":"' .. model .. '","messages":[' ..
  '{"role":"system","content":"You are a concise assistant. Answer in one short sentence."},' ..
  '{"role":"user","content":"What is the capital of France, and what river flows through it? Keep it brief."}' ..
  '],"temperature":0.2,"max_tokens":64,"top_p":1,"n":1,"stream":false,"user":"bench-user-0001"}'

local threads = {}
if random_key then
  -- setup() runs once per wrk thread in the main Lua state; thread:set() makes "salt" a global of
  -- that thread's state, so every thread's keys differ from the others' (and from other runs').
  function setup(thread)
    threads[#threads + 1] = thread
    thread:set("salt", string.format("%06x%02x", os.time() % 0x1000000, #threads))
  end
  local counter = 0
  function request()
    counter = counter + 1
    -- about as long as a real key, all different (a negative cache per key cannot help)
    wrk.headers["Authorization"] = string.format("Bearer sk-bench-invalid-%s-%022d", salt or "0", counter)
    return wrk.format(nil, nil, nil, nil)
  end
  statuses = {}
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

local PCTS = { 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99 }

function done(summary, latency, requests)
  local e = summary.errors
  local p = {}
  for _, q in ipairs(PCTS) do
    p[#p + 1] = string.format('"%s":%d', tostring(q), latency:percentile(q))
  end
  p[#p + 1] = string.format('"100":%d', latency.max)
  -- status counts (invalid-key flood only: response() is not defined otherwise, it costs time)
  local st = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses") or {}) do st[code] = (st[code] or 0) + n end
  end
  local sts = {}
  for code, n in pairs(st) do sts[#sts + 1] = string.format('"%d":%d', code, n) end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
    '"pcts":{%s},"statuses":{%s},"body_bytes":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(p, ","), table.concat(sts, ","), #wrk.body))
end

-- wrk script: POST /v1/chat/completions with a ~300 byte chat body, as an OpenAI SDK would send it.
--   BENCH_KEY     bearer token (a gateway user key; any non-empty string for the direct/nginx targets)
--   BENCH_MODEL   model name in the body (default gpt-bench)
-- done() prints one machine-readable line, "BENCH_JSON {...}", read by bench/run.sh.

local key = os.getenv("BENCH_KEY") or "sk-bench"
local model = os.getenv("BENCH_MODEL") or "gpt-bench"

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Accept"] = "application/json"
wrk.body = '{"model":"' .. model .. '","messages":[' ..
  '{"role":"system","content":"You are a concise assistant. Answer in one short sentence."},' ..
  '{"role":"user","content":"What is the capital of France, and what river flows through it? Keep it brief."}' ..
  '],"temperature":0.2,"max_tokens":64,"top_p":1,"n":1,"stream":false,"user":"bench-user-0001"}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"body_bytes":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    #wrk.body))
end

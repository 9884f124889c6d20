#!/usr/bin/env bash
# What the request log costs PostgreSQL per row, under load: PostgreSQL CPU per row written, the
# rows written and dropped, and how long each of the writer's statements took (PostgreSQL's own log).
#
#   bash bench/log_rows.sh [BINARY ...]     (default build/gateway/llm-gateway)
#   C=64 T=2 SECS=8 bash bench/log_rows.sh /tmp/gw-old /tmp/gw-new     one run per binary, in turn
#   GW_ENV="LOG_QUEUE_MAX=1" C=1 T=1 bash bench/log_rows.sh     extra gateway settings (this one keeps
#                                         almost every row out of PostgreSQL: the latency without it)
#
# The stack of bench/run.sh at WORKERS=1: the gateway on CPU 1; wrk, a canned nginx upstream,
# PostgreSQL and Redis on CPU 0; request log on with its defaults; a plain key. At 64 connections
# PostgreSQL cannot keep up on the CPU it shares, so "rows written" in the window is its throughput.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/scripts/lib/services.sh"
bins=("$@")
[[ ${#bins[@]} -gt 0 ]] || bins=("$repo/build/gateway/llm-gateway")
for tool in wrk nginx psql; do command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }; done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pg_stop "$work/svc" >/dev/null 2>&1 || true
  redis_stop "$work/svc" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The upstream: nginx answering every chat completion with the same small body.
mkdir -p "$work/up/tmp"
up=$(free_port)
body='{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-bench","choices":[{"index":0,"message":{"role":"assistant","content":"Paris, on the Seine."},"finish_reason":"stop"}],"usage":{"prompt_tokens":40,"completion_tokens":8,"total_tokens":48}}'
cat >"$work/up/nginx.conf" <<CONF
worker_processes 1; pid $work/up/nginx.pid; error_log $work/up/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $work/up/tmp/b; proxy_temp_path $work/up/tmp/p;
  fastcgi_temp_path $work/up/tmp/f; uwsgi_temp_path $work/up/tmp/u; scgi_temp_path $work/up/tmp/s;
  keepalive_requests 100000000;
  server { listen 127.0.0.1:$up;
    location = /v1/chat/completions { default_type application/json; return 200 '$body'; } } }
CONF
taskset -c 0 nginx -p "$work/up" -c "$work/up/nginx.conf" -g 'daemon off;' >"$work/up/out" 2>&1 &
pids+=($!)

pg_cpu_ticks() {  # every process of the cluster: postmaster, backends, background workers
  local main
  main=$(head -n1 "$work/svc/pg/postmaster.pid")
  for p in $main $(pgrep -P "$main"); do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null; done | paste -sd+ | bc
}
writer_ticks() {  # PID: CPU ticks of the gateway's request-log writer thread
  for t in /proc/"$1"/task/*; do [[ $(cat "$t/comm") == llmgw-logwriter ]] && awk '{print $14 + $15}' "$t/stat"; done
}
metric() {  # PORT NAME
  curl -s "http://127.0.0.1:$1/metrics" -H "Authorization: Bearer $admin" | awk -v m="$2" '$1 == m {print $2}'
}

for bin in "${bins[@]}"; do
  pgp=$(free_port) rp=$(free_port) gwp=$(free_port)
  pg_start "$work/svc" "$pgp" >/dev/null
  redis_start "$work/svc" "$rp" >/dev/null
  for p in $(head -n1 "$work/svc/pg/postmaster.pid") $(cat "$work/svc/redis.pid"); do
    for t in $(pgrep -P "$p") "$p"; do taskset -a -p -c 0 "$t" >/dev/null; done
  done
  admin=adm-$(head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n')
  # shellcheck disable=SC2086 # GW_ENV is a list of NAME=value words
  taskset -c 1 env LISTEN_ADDR="127.0.0.1:$gwp" WORKERS=1 ADMIN_KEY="$admin" ${GW_ENV:-} \
    DATABASE_URL="postgresql://postgres@127.0.0.1:$pgp/llmgw" REDIS_URL="redis://127.0.0.1:$rp/0" \
    ENCRYPTION_KEY="$(head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n')" "$bin" >"$work/gw.log" 2>&1 &
  gw=$!
  pids+=("$gw")
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$gwp/health/live" && break; sleep 0.1; done
  adm() { curl -sf -X POST "http://127.0.0.1:$gwp$1" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' -d "$2"; }
  provider=$(adm /admin/providers "{\"name\":\"f\",\"kind\":\"openai\",\"api_key\":\"sk-up-000000001\",\"base_url\":\"http://127.0.0.1:$up/v1\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  adm /admin/models "{\"name\":\"gpt-bench\",\"provider_id\":\"$provider\"}" >/dev/null
  BENCH_KEY=$(adm /admin/keys '{"name":"k"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  export BENCH_KEY
  psql_="psql -h 127.0.0.1 -p $pgp -U postgres -d llmgw -Atq"

  taskset -c 0 wrk -t1 -c1 -d2s -s "$repo/bench/post.lua" "http://127.0.0.1:$gwp" >/dev/null 2>&1
  sleep 1  # the warm-up's rows are written
  $psql_ -c "ALTER SYSTEM SET log_min_duration_statement = 0" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  : >"$work/svc/pg.log"
  log_at=$(stat -c %s "$work/gw.log")
  cpu0=$(pg_cpu_ticks) t0=$(writer_ticks "$gw") w0=$(metric "$gwp" llmgw_log_rows_written_total) d0=$(metric "$gwp" llmgw_log_rows_dropped_total)
  out=$(taskset -c 0 wrk -t"${T:-2}" -c"${C:-64}" -d"${SECS:-8}s" --latency -s "$repo/bench/post.lua" "http://127.0.0.1:$gwp" 2>&1)
  sleep 1  # the last batch lands
  cpu1=$(pg_cpu_ticks) t1=$(writer_ticks "$gw") w1=$(metric "$gwp" llmgw_log_rows_written_total) d1=$(metric "$gwp" llmgw_log_rows_dropped_total)
  hz=$(getconf CLK_TCK)
  echo "== $bin ($(sha256sum "$bin" | cut -c1-12)), wrk -t${T:-2} -c${C:-64} -d${SECS:-8}s${GW_ENV:+, $GW_ENV}"
  echo "RPS $(echo "$out" | awk '/Requests\/sec/{print $2}'), p50 $(echo "$out" | awk '$1 == "50%" {print $2}')," \
    "p99 $(echo "$out" | awk '$1 == "99%" {print $2}'); rows written $((w1 - w0)), dropped $((d1 - d0));" \
    "PostgreSQL CPU $(python3 -c "print(round(($cpu1 - $cpu0) * 1e6 / $hz / max(1, $w1 - $w0), 2))") µs per row written;" \
    "the gateway's writer thread $(python3 -c "print(round(($t1 - $t0) * 1e6 / $hz / max(1, $w1 - $w0), 2))") µs per row"
  # The gateway's own duration_ms (request head read -> response written) of the window's requests.
  tail -c +$((log_at + 1)) "$work/gw.log" | python3 -c '
import json, sys
v = sorted(float(j["duration_ms"]) for j in map(json.loads, filter(lambda l: l.startswith("{"), sys.stdin))
           if "duration_ms" in j)
if v:
    print("  gateway-measured duration_ms: p50 %.3f p99 %.3f p99.9 %.3f (%d requests)"
          % (v[len(v) // 2], v[int(len(v) * 0.99)], v[int(len(v) * 0.999)], len(v)))'
  # Each statement of the writer, as PostgreSQL logged it: count, mean and max wall time.
  grep -oE "duration: [0-9.]+ ms  (execute [a-z_]+|statement: [A-Z]+)" "$work/svc/pg.log" \
    | awk '{what = $4 " " $5; n[what]++; s[what] += $2; if ($2 > m[what]) m[what] = $2}
           END {for (w in n) printf "  %-28s %5d  mean %7.2f ms  max %7.2f ms\n", w, n[w], s[w] / n[w], m[w]}' | sort
  kill "$gw"
  wait "$gw" 2>/dev/null || true
  pg_stop "$work/svc" >/dev/null
  redis_stop "$work/svc" >/dev/null
  rm -rf "$work/svc"
done

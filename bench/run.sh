#!/usr/bin/env bash
# Load benchmark of llm-gateway against a fast canned upstream, with nginx as the baseline proxy.
#
#   bash bench/run.sh
#
# Prints a Markdown report and writes it to bench/results/YYYY-MM-DD-<short sha>.md.
# Everything runs on 127.0.0.1 in a temp dir and is stopped on exit (also on failure / Ctrl-C).
# Knobs (environment):
#   BENCH_DURATION=8   seconds measured per run       BENCH_WARMUP=2  seconds of warm-up before each
#   BENCH_PIN=1        pin proxies to CPU 1, wrk + upstreams to CPU 0 (needs >= 2 CPUs; 0 = no pinning)
#   BENCH_SSE_N=300    streamed requests per target for the time-to-first-byte run
#   BENCH_STRACE=1     count syscalls per request of nginx and the gateway with strace -c (0 = skip)
#   BENCH_PERF=1       one extra gateway run (info, 64 connections) under `perf record` (0 = skip)
#   BENCH_KEEP=1       keep the temp dir (logs, configs, raw wrk output)
#   LLMGW_BIN          gateway binary (default build/gateway/llm-gateway)
#   BENCH_OUT          report path (default bench/results/YYYY-MM-DD-<short sha>.md)
# See bench/README.md for what is measured and how to read it.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/bench
# shellcheck source=../scripts/lib/services.sh
source "$REPO/scripts/lib/services.sh"

DURATION=${BENCH_DURATION:-8}
WARMUP=${BENCH_WARMUP:-2}
PIN=${BENCH_PIN:-1}
SSE_N=${BENCH_SSE_N:-300}
PERF=${BENCH_PERF:-1}
STRACE=${BENCH_STRACE:-1}
BIN=${LLMGW_BIN:-$REPO/build/gateway/llm-gateway}
MODEL=gpt-bench               # -> the nginx canned upstream
STREAM_MODEL=gpt-bench-stream # -> the Node mock upstream

# The exact command line, with the knobs that were set.
CMDLINE=""
for v in BENCH_DURATION BENCH_WARMUP BENCH_PIN BENCH_SSE_N BENCH_STRACE BENCH_PERF BENCH_KEEP LLMGW_BIN BENCH_OUT; do
  [[ -n "${!v:-}" ]] && CMDLINE+="$v=${!v} "
done
CMDLINE+="bash bench/run.sh${*:+ $*}"

log() { echo "[bench] $*" >&2; }
die() { echo "[bench] FAILED: $*" >&2; exit 1; }

for tool in wrk nginx redis-server node python3 curl taskset; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x "$BIN" ]] || die "gateway binary not found at $BIN (ninja -C build llm-gateway, or set LLMGW_BIN)"

# ---- CPU pinning --------------------------------------------------------------------------------
# Load side (wrk, the upstreams, the SSE client) on CPU 0; the proxy under test (nginx or the
# gateway, plus the gateway's Redis, which it queries on every request) on CPU 1.
LOAD=() PROXY=()
if [[ "$PIN" == 1 && $(nproc) -ge 2 ]]; then
  LOAD=(taskset -c 0) PROXY=(taskset -c 1)
  PINNING="load side (wrk, upstream nginx, Node mock, SSE client) on CPU 0; proxy under test (nginx proxy / gateway + its Redis) on CPU 1; PostgreSQL unpinned (idle on the hot path)"
else
  PIN=0
  PINNING="none"
fi

# ---- temp dir and cleanup -----------------------------------------------------------------------
WORK=$(mktemp -d /tmp/llmgw-bench.XXXXXX)
SVC=$WORK/svc
GW_PID="" UP_PID="" PX_PID="" MOCK_PID="" PERF_PID="" STRACE_PID=""

stop_pid() { # PID [signal]: signal, wait up to 5 s, then SIGKILL; reaps our own children
  local pid=$1 sig=${2:-TERM} i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -"$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$PERF_PID" INT
  stop_pid "$STRACE_PID" INT
  stop_pid "$GW_PID"
  stop_pid "$PX_PID" QUIT
  stop_pid "$UP_PID" QUIT
  stop_pid "$MOCK_PID"
  redis_stop "$SVC" || true
  pg_stop "$SVC" || true
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The commit and the binary as of now (others may commit or rebuild while this runs).
SHA=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo nogit)
DIRTY=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -v '^.. bench/' \
  | awk '{print $2}' | paste -sd' ' || true)
[[ -n "$DIRTY" ]] && DIRTY=" + uncommitted changes in: $DIRTY"
# A private copy of the binary: a rebuild during the run must not change or break it.
cp "$BIN" "$WORK/llm-gateway"
BIN_SHA=$(sha256sum "$WORK/llm-gateway" | cut -c1-12)
BIN_MTIME=$(date -u -r "$BIN" '+%F %T UTC')
BIN_SRC=$BIN
BIN=$WORK/llm-gateway

wait_http() { # URL: until something answers (any status), 10 s
  local i
  for ((i = 0; i < 200; i++)); do
    curl -s -o /dev/null -m 1 "$1" && return 0
    sleep 0.05
  done
  return 1
}

# ---- fast upstream: nginx returning a canned chat.completion ------------------------------------
# No "$" in the JSON: nginx would read it as a variable.
CANNED='{"id":"chatcmpl-bench0000000000000000000001","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France; the Seine flows through it.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":38,"completion_tokens":14,"total_tokens":52,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_bench"}'

nginx_common() { # DIR: the lines every nginx here shares (own prefix, no logs, long keep-alive)
  local d=$1
  mkdir -p "$d/tmp"
  cat <<EOF
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_http_common() {
  local d=$1
  cat <<EOF
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
EOF
}

start_nginx() { # DIR PIN...: nginx in the foreground (daemon off) as our child; sets NGINX_PID
  local d=$1; shift
  "$@" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;' >"$d/stdout.log" 2>&1 &
  NGINX_PID=$!
}

UP_PORT=$(free_port)
UP_DIR=$WORK/upstream
mkdir -p "$UP_DIR"
{
  nginx_common "$UP_DIR"
  echo "http {"
  nginx_http_common "$UP_DIR"
  cat <<EOF
    server {
        listen 127.0.0.1:$UP_PORT;
        location = /v1/chat/completions {
            default_type application/json;
            return 200 '$CANNED';
        }
    }
}
EOF
} >"$UP_DIR/nginx.conf"
start_nginx "$UP_DIR" "${LOAD[@]}"
UP_PID=$NGINX_PID
wait_http "http://127.0.0.1:$UP_PORT/" || { cat "$UP_DIR/error.log" >&2; die "upstream nginx did not start"; }
log "fast upstream nginx on :$UP_PORT (pid $UP_PID)"

# ---- Node mock upstream (streaming) -------------------------------------------------------------
: >"$WORK/mock.out"
"${LOAD[@]}" node "$REPO/test/mock_upstream/server.mjs" --port 0 >"$WORK/mock.out" 2>&1 &
MOCK_PID=$!
for ((i = 0; i < 200; i++)); do
  MOCK_PORT=$(sed -n 's/.*"listening":\([0-9]*\).*/\1/p' "$WORK/mock.out" | head -n1)
  [[ -n "$MOCK_PORT" ]] && break
  kill -0 "$MOCK_PID" 2>/dev/null || break
  sleep 0.05
done
[[ -n "${MOCK_PORT:-}" ]] || { cat "$WORK/mock.out" >&2; die "mock upstream did not start"; }
log "Node mock upstream on :$MOCK_PORT (pid $MOCK_PID)"

# ---- nginx as a plain reverse proxy (like deploy/nginx/gateway.conf.template) -------------------
PX_PORT=$(free_port)
PX_SSE_PORT=$(free_port)
PX_DIR=$WORK/proxy
mkdir -p "$PX_DIR"
px_server() { # LISTEN_PORT UPSTREAM_NAME
  cat <<EOF
    server {
        listen 127.0.0.1:$1;
        client_max_body_size 10m;
        client_body_buffer_size 1m;
        location / {
            proxy_pass http://$2;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_cache off;
            proxy_connect_timeout 5s;
            proxy_send_timeout 600s;
            proxy_read_timeout 600s;
        }
    }
EOF
}
{
  nginx_common "$PX_DIR"
  echo "http {"
  nginx_http_common "$PX_DIR"
  cat <<EOF
    upstream fast { server 127.0.0.1:$UP_PORT; keepalive 64; keepalive_requests 100000000; }
    upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 64; keepalive_requests 100000000; }
EOF
  px_server "$PX_PORT" fast
  px_server "$PX_SSE_PORT" mock
  echo "}"
} >"$PX_DIR/nginx.conf"
start_nginx "$PX_DIR" "${PROXY[@]}"
PX_PID=$NGINX_PID
wait_http "http://127.0.0.1:$PX_PORT/" || { cat "$PX_DIR/error.log" >&2; die "proxy nginx did not start"; }
log "nginx proxy on :$PX_PORT (-> upstream) and :$PX_SSE_PORT (-> mock), pid $PX_PID"

# ---- PostgreSQL + Redis -------------------------------------------------------------------------
PG_PORT=$(free_port)
REDIS_PORT=$(free_port)
while [[ "$REDIS_PORT" == "$PG_PORT" ]]; do REDIS_PORT=$(free_port); done
mkdir -p "$SVC"
pg_start "$SVC" "$PG_PORT" || die "PostgreSQL did not start"
# Redis inherits the proxy CPU: the gateway asks it (SISMEMBER) on every request.
"${PROXY[@]}" bash -c 'source "$1" && redis_start "$2" "$3"' _ "$REPO/scripts/lib/services.sh" "$SVC" "$REDIS_PORT" \
  || die "Redis did not start"
REDIS_PID=$(cat "$SVC/redis.pid")
log "PostgreSQL on :$PG_PORT, Redis on :$REDIS_PORT (pid $REDIS_PID)"

# ---- the gateway --------------------------------------------------------------------------------
ADMIN_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
ENCRYPTION_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
GW_PORT=""

start_gateway() { # LOG_LEVEL: starts on a free port, waits for /health/live; sets GW_PID GW_PORT GW_LOG
  # (LISTEN_ADDR=...:0 plus the "listening" log line would do, but that line is info-level.)
  GW_LOG=$WORK/gateway-$1.log
  GW_PORT=$(free_port)
  "${PROXY[@]}" env LISTEN_ADDR="127.0.0.1:$GW_PORT" \
    DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/llmgw" \
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
    ADMIN_KEY="$ADMIN_KEY" ENCRYPTION_KEY="$ENCRYPTION_KEY" \
    LOG_LEVEL="$1" SHUTDOWN_GRACE_SECONDS=2 \
    "$BIN" >"$GW_LOG" 2>&1 &
  GW_PID=$!
  local i
  for ((i = 0; i < 400; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' -m 1 "http://127.0.0.1:$GW_PORT/health/live") == 200 ]] && break
    kill -0 "$GW_PID" 2>/dev/null || break
    sleep 0.05
  done
  ((i < 400)) && kill -0 "$GW_PID" 2>/dev/null \
    || { sleep 0.2; tail -n 30 "$GW_LOG" >&2; die "gateway (LOG_LEVEL=$1) did not come up on :$GW_PORT"; }
  log "gateway LOG_LEVEL=$1 on :$GW_PORT (pid $GW_PID)"
}

gw_tail() { echo "--- last gateway log lines ($GW_LOG) ---" >&2; tail -n 20 "$GW_LOG" >&2; }

admin() { # METHOD PATH [JSON] -> body; fails unless 2xx
  local out code
  out=$(curl -s -w '\n%{http_code}' -X "$1" "http://127.0.0.1:$GW_PORT$2" \
    -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' ${3:+-d "$3"})
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ "$code" == 2* ]] || { gw_tail; die "admin $1 $2 -> $code: $out"; }
  echo "$out"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

start_gateway info
P1=$(admin POST /admin/providers "{\"name\":\"bench-fast\",\"kind\":\"openai\",\"api_key\":\"sk-upstream-bench-0001\",\"base_url\":\"http://127.0.0.1:$UP_PORT/v1\"}" | field id)
P2=$(admin POST /admin/providers "{\"name\":\"bench-mock\",\"kind\":\"openai\",\"api_key\":\"sk-upstream-bench-0002\",\"base_url\":\"http://127.0.0.1:$MOCK_PORT/v1\"}" | field id)
admin POST /admin/models "{\"name\":\"$MODEL\",\"provider_id\":\"$P1\",\"provider_model_name\":\"gpt-4o-mini\"}" >/dev/null
admin POST /admin/models "{\"name\":\"$STREAM_MODEL\",\"provider_id\":\"$P2\",\"provider_model_name\":\"gpt-4o-mini\"}" >/dev/null
USER_KEY=$(admin POST /admin/keys '{"name":"bench"}' | field key)
# A key with every limit set, none ever reached: the cost of admission (one Redis round trip, the
# key's Lua script) and of the queued reconcile after each answer.
LIMITED_KEY=$(admin POST /admin/keys '{"name":"bench-limited","rpm":1000000000,"rpd":1000000000000,"tpm":1000000000000,"max_parallel":100000,"token_budget":1000000000000000,"budget_usd":1000000000}' | field key)

# One request by hand: the gateway must answer 200 with the canned body before any load.
check_one() { # PORT KEY WHAT
  local code
  code=$(curl -s -o "$WORK/check.out" -w '%{http_code}' "http://127.0.0.1:$1/v1/chat/completions" \
    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
    -d "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
  [[ "$code" == 200 ]] && grep -q chatcmpl-bench "$WORK/check.out" \
    || { cat "$WORK/check.out" >&2; [[ "$3" == gateway* ]] && gw_tail; die "$3 answered $code, not 200 with the canned body"; }
}
check_one "$UP_PORT" sk-bench direct
check_one "$PX_PORT" sk-bench nginx
check_one "$GW_PORT" "$USER_KEY" gateway
check_one "$GW_PORT" "$LIMITED_KEY" gateway-limited

# ---- measuring ----------------------------------------------------------------------------------
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)

cpu_ticks() { # PID...: utime+stime of these processes and their children (nginx workers)
  local p total=0 all=()
  for p in "$@"; do
    all+=("$p")
    while read -r c; do all+=("$c"); done < <(pgrep -P "$p" || true)
  done
  for p in "${all[@]}"; do
    # Fields after "(comm) ": state ppid ... utime is the 12th, stime the 13th.
    total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}

rss_kb() { # PID... -> "VmRSS VmHWM" summed (kB) over them and their children
  local p all=()
  for p in "$@"; do
    all+=("$p")
    while read -r c; do all+=("$c"); done < <(pgrep -P "$p" || true)
  done
  for p in "${all[@]}"; do cat "/proc/$p/status"; done \
    | awk '/^VmRSS:/{r+=$2} /^VmHWM:/{h+=$2} END{print r, h}'
}

redis_stats() { # -> "CPU_US COMMANDS" of our Redis (INFO: getrusage, microsecond resolution)
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" INFO | tr -d '\r' | awk -F: '
    /^used_cpu_(user|sys):/ {cpu += $2}
    /^total_commands_processed:/ {n = $2}
    END {printf "%.0f %d\n", cpu * 1e6, n}'
}

# bench TARGET PORT KEY CONNS THREADS [PROXY_PID [redis]]
bench() {
  local target=$1 port=$2 key=$3 conns=$4 threads=$5 ppid=${6:-} with_redis=${7:-}
  local url="http://127.0.0.1:$port/v1/chat/completions" out=$WORK/wrk-$1-c$4.txt
  local load1 p0=0 p1=0 r0="0 0" r1="0 0" json
  log "$target -c$conns: ${WARMUP}s warm-up, ${DURATION}s measured"
  BENCH_KEY=$key BENCH_MODEL=$MODEL "${LOAD[@]}" wrk -t"$threads" -c"$conns" -d"${WARMUP}s" \
    -s "$BENCH/post.lua" "$url" >"$out.warmup" 2>&1 || { cat "$out.warmup" >&2; die "wrk warm-up failed"; }
  load1=$(cut -d' ' -f1 /proc/loadavg)
  [[ -n "$ppid" ]] && p0=$(cpu_ticks "$ppid")
  [[ -n "$with_redis" ]] && r0=$(redis_stats)
  BENCH_KEY=$key BENCH_MODEL=$MODEL "${LOAD[@]}" wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency \
    -s "$BENCH/post.lua" "$url" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  [[ -n "$ppid" ]] && p1=$(cpu_ticks "$ppid")
  [[ -n "$with_redis" ]] && r1=$(redis_stats)
  json=$(sed -n 's/^BENCH_JSON //p' "$out")
  [[ -n "$json" ]] || { cat "$out" >&2; die "no BENCH_JSON line in wrk output"; }
  python3 - "$json" "$target" "$conns" "$threads" "$load1" "$((p1 - p0))" "$CLK_TCK" "${ppid:+1}" \
    "${with_redis:+1}" "$r0" "$r1" "$out" >>"$RESULTS" <<'PY'
import json, sys
(js, target, conns, threads, load1, ticks, clk, has_proxy, has_redis, r0, r1, raw) = sys.argv[1:]
j = json.loads(js)
(c0, n0), (c1, n1) = (map(int, r0.split()), map(int, r1.split()))
j.update(target=target, conns=int(conns), threads=int(threads), load1=float(load1),
         proxy_cpu_us=int(ticks) * 1e6 / int(clk) if has_proxy else None,
         redis_cpu_us=c1 - c0 if has_redis else None,
         redis_cmds=n1 - n0 - 1 if has_redis else None,  # minus our own INFO
         raw=open(raw).read())
print(json.dumps(j))
PY
  # Every answer must have been a 200 and no socket may have failed.
  if ! python3 -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(1 if j["requests"] == 0 or any(j[k] for k in ("err_connect","err_read","err_write","err_status","err_timeout")) else 0)' "$json"; then
    cat "$out" >&2
    [[ "$target" == gateway* ]] && gw_tail
    die "$target -c$conns: non-2xx responses or socket errors (see above)"
  fi
}

# sse TARGET PORT KEY MODEL
sse() {
  local json
  log "$1: $SSE_N streamed requests (time to first byte)"
  json=$("${LOAD[@]}" python3 "$BENCH/client.py" sse "$2" "$3" "$4" "$SSE_N") \
    || { [[ "$1" == gateway* ]] && gw_tail; die "SSE run against $1 failed"; }
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if j["statuses"] == {"200": j["n"]} else 1)' "$json" \
    || { echo "$json" >&2; [[ "$1" == gateway* ]] && gw_tail; die "SSE run against $1: not all 200"; }
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); j.update(target=sys.argv[2], kind="sse"); print(json.dumps(j))' \
    "$json" "$1" >>"$RESULTS"
}

# syscalls TARGET PORT KEY PID...: strace -c on these processes while 2000 sequential requests go
# through one keep-alive connection. Exact counts, unlike timings; strace slows the target a lot.
syscalls() {
  local target=$1 port=$2 key=$3 n=2000 args=() p; shift 3
  for p in "$@"; do args+=(-p "$p"); done
  log "$target: syscalls of $n sequential requests (strace -c)"
  "${LOAD[@]}" strace -c -f -o "$WORK/strace-$target.txt" "${args[@]}" 2>"$WORK/strace-$target.err" &
  STRACE_PID=$!
  sleep 1 # attach
  "${LOAD[@]}" python3 "$BENCH/client.py" plain "$port" "$key" "$MODEL" "$n" 0 >"$WORK/strace-$target.client" \
    || { [[ "$target" == gateway* ]] && gw_tail; die "plain client against $target failed"; }
  sleep 0.2
  stop_pid "$STRACE_PID" INT
  STRACE_PID=""
  python3 - "$WORK/strace-$target.txt" "$target" "$n" >>"$RESULTS" <<'PY'
import json, sys
calls = {}
for line in open(sys.argv[1]):
    f = line.split()
    # "% time  seconds  usecs/call  calls  [errors]  syscall"; skip headers, rulers and "total"
    if len(f) in (5, 6) and f[0][0].isdigit() and f[-1] != "total":
        calls[f[-1]] = int(f[3])
print(json.dumps({"kind": "sys", "target": sys.argv[2], "n": int(sys.argv[3]), "calls": calls}))
PY
}

record() { # KEY VALUE -> a meta line
  python3 -c 'import json,sys; print(json.dumps({"kind":"meta","key":sys.argv[1],"value":sys.argv[2]}))' "$1" "$2" >>"$RESULTS"
}

LOAD_START=$(uptime)
# Concurrency 1 (one wrk thread) and 64 (two wrk threads), each target in turn.
for spec in 1:1 64:2; do
  conns=${spec%:*} threads=${spec#*:}
  bench direct "$UP_PORT" sk-bench "$conns" "$threads"
  bench nginx "$PX_PORT" sk-bench "$conns" "$threads" "$PX_PID"
  bench gateway-info "$GW_PORT" "$USER_KEY" "$conns" "$threads" "$GW_PID" redis
  bench gateway-limited "$GW_PORT" "$LIMITED_KEY" "$conns" "$threads" "$GW_PID" redis
done
record rss:gateway-info "$(rss_kb "$GW_PID")"

sse direct "$MOCK_PORT" sk-bench "$STREAM_MODEL"
sse nginx "$PX_SSE_PORT" sk-bench "$STREAM_MODEL"
sse gateway-info "$GW_PORT" "$USER_KEY" "$STREAM_MODEL"

if [[ "$STRACE" == 1 ]] && command -v strace >/dev/null; then
  # shellcheck disable=SC2046 # nginx: the workers (children of the master) do the work
  syscalls nginx "$PX_PORT" sk-bench $(pgrep -P "$PX_PID")
  syscalls gateway-info "$GW_PORT" "$USER_KEY" "$GW_PID"
fi

# Where the gateway spends its CPU: a flat profile (the Release build has no frame pointers, so
# no call graphs) of one more 64-connection run. Not part of the numbers above.
if [[ "$PERF" == 1 ]] && command -v perf >/dev/null; then
  log "gateway-info -c64 under perf record (${DURATION}s, profile only)"
  "${LOAD[@]}" perf record -e cpu-clock -F 999 -p "$GW_PID" -o "$WORK/perf.data" -- sleep "$DURATION" \
    >"$WORK/perf.log" 2>&1 &
  PERF_PID=$!
  BENCH_KEY=$USER_KEY BENCH_MODEL=$MODEL "${LOAD[@]}" wrk -t2 -c64 -d"${DURATION}s" \
    -s "$BENCH/post.lua" "http://127.0.0.1:$GW_PORT/v1/chat/completions" >"$WORK/wrk-perf.txt" 2>&1 || true
  if wait "$PERF_PID" && [[ -s "$WORK/perf.data" ]]; then
    perf report -i "$WORK/perf.data" --stdio --no-children --sort dso 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -n 12 >"$WORK/perf-dso.txt" || true
    perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,sym 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -n 40 | cut -c1-150 >"$WORK/perf-sym.txt" || true
    record perf_dso "$(cat "$WORK/perf-dso.txt")"
    record perf_sym "$(cat "$WORK/perf-sym.txt")"
  else
    log "perf record failed (see below); no profile"; cat "$WORK/perf.log" >&2
  fi
  PERF_PID=""
fi

GW_LINES_INFO=$(wc -l <"$GW_LOG")
stop_pid "$GW_PID"
GW_PID=""
start_gateway warn
check_one "$GW_PORT" "$USER_KEY" gateway-warn
for spec in 1:1 64:2; do
  conns=${spec%:*} threads=${spec#*:}
  bench gateway-warn "$GW_PORT" "$USER_KEY" "$conns" "$threads" "$GW_PID" redis
done
record rss:gateway-warn "$(rss_kb "$GW_PID")"
record rss:nginx-proxy "$(rss_kb "$PX_PID")"
record rss:redis "$(rss_kb "$REDIS_PID")"
record gw_log_lines_info "$GW_LINES_INFO"
record gw_log_lines_warn "$(wc -l <"$GW_LOG")"
LOAD_END=$(uptime)

# ---- report -------------------------------------------------------------------------------------
OUT=${BENCH_OUT:-$BENCH/results/$(date +%F)-$SHA.md}
mkdir -p "$(dirname "$OUT")"
record cmdline "$CMDLINE"
record date "$(date -u '+%F %T UTC')"
record git "$SHA$DIRTY"
record nproc "$(nproc)"
record cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) ($(grep -c '^processor' /proc/cpuinfo) logical CPUs)"
record mem "$(awk '/^MemTotal:/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
record kernel "$(uname -sr)"
record load_start "$LOAD_START"
record load_end "$LOAD_END"
record pinning "$PINNING"
record duration "$DURATION"
record warmup "$WARMUP"
record sse_n "$SSE_N"
record gateway "$("$BIN" --version 2>&1 | head -n1), $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$(dirname "$BIN_SRC")/../CMakeCache.txt" 2>/dev/null) build, ${BIN_SRC#"$REPO"/} built $BIN_MTIME, sha256 $BIN_SHA…"
record wrk "$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
record nginx "$(nginx -v 2>&1 | sed 's/.*: //')"
record redis "$(redis-server --version | cut -d' ' -f1-3)"
record postgres "$("$(_pg_bin)/postgres" --version)"
record node "$(node --version)"
record python "$(python3 --version)"
python3 "$BENCH/report.py" "$RESULTS" >"$OUT"
cat "$OUT"
log "report written to ${OUT#"$REPO"/}"

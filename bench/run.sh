#!/usr/bin/env bash
# Load benchmark of llm-gateway against nginx (plain proxy_pass) and a peer gateway (Portkey), all
# in front of the same fast upstreams, driven by the same load generators, in one run.
#
#   bash bench/run.sh                  # full run, about 10 minutes
#   BENCH_QUICK=1 bash bench/run.sh    # smoke run, about 4 minutes: short runs, fewer streams
#
# Writes bench/results/YYYY-MM-DD-<sha>[-quick].md and .png (latency percentiles per contender);
# a full run also copies its report to bench/RESULTS.md. Everything listens on 127.0.0.1, lives in
# a temp dir, and is stopped when the script exits, also on failure or Ctrl-C.
#
# Knobs (environment; full-run default / BENCH_QUICK=1 default):
#   BENCH_WORKERS="1 2"        gateway WORKERS = nginx worker_processes, one block each
#   BENCH_CONCS="1 64 256"     wrk connections of the non-streaming runs
#   BENCH_DURATION=8 / 2       seconds measured per wrk run     BENCH_WARMUP=2 / 1  warm-up before each
#   BENCH_STREAMS=1000 / 200   concurrent streams               BENCH_STREAM_CHUNKS=64  BENCH_STREAM_INTERVAL=20 (ms)
#   BENCH_IDLE_N=10000 / 1000  idle streams held (capped by the fd hard limit)  BENCH_IDLE_HOLD=5 / 2 (s)
#   BENCH_SYS_DURATION=3 / 1   seconds of the syscall-counting runs
#   BENCH_PORTKEY=1            the peer gateway (bench/peer, `npm ci` there first); 0 = skip
#   BENCH_PORTKEY_STREAMS=1    also stream through Portkey
#   BENCH_PERF=1               perf record -g of the gateway under 64 connections
#   BENCH_PERF_CALLGRAPH=fp    its call graphs: fp (-g; the Release build has no frame pointers) or dwarf
#   BENCH_SYSCALLS=1           syscalls per request (perf stat on syscall tracepoints, else strace -c -f)
#   BENCH_SYSCALL_TOOL=        perf or strace: force one
#   BENCH_PIN=1                pin the proxies to the last W CPUs, the load side to the others
#   BENCH_DEPS_ON=load         where the gateway's PostgreSQL and Redis run when pinned: load (with the
#                              load side, as on a separate host in production) or proxy (sharing the
#                              proxy's CPUs)
#   BENCH_LOG_OFF_ENV="LOG_LEVEL=warn"   how the "request log off" gateway is started
#   BENCH_KEEP=1               keep the temp dir (logs, configs, raw outputs, perf.data)
#   LLMGW_BIN                  gateway binary (default build/gateway/llm-gateway)
#   BENCH_OUT                  report path (default bench/results/YYYY-MM-DD-<sha>[-quick].md)
# See bench/README.md for what is measured and how to read it.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/bench
# shellcheck source=../scripts/lib/services.sh
source "$REPO/scripts/lib/services.sh"

QUICK=${BENCH_QUICK:-0}
q() { if [[ "$QUICK" == 1 ]]; then echo "$2"; else echo "$1"; fi; } # FULL QUICK
WORKERS_LIST=${BENCH_WORKERS:-1 2}
CONCS=${BENCH_CONCS:-1 64 256}
DURATION=${BENCH_DURATION:-$(q 8 2)}
WARMUP=${BENCH_WARMUP:-$(q 2 1)}
STREAMS=${BENCH_STREAMS:-$(q 1000 200)}
CHUNKS=${BENCH_STREAM_CHUNKS:-64}
INTERVAL=${BENCH_STREAM_INTERVAL:-20}
IDLE_N=${BENCH_IDLE_N:-$(q 10000 1000)}
IDLE_HOLD=${BENCH_IDLE_HOLD:-$(q 5 2)}
SYS_DURATION=${BENCH_SYS_DURATION:-$(q 3 1)}
PORTKEY=${BENCH_PORTKEY:-1}
PORTKEY_STREAMS=${BENCH_PORTKEY_STREAMS:-1}
PERF=${BENCH_PERF:-1}
PERF_CALLGRAPH=${BENCH_PERF_CALLGRAPH:-fp}
SYSCALLS=${BENCH_SYSCALLS:-1}
PIN=${BENCH_PIN:-1}
DEPS_ON=${BENCH_DEPS_ON:-load}
[[ "$DEPS_ON" == load || "$DEPS_ON" == proxy ]] || { echo "BENCH_DEPS_ON: load or proxy" >&2; exit 2; }
LOG_OFF_ENV=${BENCH_LOG_OFF_ENV:-LOG_LEVEL=warn}
BIN=${LLMGW_BIN:-$REPO/build/gateway/llm-gateway}
MODEL=gpt-bench               # -> the canned nginx upstream
STREAM_MODEL=gpt-bench-stream # -> the streamer upstream

CMDLINE=""
for v in BENCH_QUICK BENCH_WORKERS BENCH_CONCS BENCH_DURATION BENCH_WARMUP BENCH_STREAMS BENCH_STREAM_CHUNKS \
  BENCH_STREAM_INTERVAL BENCH_IDLE_N BENCH_IDLE_HOLD BENCH_SYS_DURATION BENCH_PORTKEY BENCH_PORTKEY_STREAMS \
  BENCH_PERF BENCH_PERF_CALLGRAPH BENCH_SYSCALLS BENCH_SYSCALL_TOOL BENCH_PIN BENCH_DEPS_ON BENCH_LOG_OFF_ENV BENCH_KEEP LLMGW_BIN BENCH_OUT; do
  [[ -n "${!v:-}" ]] && CMDLINE+="$v=${!v@Q} "
done
CMDLINE+="bash bench/run.sh"

log() { echo "[bench $(date +%T)] $*" >&2; }
die() { echo "[bench] FAILED: $*" >&2; exit 1; }

for tool in wrk nginx redis-server redis-cli psql python3 curl taskset cc; do
  command -v "$tool" >/dev/null || die "$tool not found (bash scripts/install-deps.sh)"
done
[[ -x "$BIN" ]] || die "gateway binary not found at $BIN (cmake --build build, or set LLMGW_BIN)"
PEER_JS=$BENCH/peer/node_modules/@portkey-ai/gateway/build/start-server.js
if [[ "$PORTKEY" == 1 ]]; then
  command -v node >/dev/null || die "node not found (Portkey needs Node.js 20; BENCH_PORTKEY=0 skips it)"
  if [[ ! -f "$PEER_JS" ]]; then
    log "installing the peer gateway (npm ci in bench/peer)"
    (cd "$BENCH/peer" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in bench/peer failed"
  fi
fi

# Descriptors: 10,000 idle streams need 20,000+ in the gateway (client + upstream socket each).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)

# ---- processes and cleanup ----------------------------------------------------------------------
WORK=$(mktemp -d /tmp/llmgw-bench.XXXXXX)
SVC=$WORK/svc
PIDS=() # every background process started here; cleanup stops them, newest first

stop_pid() { # PID [SIGNAL]: signal it, wait up to 5 s, then SIGKILL it and whatever children it left
  local pid=$1 sig=${2:-TERM} i kids
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kids=$(pgrep -P "$pid" 2>/dev/null | paste -sd' ' || true)
  kill -"$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  for i in $kids; do kill -KILL "$i" 2>/dev/null || true; done
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  redis_stop "$SVC" >/dev/null 2>&1 || true
  pg_stop "$SVC" >/dev/null 2>&1 || true
  if [[ "${BENCH_KEEP:-0}" == 1 || $rc != 0 ]]; then
    log "temp dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- CPU layout ---------------------------------------------------------------------------------
# Block with W workers: the proxy under test (and the gateway's Redis and PostgreSQL) on the last W
# CPUs, the load side (wrk, the upstreams, the stream clients) on the others; when there are not
# more than W CPUs, nothing is pinned (everything shares every CPU).
NCPU=$(nproc)
ALL_CPUS="0-$((NCPU - 1))"
LOAD=() PROXY=() LOAD_CPUS=$ALL_CPUS PROXY_CPUS=$ALL_CPUS DEPS_CPUS=$ALL_CPUS LAYOUT=""
layout() { # W
  local w=$1
  if [[ "$PIN" == 1 && $NCPU -gt $w ]]; then
    LOAD_CPUS="0-$((NCPU - w - 1))" PROXY_CPUS="$((NCPU - w))-$((NCPU - 1))"
    LOAD=(taskset -c "$LOAD_CPUS") PROXY=(taskset -c "$PROXY_CPUS")
    if [[ "$DEPS_ON" == load ]]; then
      DEPS_CPUS=$LOAD_CPUS
      LAYOUT="proxy under test on CPU $PROXY_CPUS; wrk, upstreams, stream clients and the gateway's Redis + PostgreSQL on CPU $LOAD_CPUS"
    else
      DEPS_CPUS=$PROXY_CPUS
      LAYOUT="proxy under test + its Redis + PostgreSQL on CPU $PROXY_CPUS; wrk, upstreams and stream clients on CPU $LOAD_CPUS"
    fi
  else
    LOAD_CPUS=$ALL_CPUS PROXY_CPUS=$ALL_CPUS DEPS_CPUS=$ALL_CPUS LOAD=() PROXY=()
    LAYOUT="not pinned: $NCPU CPUs for proxy, load generator and upstreams together"
  fi
}
repin() { # CPUS PID...: every thread of these processes and of their children
  local cpus=$1 p c; shift
  for p in "$@"; do
    for c in "$p" $(pgrep -P "$p" 2>/dev/null || true); do taskset -a -cp "$cpus" "$c" >/dev/null 2>&1 || true; done
  done
}

# The commit and a private copy of the binary (others may rebuild while this runs).
SHA=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo nogit)
DIRTY=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -v '^.. bench/' \
  | awk '{print $2}' | paste -sd' ' || true)
[[ -n "$DIRTY" ]] && DIRTY=" + uncommitted changes in: $DIRTY"
cp "$BIN" "$WORK/llm-gateway"
BIN_SHA=$(sha256sum "$WORK/llm-gateway" | cut -c1-12)
BIN_MTIME=$(date -u -r "$BIN" '+%F %T UTC')
BIN_SRC=$BIN
BIN=$WORK/llm-gateway
cc -O2 -o "$WORK/streamer" "$BENCH/streamer.c" || die "cc bench/streamer.c failed"
STREAMER=$WORK/streamer

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)
jrec() { # KIND KEY=VALUE... -> one JSON line (values: JSON if they parse, else strings)
  python3 - "$@" >>"$RESULTS" <<'PY'
import json, sys
o = {"kind": sys.argv[1]}
for a in sys.argv[2:]:
    k, _, v = a.partition("=")
    try:
        o[k] = json.loads(v)
    except ValueError:
        o[k] = v
print(json.dumps(o))
PY
}
meta() { jrec meta key="$1" value="$(printf '%s' "$2" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"; }

wait_http() { # URL: until something answers (any status), 20 s
  local i
  for ((i = 0; i < 400; i++)); do
    curl -s -o /dev/null -m 1 "$1" && return 0
    sleep 0.05
  done
  return 1
}
port_of() { # FILE PID: the port in a {"listening":PORT} line, 10 s
  local i p
  for ((i = 0; i < 200; i++)); do
    p=$(sed -n 's/.*"listening":\([0-9]*\).*/\1/p' "$1" | head -n1)
    [[ -n "$p" ]] && { echo "$p"; return 0; }
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  return 1
}

# ---- upstreams ----------------------------------------------------------------------------------
# Non-streaming: nginx returning a canned chat.completion (no "$" in it: nginx would expand it).
CANNED='{"id":"chatcmpl-bench0000000000000000000001","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the capital of France; the Seine flows through it.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":38,"completion_tokens":14,"total_tokens":52,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_bench"}'

nginx_head() { # DIR WORKERS
  mkdir -p "$1/tmp"
  cat <<EOF
worker_processes $2;
worker_rlimit_nofile $FD_LIMIT;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections $FD_LIMIT; }
http {
    access_log off;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
EOF
}
start_nginx() { # DIR PIN...: nginx in the foreground as our child; sets NGINX_PID
  local d=$1; shift
  "$@" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;' >"$d/stdout.log" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
}

UP_PORT=$(free_port)
UP_DIR=$WORK/upstream
mkdir -p "$UP_DIR"
{
  nginx_head "$UP_DIR" 1
  cat <<EOF
    server {
        listen 127.0.0.1:$UP_PORT backlog=4096;
        location = /v1/chat/completions {
            default_type application/json;
            return 200 '$CANNED';
        }
    }
}
EOF
} >"$UP_DIR/nginx.conf"
start_nginx "$UP_DIR"
UP_PID=$NGINX_PID
wait_http "http://127.0.0.1:$UP_PORT/" || { cat "$UP_DIR/error.log" >&2; die "upstream nginx did not start"; }

# Streaming: bench/streamer.c (one epoll thread; chunks stamped with their send time).
"$STREAMER" upstream --port 0 --chunks "$CHUNKS" --interval "$INTERVAL" >"$WORK/streamer-upstream.out" 2>&1 &
ST_PID=$!
PIDS+=("$ST_PID")
ST_PORT=$(port_of "$WORK/streamer-upstream.out" "$ST_PID") || { cat "$WORK/streamer-upstream.out" >&2; die "streamer upstream did not start"; }
log "upstreams: canned nginx :$UP_PORT, streamer :$ST_PORT"

# ---- PostgreSQL (with pg_stat_statements) + Redis -----------------------------------------------
PG_PORT=$(free_port)
REDIS_PORT=$(free_port)
while [[ "$REDIS_PORT" == "$PG_PORT" ]]; do REDIS_PORT=$(free_port); done
mkdir -p "$SVC"
pg_start "$SVC" "$PG_PORT" || die "PostgreSQL did not start"
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d llmgw -Xqc "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null
pg_stop "$SVC" && pg_start "$SVC" "$PG_PORT" || die "PostgreSQL did not restart"
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d llmgw -Xqc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null \
  || die "pg_stat_statements is not available"
PG_PID=$(head -n1 "$SVC/pg/postmaster.pid")
redis_start "$SVC" "$REDIS_PORT" || die "Redis did not start"
REDIS_PID=$(cat "$SVC/redis.pid")
log "PostgreSQL :$PG_PORT (pid $PG_PID), Redis :$REDIS_PORT (pid $REDIS_PID)"

psql_llmgw() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d llmgw -XtAc "$1"; }
pg_statements() { # statements executed so far (every top-level statement, ours excluded)
  psql_llmgw "SELECT coalesce(sum(calls),0)::bigint FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%'"
}

# ---- measuring helpers --------------------------------------------------------------------------
all_pids() { # PID... -> them and their children
  local p
  for p in "$@"; do echo "$p"; pgrep -P "$p" 2>/dev/null || true; done
}
cpu_ticks() { # PID...: utime+stime (clock ticks) of these processes and their children, all threads
  local p total=0 t
  for p in $(all_pids "$@"); do
    t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
rss_kb() { # PID... -> "VmRSS VmHWM" in kB, summed over them and their children
  local p
  for p in $(all_pids "$@"); do cat "/proc/$p/status" 2>/dev/null || true; done \
    | awk '/^VmRSS:/{r+=$2} /^VmHWM:/{h+=$2} END{print r+0, h+0}'
}
redis_stats() { # -> "CPU_US COMMANDS"
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" INFO | tr -d '\r' | awk -F: '
    /^used_cpu_(user|sys):/ {cpu += $2}
    /^total_commands_processed:/ {n = $2}
    END {printf "%.0f %d\n", cpu * 1e6, n}'
}
metric_sum() { # PORT NAME_REGEX -> the sum of the gateway's /metrics samples whose name matches
  curl -s -m 5 "http://127.0.0.1:$1/metrics" | awk -v re="^$2([{ ]|$)" '$0 ~ re {s += $NF} END {printf "%.0f\n", s}'
}

# Contenders: NAME -> port, key, extra headers, pids for CPU/RSS, kind.
declare -A C_PORT C_KEY C_HDRS C_PID C_KIND C_SPORT C_SHDRS C_LABEL
contender() { # NAME KIND PORT KEY PID LABEL [HEADERS [STREAM_PORT [STREAM_HEADERS]]]
  C_KIND[$1]=$2 C_PORT[$1]=$3 C_KEY[$1]=$4 C_PID[$1]=$5 C_LABEL[$1]=$6
  C_HDRS[$1]=${7:-} C_SPORT[$1]=${8:-$3} C_SHDRS[$1]=${9:-}
}

check_one() { # NAME: one request by hand must answer 200 with a chat.completion
  local n=$1 code args=()
  local IFS='|'
  for h in ${C_HDRS[$n]}; do args+=(-H "$h"); done
  unset IFS
  code=$(curl -s -m 10 -o "$WORK/check-$n.out" -w '%{http_code}' "http://127.0.0.1:${C_PORT[$n]}/v1/chat/completions" \
    -H "Authorization: Bearer ${C_KEY[$n]}" -H 'Content-Type: application/json' "${args[@]}" \
    -d "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
  [[ "$code" == 200 ]] && grep -q '"chat.completion"' "$WORK/check-$n.out" \
    || { cat "$WORK/check-$n.out" >&2; die "$n answered $code, not 200 with a chat.completion"; }
}

tail_logs() { # NAME: the last lines of its log, on a failure
  local f=$WORK/$1.log
  [[ -f "$f" ]] && { echo "--- last lines of $f ---" >&2; tail -n 20 "$f" >&2; }
  return 0
}

# wrk_run NAME CONNS DURATION OUT [RANDOM_KEY]: prints the BENCH_JSON of the run
wrk_run() {
  local n=$1 c=$2 d=$3 out=$4 t=2
  ((c == 1)) && t=1
  BENCH_KEY=${C_KEY[$n]} BENCH_MODEL=$MODEL BENCH_HEADERS=${C_HDRS[$n]} BENCH_RANDOM_KEY=${5:-0} \
    "${LOAD[@]}" wrk -t"$t" -c"$c" -d"${d}s" --timeout 10s --latency -s "$BENCH/post.lua" \
    "http://127.0.0.1:${C_PORT[$n]}/v1/chat/completions" >"$out" 2>&1 || { cat "$out" >&2; die "wrk against $n failed"; }
  sed -n 's/^BENCH_JSON //p' "$out" | grep . || { cat "$out" >&2; die "no BENCH_JSON line from wrk against $n"; }
}

snap() { # NAME -> "proxy_ticks redis_cpu_us redis_cmds pg_ticks pg_statements" (zeros when not a gateway)
  local n=$1
  if [[ ${C_KIND[$n]} == gateway ]]; then
    echo "$(cpu_ticks "${C_PID[$n]}") $(redis_stats) $(cpu_ticks "$PG_PID") $(pg_statements)"
  elif [[ ${C_KIND[$n]} == direct ]]; then
    echo "0 0 0 0 0"
  else
    echo "$(cpu_ticks "${C_PID[$n]}") 0 0 0 0"
  fi
}

# bench NAME CONNS: warm-up, then the measured wrk run with CPU of the proxy (and the gateway's
# Redis and PostgreSQL) around it
bench() {
  local n=$1 c=$2 s0 s1 json load1 out=$WORK/wrk-w$BLOCK-$1-c$2.txt
  log "w$BLOCK $n -c$c: ${WARMUP}s warm-up, ${DURATION}s measured"
  wrk_run "$n" "$c" "$WARMUP" "$out.warmup" >/dev/null
  load1=$(cut -d' ' -f1 /proc/loadavg)
  s0=$(snap "$n")
  json=$(wrk_run "$n" "$c" "$DURATION" "$out")
  s1=$(snap "$n")
  python3 - "$json" "$n" "${C_KIND[$n]}" "$c" "$BLOCK" "$load1" "$s0" "$s1" "$CLK_TCK" >>"$RESULTS" <<'PY'
import json, sys
js, name, kind, conns, block, load1, s0, s1, clk = sys.argv[1:]
j = json.loads(js)
a, b = [list(map(int, s.split())) for s in (s0, s1)]
d = [y - x for x, y in zip(a, b)]
j.update(kind="run", target=name, tkind=kind, conns=int(conns), workers=int(block), load1=float(load1))
if kind != "direct":
    j["proxy_cpu_us"] = d[0] * 1e6 / int(clk)
if kind == "gateway":
    # minus our own INFO and psql query
    j.update(redis_cpu_us=d[1], redis_cmds=d[2] - 1, pg_cpu_us=d[3] * 1e6 / int(clk), pg_statements=d[4])
print(json.dumps(j))
PY
  if ! python3 -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(1 if j["requests"] == 0 or any(j[k] for k in ("err_connect","err_read","err_write","err_status","err_timeout")) else 0)' "$json"; then
    log "WARNING: $n -c$c had errors (non-2xx or socket errors), see the report"
    grep -v BENCH_JSON "$out" >&2 || true
    tail_logs "$n"
  fi
}

# stream NAME: STREAMS concurrent streams, each CHUNKS chunks INTERVAL ms apart, 3 rounds (the
# middle one measured), through the contender; CPU of the proxy around it
stream() {
  local n=$1 t0 t1 u0 u1 out=$WORK/stream-w$BLOCK-$1.json args=()
  local IFS='|'
  for h in ${C_SHDRS[$n]}; do args+=(--header "$h"); done
  unset IFS
  log "w$BLOCK $n: $STREAMS streams x $CHUNKS chunks, ${INTERVAL} ms apart"
  t0=$( [[ ${C_KIND[$n]} == direct ]] && echo 0 || cpu_ticks "${C_PID[$n]}")
  u0=$(cpu_ticks "$ST_PID")
  "${LOAD[@]}" "$STREAMER" stream --port "${C_SPORT[$n]}" --key "${C_KEY[$n]}" --model "$STREAM_MODEL" \
    --conns "$STREAMS" --chunks "$CHUNKS" --interval "$INTERVAL" --rounds 3 "${args[@]}" >"$out" 2>"$out.err" \
    || { cat "$out.err" >&2; die "stream client against $n failed"; }
  t1=$( [[ ${C_KIND[$n]} == direct ]] && echo 0 || cpu_ticks "${C_PID[$n]}")
  u1=$(cpu_ticks "$ST_PID")
  python3 - "$out" "$n" "${C_KIND[$n]}" "$BLOCK" "$((t1 - t0))" "$CLK_TCK" "$((u1 - u0))" >>"$RESULTS" <<'PY'
import json, sys
path, name, kind, block, ticks, clk, uticks = sys.argv[1:]
j = json.loads(open(path).read().strip().splitlines()[-1])
j.update(kind="stream", target=name, tkind=kind, workers=int(block),
         upstream_cpu_us=int(uticks) * 1e6 / int(clk))
if kind != "direct":
    j["proxy_cpu_us"] = int(ticks) * 1e6 / int(clk)
print(json.dumps(j))
PY
}

# idle NAME [N]: N (default IDLE_EFF) idle streams opened through the contender and held; its RSS and CPU
idle() {
  local n=$1 want=${2:-$IDLE_EFF} out=$WORK/idle-$1.out ipid r0 r1 r2 t0 t1 t2 t3 i
  log "w$BLOCK $n: $want idle streams held ${IDLE_HOLD}s"
  r0=$(rss_kb "${C_PID[$n]}")
  t0=$(cpu_ticks "${C_PID[$n]}")
  "${LOAD[@]}" "$STREAMER" idle --port "${C_SPORT[$n]}" --key "${C_KEY[$n]}" --model "$STREAM_MODEL" \
    --n "$want" --window 500 --hold-max 600 >"$out" 2>&1 &
  ipid=$!
  PIDS+=("$ipid")
  for ((i = 0; i < 1800; i++)); do
    grep -q '"phase":"holding"' "$out" && break
    kill -0 "$ipid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '"phase":"holding"' "$out" || { cat "$out" >&2; die "idle streams through $n: not all opened within 180 s"; }
  t1=$(cpu_ticks "${C_PID[$n]}")
  sleep 0.5
  r1=$(rss_kb "${C_PID[$n]}")
  t2=$(cpu_ticks "${C_PID[$n]}")
  sleep "$IDLE_HOLD"
  t3=$(cpu_ticks "${C_PID[$n]}")
  # The gateway's CPU while its streams sit idle: what it does, in another IDLE_HOLD seconds.
  if [[ ${C_KIND[$n]} == gateway ]]; then
    local pp="" sp=""
    if [[ "$PERF" == 1 ]] && command -v perf >/dev/null; then
      perf record -g -F 999 -p "${C_PID[$n]}" -o "$WORK/perf-idle.data" -- sleep "$IDLE_HOLD" >"$WORK/perf-idle.log" 2>&1 &
      pp=$!
      PIDS+=("$pp")
    fi
    if [[ $SYS_TOOL == perf ]]; then
      perf stat -x, -e "$SYS_EVENTS" -p "${C_PID[$n]}" -o "$WORK/sys-idle.txt" -- sleep "$IDLE_HOLD" >/dev/null 2>&1 &
      sp=$!
      PIDS+=("$sp")
    fi
    [[ -n "$pp" ]] && { wait "$pp" || true; }
    [[ -n "$sp" ]] && { wait "$sp" || true; }
    if [[ -s "$WORK/perf-idle.data" ]]; then
      perf report -i "$WORK/perf-idle.data" --stdio --no-children -g none --sort dso,sym 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -n 25 | cut -c1-160 >"$WORK/perf-idle-sym.txt" || true
      jrec idleperf target="$n" seconds="$IDLE_HOLD" streams="$want" \
        sym="$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$WORK/perf-idle-sym.txt")"
    fi
    if [[ -s "$WORK/sys-idle.txt" ]]; then
      jrec idlesys target="$n" seconds="$IDLE_HOLD" streams="$want" calls="$(python3 - "$WORK/sys-idle.txt" <<'PY'
import json, sys
calls = {}
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].isdigit() and int(f[0]) > 0:
        calls[f[2].split(":")[-1].replace("sys_enter_", "")] = int(f[0])
print(json.dumps(calls))
PY
)"
    fi
  fi
  kill -USR2 "$ipid"
  wait "$ipid" || true
  sleep 1
  r2=$(rss_kb "${C_PID[$n]}")
  python3 - "$out" "$n" "${C_KIND[$n]}" "$BLOCK" "$want" "$r0" "$r1" "$r2" "$((t1 - t0))" "$((t3 - t2))" \
    "$IDLE_HOLD" "$CLK_TCK" "$FD_LIMIT" >>"$RESULTS" <<'PY'
import json, sys
path, name, kind, block, n, r0, r1, r2, t_open, t_hold, hold, clk, fdl = sys.argv[1:]
lines = [json.loads(l) for l in open(path) if l.startswith("{")]
h = next(l for l in lines if l.get("phase") == "holding")
r = next((l for l in lines if l.get("phase") == "released"), {})
k = lambda s: list(map(int, s.split()))
print(json.dumps(dict(kind="idle", target=name, tkind=kind, workers=int(block), n=int(n), fd_limit=int(fdl),
                      held=h["held"], failed=h["failed"], non_200=h["non_200"], open_s=h["open_s"],
                      errors=h.get("error_messages", {}), dropped_while_held=r.get("dropped_while_held"),
                      rss_before_kb=k(r0)[0], rss_holding_kb=k(r1)[0], hwm_holding_kb=k(r1)[1], rss_after_kb=k(r2)[0],
                      open_cpu_us=int(t_open) * 1e6 / int(clk), hold_cpu_us=int(t_hold) * 1e6 / int(clk),
                      hold_s=float(hold))))
PY
}

# syscalls NAME CONNS: syscalls of the contender's processes (all threads) per request during a
# SYS_DURATION wrk run, by name. perf stat on tracepoints (exact counts, little overhead): every
# syscall (raw_syscalls:sys_enter) and, by name, the ones a network server makes (enabling all
# ~360 syscalls:sys_enter_* tracepoints takes perf ~15 s); the rest shows as "other".
# strace -c -f (slows the target a lot) where tracepoints are not available.
SYS_TOOL=none SYS_EVENTS=""
SYS_NAMES="read write readv writev pread64 pwrite64 recvfrom sendto recvmsg sendmsg recvmmsg sendmmsg epoll_wait
  epoll_pwait epoll_pwait2 epoll_ctl poll ppoll select pselect6 accept accept4 connect socket close shutdown
  setsockopt getsockopt getpeername getsockname ioctl fcntl futex timerfd_settime timerfd_gettime eventfd2 nanosleep
  clock_nanosleep sched_yield mmap munmap mprotect madvise brk getpid gettid getrandom openat newfstatat lseek
  io_uring_enter rt_sigprocmask rt_sigreturn splice"
if [[ "$SYSCALLS" == 1 ]]; then
  if [[ "${BENCH_SYSCALL_TOOL:-}" != strace ]] && command -v perf >/dev/null \
    && perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
    SYS_TOOL=perf SYS_EVENTS=raw_syscalls:sys_enter
    avail=$(perf list 'syscalls:sys_enter_*' 2>/dev/null | awk '{print $1}' | sed -n 's/^syscalls:sys_enter_//p')
    for s in $SYS_NAMES; do grep -qx "$s" <<<"$avail" && SYS_EVENTS+=",syscalls:sys_enter_$s"; done
  elif command -v strace >/dev/null; then
    SYS_TOOL=strace
  fi
fi
syscalls() {
  local n=$1 c=$2 spid json pids out=$WORK/sys-w$BLOCK-$1-c$2
  pids=$(all_pids "${C_PID[$n]}" | paste -sd,)
  log "w$BLOCK $n -c$c: syscalls ($SYS_TOOL, ${SYS_DURATION}s)"
  if [[ $SYS_TOOL == perf ]]; then
    perf stat -x, -e "$SYS_EVENTS" -p "$pids" -o "$out.txt" >"$out.log" 2>&1 &
  else
    # shellcheck disable=SC2046,SC2086 # one -p per pid
    strace -c -f -o "$out.txt" $(printf -- '-p %s ' ${pids//,/ }) >"$out.log" 2>&1 &
  fi
  spid=$!
  PIDS+=("$spid")
  sleep 0.7 # attaching takes perf and strace well under that
  json=$(wrk_run "$n" "$c" "$SYS_DURATION" "$out.wrk")
  sleep 0.2
  kill -INT "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  python3 - "$out.txt" "$SYS_TOOL" "$n" "${C_KIND[$n]}" "$c" "$BLOCK" "$json" >>"$RESULTS" <<'PY'
import json, sys
path, tool, name, kind, conns, block, js = sys.argv[1:]
calls, total = {}, None
for line in open(path):
    if tool == "perf":
        f = line.strip().split(",")
        if len(f) > 2 and f[0].isdigit():
            if f[2] == "raw_syscalls:sys_enter":
                total = int(f[0])
            elif f[2].startswith("syscalls:sys_enter_") and int(f[0]) > 0:
                calls[f[2][len("syscalls:sys_enter_"):]] = int(f[0])
    else:
        f = line.split()
        if len(f) in (5, 6) and f[0][0].isdigit() and f[-1] != "total":
            calls[f[-1]] = int(f[3])
if total is not None and total > sum(calls.values()):
    calls["other"] = total - sum(calls.values())
j = json.loads(js)
print(json.dumps(dict(kind="sys", tool=tool, target=name, tkind=kind, conns=int(conns), workers=int(block),
                      requests=j["requests"], calls=calls)))
PY
}

# ---- the gateway and the peer -------------------------------------------------------------------
ADMIN_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
ENCRYPTION_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')

start_gateway() { # NAME WORKERS [ENV=VALUE...]: on a free port, pinned to the proxy CPUs
  local n=$1 w=$2 port i pid; shift 2
  port=$(free_port)
  "${PROXY[@]}" env LISTEN_ADDR="127.0.0.1:$port" WORKERS="$w" \
    DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/llmgw" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
    ADMIN_KEY="$ADMIN_KEY" ENCRYPTION_KEY="$ENCRYPTION_KEY" SHUTDOWN_GRACE_SECONDS=2 "$@" \
    "$BIN" >"$WORK/$n.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for ((i = 0; i < 400; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' -m 1 "http://127.0.0.1:$port/health/live") == 200 ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  ((i < 400)) && kill -0 "$pid" 2>/dev/null || { tail_logs "$n"; die "gateway $n did not come up"; }
  GW_PORT=$port GW_PID=$pid
  log "gateway $n (WORKERS=$w $*) on :$port, pid $pid"
}

admin() { # METHOD PATH [JSON] -> body; fails unless 2xx
  local out code
  out=$(curl -s -w '\n%{http_code}' -X "$1" "http://127.0.0.1:$ADMIN_PORT$2" \
    -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' ${3:+-d "$3"})
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ "$code" == 2* ]] || die "admin $1 $2 -> $code: $out"
  echo "$out"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

setup_gateway_data() {
  local p1 p2
  p1=$(admin POST /admin/providers "{\"name\":\"bench-fast\",\"kind\":\"openai\",\"api_key\":\"sk-upstream-bench-0001\",\"base_url\":\"http://127.0.0.1:$UP_PORT/v1\"}" | field id)
  p2=$(admin POST /admin/providers "{\"name\":\"bench-stream\",\"kind\":\"openai\",\"api_key\":\"sk-upstream-bench-0002\",\"base_url\":\"http://127.0.0.1:$ST_PORT/v1\"}" | field id)
  admin POST /admin/models "{\"name\":\"$MODEL\",\"provider_id\":\"$p1\",\"provider_model_name\":\"gpt-4o-mini\"}" >/dev/null
  admin POST /admin/models "{\"name\":\"$STREAM_MODEL\",\"provider_id\":\"$p2\",\"provider_model_name\":\"gpt-4o-mini\"}" >/dev/null
  USER_KEY=$(admin POST /admin/keys '{"name":"bench"}' | field key)
  # Every limit set, none ever reached: the cost of admission (one Redis round trip, the key's Lua
  # script) and of the queued reconcile after each answer.
  LIMITED_KEY=$(admin POST /admin/keys '{"name":"bench-limited","rpm":1000000000,"rpd":1000000000000,"tpm":1000000000000,"max_parallel":100000,"token_budget":1000000000000,"budget_usd":1000000000}' | field key)
}

start_portkey() { # -> PK_PORT PK_PID
  PK_PORT=$(free_port)
  "${PROXY[@]}" env NODE_ENV=production node --import "$BENCH/peer/loopback.mjs" "$PEER_JS" --headless \
    --port="$PK_PORT" >"$WORK/portkey.log" 2>&1 &
  PK_PID=$!
  PIDS+=("$PK_PID")
  wait_http "http://127.0.0.1:$PK_PORT/" || { tail_logs portkey; die "Portkey did not start"; }
  log "Portkey $(node -p "require('$BENCH/peer/node_modules/@portkey-ai/gateway/package.json').version") on :$PK_PORT, pid $PK_PID"
}

start_nginx_proxy() { # WORKERS -> PX_PORT PX_SSE_PORT PX_PID
  local d=$WORK/proxy-w$1 s
  PX_PORT=$(free_port) PX_SSE_PORT=$(free_port)
  mkdir -p "$d"
  {
    nginx_head "$d" "$1"
    # The keep-alive pool holds as many idle upstream connections as the gateway's default
    # UPSTREAM_MAX_IDLE_PER_HOST (256), so 256 connections do not open and close upstream ones.
    cat <<EOF
    upstream fast { server 127.0.0.1:$UP_PORT; keepalive 256; keepalive_requests 100000000; }
    upstream stream { server 127.0.0.1:$ST_PORT; keepalive 256; keepalive_requests 100000000; }
EOF
    for s in "$PX_PORT fast" "$PX_SSE_PORT stream"; do
      cat <<EOF
    server {
        listen 127.0.0.1:${s% *} backlog=4096;
        location / {
            proxy_pass http://${s#* };
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 600s;
        }
    }
EOF
    done
    echo "}"
  } >"$d/nginx.conf"
  start_nginx "$d" "${PROXY[@]}"
  PX_PID=$NGINX_PID
  wait_http "http://127.0.0.1:$PX_PORT/" || { cat "$d/error.log" >&2; die "nginx proxy did not start"; }
  log "nginx proxy, $1 worker(s), on :$PX_PORT (-> canned) and :$PX_SSE_PORT (-> streamer), pid $PX_PID"
}

# ---- the run ------------------------------------------------------------------------------------
# Idle streams: the gateway holds 2 descriptors per stream (and a few dozen of its own).
IDLE_EFF=$(((FD_LIMIT - 300) / 2))
((IDLE_EFF > IDLE_N)) && IDLE_EFF=$IDLE_N
LOAD_START=$(uptime)
FIRST_BLOCK=${WORKERS_LIST%% *}
[[ " $WORKERS_LIST " == *" 1 "* ]] && PK_BLOCK=1 || PK_BLOCK=$FIRST_BLOCK
ADMIN_PORT="" USER_KEY="" LIMITED_KEY=""
for BLOCK in $WORKERS_LIST; do
  layout "$BLOCK"
  log "=== block WORKERS=$BLOCK: $LAYOUT"
  jrec layout workers="$BLOCK" text="$LAYOUT"
  repin "$LOAD_CPUS" "$UP_PID" "$ST_PID"
  repin "$DEPS_CPUS" "$PG_PID" "$REDIS_PID"

  start_nginx_proxy "$BLOCK"
  start_gateway gw-log-on "$BLOCK"
  GW_ON_PORT=$GW_PORT GW_ON_PID=$GW_PID
  if [[ -z "${USER_KEY:-}" ]]; then # the first gateway: providers, models, keys (in PostgreSQL)
    ADMIN_PORT=$GW_ON_PORT
    setup_gateway_data
  fi
  # shellcheck disable=SC2086 # LOG_OFF_ENV is a list of VAR=value words
  start_gateway gw-log-off "$BLOCK" $LOG_OFF_ENV
  GW_OFF_PORT=$GW_PORT GW_OFF_PID=$GW_PID
  names=(direct nginx gw-log-on gw-log-off gw-limited)
  contender direct direct "$UP_PORT" sk-bench "$UP_PID" "direct (upstream)" "" "$ST_PORT"
  contender nginx nginx "$PX_PORT" sk-bench "$PX_PID" "nginx proxy_pass, $BLOCK worker(s)" "" "$PX_SSE_PORT"
  contender gw-log-on gateway "$GW_ON_PORT" "$USER_KEY" "$GW_ON_PID" "gateway, request log on"
  contender gw-log-off gateway "$GW_OFF_PORT" "$USER_KEY" "$GW_OFF_PID" "gateway, request log off ($LOG_OFF_ENV)"
  contender gw-limited gateway "$GW_ON_PORT" "$LIMITED_KEY" "$GW_ON_PID" "gateway, request log on, key with limits"
  PK_PID=""
  if [[ "$PORTKEY" == 1 && "$BLOCK" == "$PK_BLOCK" ]]; then
    start_portkey
    contender portkey portkey "$PK_PORT" sk-bench "$PK_PID" "Portkey (node, 1 process)" \
      "x-portkey-provider: openai|x-portkey-custom-host: http://127.0.0.1:$UP_PORT/v1" "$PK_PORT" \
      "x-portkey-provider: openai|x-portkey-custom-host: http://127.0.0.1:$ST_PORT/v1"
    names+=(portkey)
  fi
  for n in "${names[@]}"; do
    check_one "$n"
    jrec contender workers="$BLOCK" target="$n" label="${C_LABEL[$n]}" tkind="${C_KIND[$n]}"
  done

  # Non-streaming: every contender at each concurrency in turn (interleaved, so a change in the
  # machine's load hits all of them alike).
  for c in $CONCS; do
    for n in "${names[@]}"; do bench "$n" "$c"; done
  done

  if [[ $SYS_TOOL != none ]]; then
    for c in 1 64; do
      for n in nginx gw-log-on gw-log-off; do syscalls "$n" "$c"; done
    done
    [[ -n "$PK_PID" ]] && syscalls portkey 64
  fi

  # Where the gateway's CPU goes: perf record -g under 64 connections (profile only, not a result).
  if [[ "$PERF" == 1 && "$BLOCK" == "$FIRST_BLOCK" ]] && command -v perf >/dev/null; then
    log "w$BLOCK gw-log-on -c64 under perf record --call-graph $PERF_CALLGRAPH (${DURATION}s)"
    cg=(-g)
    # shellcheck disable=SC2054 # "dwarf,16384" is one argument
    [[ "$PERF_CALLGRAPH" == dwarf ]] && cg=(--call-graph dwarf,16384)
    perf record "${cg[@]}" -F 999 -p "$GW_ON_PID" -o "$WORK/perf.data" -- sleep "$DURATION" >"$WORK/perf.log" 2>&1 &
    PERF_PID=$!
    PIDS+=("$PERF_PID")
    json=$(wrk_run gw-log-on 64 "$DURATION" "$WORK/wrk-perf.txt")
    if wait "$PERF_PID" && [[ -s "$WORK/perf.data" ]]; then
      perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort dso 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -n 12 >"$WORK/perf-dso.txt" || true
      perf report -i "$WORK/perf.data" --stdio --no-children -g none --sort dso,sym 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -n 40 | cut -c1-160 >"$WORK/perf-sym.txt" || true
      jrec perf workers="$BLOCK" requests="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["requests"])' "$json")" \
        dso="$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$WORK/perf-dso.txt")" \
        sym="$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$WORK/perf-sym.txt")"
    else
      log "perf record failed; no profile"; cat "$WORK/perf.log" >&2
    fi
  fi

  # Streaming: added time to first byte and inter-chunk delay.
  snames=(direct nginx gw-log-on)
  [[ -n "$PK_PID" && "$PORTKEY_STREAMS" == 1 ]] && snames+=(portkey)
  for n in "${snames[@]}"; do stream "$n"; done

  if [[ "$BLOCK" == "$FIRST_BLOCK" ]]; then
    # Idle streams held open: memory per stream.
    idle gw-log-on
    # nginx's worker_connections (= the fd limit) also count its upstream keep-alive connections and
    # connections still closing from the runs before: with less than ~2,000 spare it "reuses"
    # (resets) clients. Fewer streams for it, then; the KiB per stream are what compare.
    idle nginx $((IDLE_EFF < (FD_LIMIT - 2000) / 2 ? IDLE_EFF : (FD_LIMIT - 2000) / 2))
    # A flood of invalid keys: PostgreSQL statements per request must be 0.
    log "w$BLOCK gw-log-on -c64: invalid-key flood (${DURATION}s)"
    db0=$(metric_sum "$GW_ON_PORT" llmgw_db_call_duration_seconds_count)
    pg0=$(pg_statements)
    s0=$(snap gw-log-on)
    json=$(wrk_run gw-log-on 64 "$DURATION" "$WORK/wrk-flood.txt" 1)
    s1=$(snap gw-log-on)
    sleep 0.5
    pg1=$(pg_statements)
    db1=$(metric_sum "$GW_ON_PORT" llmgw_db_call_duration_seconds_count)
    auth=$(curl -s "http://127.0.0.1:$GW_ON_PORT/metrics" | grep '^llmgw_auth_lookups_total' | paste -sd'|' || true)
    jrec flood workers="$BLOCK" wrk="$json" db_calls="$((db1 - db0))" pg_statements="$((pg1 - pg0))" \
      s0="$s0" s1="$s1" clk="$CLK_TCK" auth_lookups="$auth"
  fi

  # Memory after the block's runs, the gateways' log accounting, then stop the block's processes.
  for n in nginx gw-log-on gw-log-off ${PK_PID:+portkey}; do
    jrec rss workers="$BLOCK" target="$n" value="$(rss_kb "${C_PID[$n]}")"
  done
  jrec rss workers="$BLOCK" target=redis value="$(rss_kb "$REDIS_PID")"
  for n in gw-log-on gw-log-off; do
    jrec gwlog workers="$BLOCK" target="$n" lines="$(wc -l <"$WORK/$n.log")" \
      served="$(metric_sum "${C_PORT[$n]}" llmgw_requests_total)" \
      dropped="$(metric_sum "${C_PORT[$n]}" llmgw_stdout_log_lines_dropped_total)" \
      pg_written="$(metric_sum "${C_PORT[$n]}" llmgw_log_rows_written_total)" \
      pg_dropped="$(metric_sum "${C_PORT[$n]}" llmgw_log_rows_dropped_total)"
  done
  for p in "$GW_ON_PID" "$GW_OFF_PID" "$PX_PID" ${PK_PID:+"$PK_PID"}; do stop_pid "$p"; done
done
LOAD_END=$(uptime)

# ---- report -------------------------------------------------------------------------------------
SUFFIX=""
[[ "$QUICK" == 1 ]] && SUFFIX=-quick
OUT=${BENCH_OUT:-$BENCH/results/$(date +%F)-$SHA$SUFFIX.md}
mkdir -p "$(dirname "$OUT")"
meta quick "$QUICK"
meta cmdline "$CMDLINE"
meta date "$(date -u '+%F %T UTC')"
meta git "$SHA$DIRTY"
meta cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $NCPU CPUs ($(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *//p' | sed 's/^./virtualized: &/'))"
meta mem "$(awk '/^MemTotal:/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
meta kernel "$(uname -sr)"
meta load_start "$LOAD_START"
meta load_end "$LOAD_END"
meta fd_limit "$FD_LIMIT"
meta duration "$DURATION"
meta warmup "$WARMUP"
meta streams "$STREAMS"
meta chunks "$CHUNKS"
meta interval "$INTERVAL"
meta idle_n "$IDLE_N"
meta idle_eff "$IDLE_EFF"
meta sys_tool "$SYS_TOOL"
meta sys_duration "$SYS_DURATION"
meta log_off_env "$LOG_OFF_ENV"
meta gateway "$("$BIN" --version 2>&1 | head -n1), $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$(dirname "$BIN_SRC")/../CMakeCache.txt" 2>/dev/null) build, ${BIN_SRC#"$REPO"/} built $BIN_MTIME, sha256 $BIN_SHA…"
meta wrk "$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
meta nginx "$(nginx -v 2>&1 | sed 's/.*: //')"
meta redis "$(redis-server --version | cut -d' ' -f1-3)"
meta postgres "$("$(_pg_bin)/postgres" --version)"
[[ "$PORTKEY" == 1 ]] && meta portkey "@portkey-ai/gateway $(node -p "require('$BENCH/peer/node_modules/@portkey-ai/gateway/package.json').version") (@hono/node-server $(node -p "require('$BENCH/peer/node_modules/@hono/node-server/package.json').version"), hono $(node -p "require('$BENCH/peer/node_modules/hono/package.json').version")), node $(node --version)"
python3 "$BENCH/report.py" "$RESULTS" "$OUT" || die "report.py failed (results kept in $WORK)"
if [[ "$QUICK" != 1 && -z "${BENCH_OUT:-}" ]]; then
  sed "s|](\([^)/]*\.png\))|](results/\1)|" "$OUT" >"$BENCH/RESULTS.md"
  log "copied to bench/RESULTS.md"
fi
cat "$OUT"
log "report written to ${OUT#"$REPO"/} (+ ${OUT%.md}.png)"

#!/usr/bin/env bash
# Installs, builds, starts a local PostgreSQL and Redis (state in .state/, free ports) and runs the
# gateway in the foreground on 127.0.0.1:8080. Ctrl-C stops everything it started.
#
# First run: it also starts the repo's mock upstream (test/mock_upstream, no account, offline) and,
# on a fresh state directory, registers a `demo` provider pointing at it, a model `demo-chat` and a
# user key, then prints a curl line and Python / Node snippets that work at once. Later runs keep
# them (the mock's new port is written into the demo provider). Delete the demo with the printed
# curl line; it is never created anywhere but a fresh dev state directory.
#
#   --no-demo, LLMGW_NO_DEMO=1  no mock upstream, no demo
#   ADMIN_KEY=...               use this admin key instead of the generated one (kept in .state/admin_key)
#   LISTEN_ADDR=...             listen elsewhere (default 127.0.0.1:8080)
#   LLMGW_STATE_DIR=...         keep the state elsewhere (default .state/)
#   LLMGW_SKIP_BUILD=1          no install, no build: run the binary there is (LLMGW_BIN, else build/)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

demo=1
case "${LLMGW_NO_DEMO:-}" in "" | 0 | false | no) ;; *) demo=0 ;; esac
for arg in "$@"; do
  case $arg in
    --no-demo) demo=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "dev.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [ "${LLMGW_SKIP_BUILD:-}" != 1 ]; then
  bash scripts/install-deps.sh
  bash scripts/build.sh build
fi
bin=${LLMGW_BIN:-$root/build/gateway/llm-gateway}
[ -x "$bin" ] || { echo "dev.sh: no gateway binary at $bin" >&2; exit 1; }
source scripts/lib/services.sh

# Every stream holds two sockets (client + upstream): open-file soft limit up to the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

state=${LLMGW_STATE_DIR:-$root/.state}
mkdir -p "$state"
state=$(cd "$state" && pwd)
fresh=0
[ -f "$state/pg/PG_VERSION" ] || fresh=1
pg_port=$(free_port)
redis_port=$(free_port)

stop_pid() { # PID: SIGTERM, wait for it
  [ -n "${1:-}" ] || return 0
  if kill -TERM "$1" 2>/dev/null; then wait "$1" 2>/dev/null || true; fi
}
cleanup() {
  stop_pid "${gw_pid:-}"
  stop_pid "${mock_pid:-}"
  redis_stop "$state" || true
  pg_stop "$state" || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PG_DURABLE=1 pg_start "$state" "$pg_port"
redis_start "$state" "$redis_port"

# Secrets persist across runs so stored provider keys stay readable.
[ -s "$state/encryption_key" ] || (umask 077; openssl rand -hex 32 > "$state/encryption_key")
if [ -n "${ADMIN_KEY:-}" ]; then
  admin_key=$ADMIN_KEY
else
  [ -s "$state/admin_key" ] || (umask 077; echo "adm-$(openssl rand -hex 20)" > "$state/admin_key")
  admin_key=$(cat "$state/admin_key")
fi

listen=${LISTEN_ADDR:-127.0.0.1:8080}
host=${listen%:*}
case $host in 0.0.0.0 | "" | "[::]") host=127.0.0.1 ;; esac
url="http://$host:${listen##*:}"

# The mock upstream: an OpenAI-compatible provider on a free port, no credentials needed.
if [ "$demo" = 1 ]; then
  if ! command -v node >/dev/null 2>&1; then
    echo "dev.sh: node not found: no demo (the mock upstream is a Node.js program)" >&2
    demo=0
  else
    : > "$state/mock.out"
    node test/mock_upstream/server.mjs --port 0 --no-auth --defaults \
      '{"content":"Hello from llm-gateway! This answer streams from the local mock provider: no account, no network.","chunks":12,"chunk_interval_ms":60}' \
      > "$state/mock.out" 2> "$state/mock.log" &
    mock_pid=$!
    mock_port=""
    for _ in $(seq 100); do
      mock_port=$(grep -o '"listening":[0-9]*' "$state/mock.out" | cut -d: -f2 || true)
      [ -n "$mock_port" ] && break
      kill -0 "$mock_pid" 2>/dev/null || break
      sleep 0.1
    done
    [ -n "$mock_port" ] || { echo "dev.sh: the mock upstream did not start:" >&2; cat "$state/mock.log" >&2; exit 1; }
  fi
fi

LISTEN_ADDR=$listen \
DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/llmgw" \
REDIS_URL="redis://127.0.0.1:$redis_port/0" \
ADMIN_KEY=$admin_key \
ENCRYPTION_KEY=$(cat "$state/encryption_key") \
  "$bin" &
gw_pid=$!

ready=0
for _ in $(seq 600); do
  if curl -fsS -o /dev/null "$url/health/ready" 2>/dev/null; then ready=1; break; fi
  kill -0 "$gw_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "dev.sh: the gateway did not become ready on $url" >&2
  exit 1
fi

# admin METHOD PATH [JSON]: the body goes to $admin_body, the HTTP status to $admin_status.
admin() {
  local out
  out=$(curl -sS -w '\n%{http_code}' -X "$1" "$url$2" -H "Authorization: Bearer $admin_key" \
        -H 'Content-Type: application/json' ${3:+-d "$3"})
  admin_status=${out##*$'\n'}
  admin_body=${out%$'\n'*}
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <<< "$admin_body"; }

demo_file=$state/demo.env
demo_note=""
if [ "$demo" = 1 ]; then
  mock_url="http://127.0.0.1:$mock_port/v1"
  if [ -s "$demo_file" ]; then
    # shellcheck source=/dev/null
    source "$demo_file"
    admin PUT "/admin/providers/$DEMO_PROVIDER_ID" "{\"base_url\":\"$mock_url\"}"
    if [ "$admin_status" = 404 ]; then
      demo=0; rm -f "$demo_file"
      demo_note="  (the demo provider was deleted: not created again)"
    elif [ "$admin_status" != 200 ]; then
      echo "dev.sh: updating the demo provider failed (HTTP $admin_status)" >&2; exit 1
    fi
  elif [ "$fresh" = 1 ]; then
    admin POST /admin/providers "{\"name\":\"demo\",\"kind\":\"openai_compatible\",\"base_url\":\"$mock_url\"}"
    [ "$admin_status" = 201 ] || { echo "dev.sh: creating the demo provider failed: $admin_body" >&2; exit 1; }
    DEMO_PROVIDER_ID=$(field id)
    admin POST /admin/models "{\"name\":\"demo-chat\",\"provider_id\":\"$DEMO_PROVIDER_ID\",\"provider_model_name\":\"mock-chat\"}"
    [ "$admin_status" = 201 ] || { echo "dev.sh: creating the demo model failed: $admin_body" >&2; exit 1; }
    admin POST /admin/keys '{"name":"demo","allowed_models":["demo-chat"]}'
    [ "$admin_status" = 201 ] || { echo "dev.sh: creating the demo key failed: $admin_body" >&2; exit 1; }
    DEMO_KEY_ID=$(field id)
    DEMO_KEY=$(field key)
    (umask 077; printf 'DEMO_PROVIDER_ID=%s\nDEMO_KEY_ID=%s\nDEMO_KEY=%s\n' \
      "$DEMO_PROVIDER_ID" "$DEMO_KEY_ID" "$DEMO_KEY" > "$demo_file")
  else
    demo=0
    demo_note="  (no demo: this state directory predates it; a fresh one gets it: LLMGW_STATE_DIR=... or rm -rf $state)"
  fi
fi
if [ "$demo" = 0 ] && [ -n "${mock_pid:-}" ]; then stop_pid "$mock_pid"; mock_pid=""; fi

cat <<MSG

  llm-gateway on $url
  ADMIN_KEY=$admin_key
  (PostgreSQL :$pg_port, Redis :$redis_port, state in $state; Ctrl-C stops all)
MSG
if [ "$demo" = 1 ]; then
  chat='{"model":"demo-chat","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'
  cat <<MSG

  Demo: provider "demo" (the local mock upstream on :$mock_port), model "demo-chat", a user key.
  A streamed chat completion:

curl -N $url/v1/chat/completions -H "Authorization: Bearer $DEMO_KEY" -H "Content-Type: application/json" -d '$chat'

  Python (pip install openai):

from openai import OpenAI
client = OpenAI(base_url="$url/v1", api_key="$DEMO_KEY")
print(client.chat.completions.create(model="demo-chat", messages=[{"role": "user", "content": "Hello!"}]).choices[0].message.content)

  Node (npm install openai; in an .mjs file):

import OpenAI from "openai";
const client = new OpenAI({ baseURL: "$url/v1", apiKey: "$DEMO_KEY" });
console.log((await client.chat.completions.create({ model: "demo-chat", messages: [{ role: "user", content: "Hello!" }] })).choices[0].message.content);

  Remove the demo: curl -X DELETE -H "Authorization: Bearer $admin_key" "$url/admin/providers/$DEMO_PROVIDER_ID?force=true"
  (--no-demo or LLMGW_NO_DEMO=1: no mock, no demo)
MSG
else
  [ -n "$demo_note" ] && echo "$demo_note"
  cat <<MSG
  try:   curl -s $url/health/ready
         curl -s -H "Authorization: Bearer $admin_key" $url/admin/providers
MSG
fi
cat <<MSG
  more:  deploy/admin-examples.sh

MSG

wait "$gw_pid"

#!/usr/bin/env bash
# Installs, builds, starts a local PostgreSQL and Redis (state in .state/, free ports) and runs the
# gateway in the foreground on 127.0.0.1:8080. Ctrl-C stops everything it started.
#   ADMIN_KEY=...   use this admin key instead of the generated one (kept in .state/admin_key)
#   LISTEN_ADDR=... listen elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/install-deps.sh
bash scripts/build.sh build
source scripts/lib/services.sh

state=${LLMGW_STATE_DIR:-$root/.state}
mkdir -p "$state"
pg_port=$(free_port)
redis_port=$(free_port)

cleanup() {
  [ -n "${gw_pid:-}" ] && kill -TERM "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null || true
  redis_stop "$state" || true
  pg_stop "$state" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
cat <<MSG

  llm-gateway on http://$listen
  ADMIN_KEY=$admin_key
  try:   curl -s http://$listen/health/ready
         curl -s -H "Authorization: Bearer $admin_key" http://$listen/admin/providers
  more:  deploy/admin-examples.sh
  (PostgreSQL :$pg_port, Redis :$redis_port, state in $state; Ctrl-C stops all)

MSG

LISTEN_ADDR=$listen \
DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/llmgw" \
REDIS_URL="redis://127.0.0.1:$redis_port/0" \
ADMIN_KEY=$admin_key \
ENCRYPTION_KEY=$(cat "$state/encryption_key") \
  ./build/gateway/llm-gateway &
gw_pid=$!
wait "$gw_pid"

# shellcheck shell=bash
# Throwaway PostgreSQL / Redis instances for tests and local runs.
# Source this file, then:
#   free_port                 -> prints a free TCP port on 127.0.0.1
#   pg_start DIR PORT         -> cluster in DIR/pg, socket in DIR, database llmgw
#   pg_stop DIR
#   redis_start DIR PORT      -> pid in DIR/redis.pid, log in DIR/redis.log
#   redis_stop DIR
# Every function is idempotent and returns non-zero (with a message on stderr) on failure.
# Works as root: PostgreSQL refuses to run as root, so it is run as the `postgres` user.

_svc_err() { echo "services.sh: $*" >&2; }

free_port() {
  local code='import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  if command -v python3 >/dev/null 2>&1 && python3 -c "$code" 2>/dev/null; then return 0; fi
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Directory holding initdb/pg_ctl: $PG_BIN, else PATH, else the newest /usr/lib/postgresql/*/bin.
_pg_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
  if command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v pg_ctl)"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [[ -n "$d" ]] || { _svc_err "PostgreSQL binaries not found (set PG_BIN)"; return 1; }
  echo "$d"
}

# Run a PostgreSQL server-side tool as a non-root user. cd into the data's parent first:
# initdb/pg_ctl fail if the current directory is not readable by that user (e.g. /root).
_pg_run() {
  local dir=$1; shift
  if [[ $(id -u) -eq 0 ]]; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

# As root: DIR must belong to postgres, and every parent needs o+x so postgres can reach it
# (mkdtemp dirs are 0700, /root is 0700).
_pg_prepare_dir() {
  local dir=$1 p
  [[ $(id -u) -eq 0 ]] || return 0
  id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  chown postgres: "$dir"
  p=$(dirname "$dir")
  while [[ "$p" != "/" ]]; do
    (( 8#$(stat -c %a "$p") & 1 )) || chmod o+x "$p"
    p=$(dirname "$p")
  done
}

_pg_running() { # DIR -> 0 if the cluster in DIR/pg is up
  [[ -f "$1/pg/postmaster.pid" ]] || return 1
  _pg_run "$1" "$(_pg_bin)/pg_ctl" -D "$1/pg" status >/dev/null 2>&1
}

pg_start() {
  local dir=$1 port=$2 bin
  [[ -n "$dir" && -n "$port" ]] || { _svc_err "usage: pg_start DIR PORT"; return 2; }
  bin=$(_pg_bin) || return 1
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
  _pg_prepare_dir "$dir"
  if [[ ! -f "$dir/pg/PG_VERSION" ]]; then
    _pg_run "$dir" "$bin/initdb" -D "$dir/pg" --auth=trust -U postgres -E UTF8 --locale=C \
      --no-sync --no-instructions >"$dir/initdb.log" 2>&1 \
      || { _svc_err "initdb failed:"; cat "$dir/initdb.log" >&2; return 1; }
  fi
  if ! _pg_running "$dir"; then
    # Durability off for tests (disposable clusters; fsync dominates test time); PG_DURABLE=1 keeps
    # it on for data that should survive a crash (scripts/dev.sh).
    local opts="-c listen_addresses=127.0.0.1 -p $port -k $dir"
    [[ "${PG_DURABLE:-0}" == 1 ]] || opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    _pg_run "$dir" "$bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 30 -o "$opts" \
      start >/dev/null \
      || { _svc_err "pg_ctl start failed:"; tail -n 30 "$dir/pg.log" >&2; return 1; }
  fi
  local exists
  exists=$(psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -XtAc \
    "SELECT 1 FROM pg_database WHERE datname='llmgw'") || { _svc_err "psql on port $port failed"; return 1; }
  if [[ "$exists" != 1 ]]; then
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Xqc "CREATE DATABASE llmgw" >/dev/null || return 1
  fi
}

pg_stop() {
  local dir=$1
  [[ -n "$dir" ]] || { _svc_err "usage: pg_stop DIR"; return 2; }
  _pg_running "$dir" || return 0
  _pg_run "$dir" "$(_pg_bin)/pg_ctl" -D "$dir/pg" -m fast -w -t 30 stop >/dev/null
}

# A daemon's parent is PID 1, which may reap it late: a zombie counts as dead.
_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]
}

_redis_pid() { # DIR -> prints the pid if that redis is alive
  local pid
  pid=$(cat "$1/redis.pid" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && _alive "$pid" && echo "$pid"
}

redis_start() {
  local dir=$1 port=$2 i
  [[ -n "$dir" && -n "$port" ]] || { _svc_err "usage: redis_start DIR PORT"; return 2; }
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
  if ! _redis_pid "$dir" >/dev/null; then
    redis-server --daemonize yes --dir "$dir" --port "$port" --bind 127.0.0.1 \
      --save '' --appendonly no --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
      || { _svc_err "redis-server failed to start"; return 1; }
  fi
  for ((i = 0; i < 200; i++)); do
    [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] && return 0
    sleep 0.05
  done
  _svc_err "redis on port $port did not answer PING:"; tail -n 20 "$dir/redis.log" >&2
  return 1
}

redis_stop() {
  local dir=$1 pid i
  [[ -n "$dir" ]] || { _svc_err "usage: redis_stop DIR"; return 2; }
  pid=$(_redis_pid "$dir") || { rm -f "$dir/redis.pid"; return 0; }
  kill -TERM "$pid"
  for ((i = 0; i < 200; i++)); do
    _alive "$pid" || { rm -f "$dir/redis.pid"; return 0; }
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null; rm -f "$dir/redis.pid"
}

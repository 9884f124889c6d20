#!/bin/sh
# Every client stream holds two sockets (client + upstream): raise the open-file soft limit to the
# hard limit before starting (runtimes often hand containers a soft limit of 1024). The gateway
# lowers MAX_CONNECTIONS to what the limit allows and logs it.
set -eu
hard=$(ulimit -Hn)
ulimit -n "$hard" 2>/dev/null || echo "docker-entrypoint: could not raise the fd limit to $hard" >&2
exec "$@"

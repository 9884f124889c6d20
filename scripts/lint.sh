#!/usr/bin/env bash
# Static checks that need no build. Today: the GCC 12 coroutine trap. A lambda that captures, a
# braced temporary or an initializer_list inside a co_await expression is destroyed twice (or the
# code does not compile); name the value first, then co_await it. Also REQUIRE/CHECK(co_await ...).
set -euo pipefail
cd "$(dirname "$0")/.."
dirs=(core gateway cache storage providers test/unit test/cache test/storage)
hits=$(grep -rnE 'co_await[^;]*(\[[^]]*\]\s*\(|\{[^}]*\})' --include=*.cpp --include=*.hpp "${dirs[@]}" || true)
hits+=$(grep -rnE '(^|[^A-Z_])(REQUIRE|CHECK)[A-Z_]*\(\s*co_await' --include=*.cpp --include=*.hpp "${dirs[@]}" || true)
if [ -n "$hits" ]; then
  echo "GCC 12 coroutine trap (name the value first, then co_await it):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "lint: ok"

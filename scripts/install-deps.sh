#!/usr/bin/env bash
# Installs the Debian packages and the e2e test's npm packages. Idempotent: skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ninja-build ccache pkg-config libboost1.81-all-dev libboost-json1.81-dev
          libboost-url1.81-dev libssl-dev libpqxx-dev libhiredis-dev libfmt-dev libtcmalloc-minimal4 catch2 redis-server
          postgresql nginx wrk curl ca-certificates python3 clang libclang-rt-14-dev
          gnuplot-nox strace linux-perf valgrind)  # the last line: bench/ (plot, syscalls, profile, instructions)
# kubectl renders deploy/k8s (kubectl kustomize) in the tests: Debian's, unless one is installed.
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--with-node" ]; then
  command -v node >/dev/null || { echo "node (>= 20) is required for the e2e tests" >&2; exit 1; }
  # npm ci only when the lock changed since the last install.
  stamp=test/e2e/node_modules/.lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s test/e2e/package-lock.json "$stamp"; then
    echo "==> npm ci (test/e2e)"
    (cd test/e2e && npm ci --no-audit --no-fund --loglevel=error)
    cp test/e2e/package-lock.json "$stamp"
  fi
fi

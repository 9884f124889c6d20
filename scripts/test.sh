#!/usr/bin/env bash
# Installs, builds and runs every test: unit, cache and storage integration, end-to-end (real
# PostgreSQL, Redis, nginx, mock upstream), then everything again with an ASan+UBSan build (the
# gateway's coroutines included: GCC 12 lifetime bugs show up there, not in unit tests).
# Exits non-zero on any failure. Set LLMGW_SKIP_SANITIZE=1 to skip the sanitizer stage.
set -euo pipefail
cd "$(dirname "$0")/.."

stage_start=$SECONDS
stage() {
  local now=$SECONDS
  if [ -n "${stage_name:-}" ]; then echo "==> stage '$stage_name' took $((now - stage_start)) s"; fi
  stage_name=$1; stage_start=$now
  if [ -n "$1" ]; then echo "==> $1"; fi
}

stage "install"
bash scripts/install-deps.sh --with-node

stage "lint"
bash scripts/lint.sh

stage "build (Release)"
bash scripts/build.sh build

stage "tests (unit, integration, e2e)"
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 600)

stage "fuzz (clang + libFuzzer, ${LLMGW_FUZZ_SECONDS:-15} s per target)"
bash scripts/fuzz.sh "${LLMGW_FUZZ_SECONDS:-15}"

if [ -z "${LLMGW_SKIP_SANITIZE:-}" ]; then
  stage "build (ASan+UBSan)"
  bash scripts/build.sh build-asan -DLLMGW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  stage "all tests under ASan+UBSan"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/../test/lsan.supp \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$(nproc)" --timeout 600)
fi
stage ""
echo "==> all tests passed"

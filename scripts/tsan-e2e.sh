#!/usr/bin/env bash
# The e2e suite once under ThreadSanitizer (not part of scripts/test.sh: about 20 minutes on 2 cores).
# Builds the gateway with -fsanitize=thread in build-tsan/, runs every e2e file that starts a gateway
# (two at a time) with TSAN_OPTIONS writing reports to $out/tsan.<pid>, then lists the reports.
# Exit 1 when TSan reported anything. Tests that assert on RSS or tight timings may fail under TSan
# (shadow memory, 5-15x slower code); their results are listed but do not decide the exit status.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${TSAN_OUT:-$(mktemp -d /tmp/llmgw-tsan.XXXXXX)}
mkdir -p "$out"
[ -f build-tsan/CMakeCache.txt ] || cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -g -O1" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread"
cmake --build build-tsan --target llm-gateway
export LLMGW_BIN=$root/build-tsan/gateway/llm-gateway
export TSAN_OPTIONS="halt_on_error=0 exitcode=0 log_path=$out/tsan report_signal_unsafe=0 second_deadlock_stack=1"
cd test/e2e
ls *.test.mjs | grep -v -E '^(deploy_files|first_run|examples|harness|mock_upstream)\.test\.mjs$' |
  xargs -P 2 -I{} sh -c 'timeout 900 node --test {} > "$0/{}.log" 2>&1; echo "{} exit $?" >> "$0/status"' "$out"
sort "$out/status"
reports=$(ls "$out"/tsan.* 2>/dev/null || true)
if [ -n "$reports" ]; then
  echo "ThreadSanitizer reports:"; grep -h -A3 "WARNING: ThreadSanitizer" $reports | head -50
  exit 1
fi
echo "no ThreadSanitizer report ($out)"

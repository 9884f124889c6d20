#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (core only) and runs each for a while from its seed
# corpus in test/fuzz/corpus. Exits non-zero on any crash or violated property.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.ccache} CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DLLMGW_UNIT_ONLY=ON -DLLMGW_FUZZ=ON >/dev/null
ninja -C build-fuzz fuzz_http1_heads fuzz_chunked_body fuzz_inference_body fuzz_usage_stream
for target in http1_heads chunked_body inference_body usage_stream; do
  work=$(mktemp -d)
  cp test/fuzz/corpus/$target/* "$work/"
  echo "==> fuzz_$target for ${seconds}s"
  (cd build-fuzz && UBSAN_OPTIONS=halt_on_error=1 ./test/fuzz/fuzz_$target -max_total_time="$seconds" \
     -max_len=4096 -print_final_stats=1 "$work" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==|SUMMARY)" || true)
  # libFuzzer writes crash-* / leak-* files into the working directory when something fails.
  if ls build-fuzz/crash-* build-fuzz/leak-* build-fuzz/timeout-* >/dev/null 2>&1; then
    echo "fuzz_$target found a failure:" >&2; ls build-fuzz/crash-* build-fuzz/leak-* build-fuzz/timeout-* >&2
    rm -rf "$work"; exit 1
  fi
  rm -rf "$work"
done
echo "==> fuzzing found nothing"

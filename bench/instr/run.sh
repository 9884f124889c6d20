#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind: exact and repeatable, unlike
# CPU time on a shared VM (where runs of the same binary differ by 5-15 %). Kernel time (loopback
# TCP, wake-ups) is not counted: bench/run.sh measures that.
#
#   bash bench/instr/run.sh [BINARY]      (default build/gateway/llm-gateway)
#   STREAM_CHUNKS=32 INSTR_N1=20 INSTR_N2=120 bash bench/instr/run.sh   streamed completions of 32
#                                         events each: divide by 32 for the cost of relaying one
#   INSTR_KEY_LIMITS='{"rpm":1000000,"token_budget":1000000000}' bash bench/instr/run.sh   a key with limits
#
# Two runs of bench/instr/drive.mjs under valgrind --tool=callgrind, with N1 and N2 requests; the
# difference divided by N2 - N1 is one request's cost, with start-up and shutdown cancelled out.
# Every thread counts (the worker, the stdout and PostgreSQL log writers). Prints the total and
# the top functions. Needs valgrind and the e2e harness (test/e2e, npm ci).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=$(realpath "${1:-$repo/build/gateway/llm-gateway}")
n1=${INSTR_N1:-200} n2=${INSTR_N2:-1200}
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
# INSTR_KEEP=1 keeps the callgrind files (callgrind_annotate --tree=caller FILE shows who calls what).
if [[ "${INSTR_KEEP:-0}" == 1 ]]; then trap 'echo "kept: $work" >&2' EXIT; else trap 'rm -rf "$work"' EXIT; fi
cat >"$work/gw" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind -q --callgrind-out-file="$work/cg.\$INSTR_TAG.%p" "$bin" "\$@"
WRAP
chmod +x "$work/gw"
for n in "$n1" "$n2"; do
  INSTR_TAG=$n N=$n LLMGW_BIN="$work/gw" node "$here/drive.mjs" >"$work/drive-$n.log" 2>&1 \
    || { cat "$work/drive-$n.log" >&2; exit 1; }
done
echo "binary: $bin ($(sha256sum "$bin" | cut -c1-12)), requests: $n2 - $n1${STREAM_CHUNKS:+, each a stream of $STREAM_CHUNKS events (+ usage, [DONE])}"
python3 "$here/cgdiff.py" "$(ls "$work"/cg."$n1".*)" "$(ls "$work"/cg."$n2".*)" $((n2 - n1)) "${INSTR_TOP:-30}"

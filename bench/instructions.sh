#!/usr/bin/env bash
# bench/instructions.sh — the gateway's user-space instructions per proxied request, counted by
# valgrind's callgrind: a measure of the gateway's own cost that does not depend on how fast or
# how busy the machine is (run.sh's figures move by ±10% between runs on a shared VM; this one
# by about ±1%), for comparing two commits or a change before and after.
#
#   bench/instructions.sh               2,000 requests after 300 of warm-up
#   BENCH_REQUESTS=5000 bench/instructions.sh
#   BENCH_TOP=40 bench/instructions.sh  also list the 40 costliest functions (inclusive)
#   BENCH_GATEWAY_BIN=/path/to/llm-gateway bench/instructions.sh   count another build instead
#   BENCH_BODY='{"model":"auto",…}' bench/instructions.sh   another request body (e.g. a routed one)
#   BENCH_DUMP=/tmp/auto.cg bench/instructions.sh   keep the callgrind dump (callgrind_annotate it)
#
# The gateway runs as in run.sh (every feature on: SQLite ledger, sanitizer, virtual key,
# project/source headers) against the mock upstream, one request at a time. All of the
# gateway's threads are counted (the ledger's writes too); the kernel's work (syscalls, TCP) is
# not. Requests come one at a time, so the ledger writes small batches: its share here is
# larger than under load, where batches reach thousands of records.

set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
PROBE="$BENCH/harness/probe.py"
N="${BENCH_REQUESTS:-2000}"
WARMUP=300
TOP="${BENCH_TOP:-0}"
DEFAULT_BODY='{"model":"gpt-4o","messages":[{"role":"user","content":"Hello, how are you today?"}]}'
BODY="${BENCH_BODY:-$DEFAULT_BODY}"
HEADERS=(-H "Authorization: Bearer bench-team-key" -H "x-project: bench" -H "x-source: instructions"
  -H "Content-Type: application/json")

log() { printf '[instructions %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if ! command -v valgrind >/dev/null; then
  log "installing valgrind from apt"
  apt-get install -y valgrind >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y valgrind >/dev/null; }
fi

log "building release binaries"
(cd "$REPO" && cargo build --release -p llm-gateway -p mock-upstream) >/dev/null 2>&1 \
  || { echo "build failed: run cargo build --release -p llm-gateway -p mock-upstream" >&2; exit 1; }
GATEWAY_BIN="${BENCH_GATEWAY_BIN:-$REPO/target/release/llm-gateway}"

WORK="$(mktemp -d /tmp/llm-gateway-instructions.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$REPO/target/release/mock-upstream" --port 0 --workers 1 --no-record >"$WORK/mock.out" 2>"$WORK/mock.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $WORK/mock.out ]] && break; sleep 0.1; done
MOCK="http://127.0.0.1:$(head -1 "$WORK/mock.out")"
python3 "$PROBE" wait-http "$MOCK/v1/models" --timeout 10

PORT="$(python3 "$PROBE" freeport)"
source "$BENCH/harness/gateway_config.sh"
write_gateway_config "$WORK/gateway.toml" "$MOCK" "$WORK/ledger.db"

log "starting llm-gateway under callgrind"
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
  "$GATEWAY_BIN" --config "$WORK/gateway.toml" --port "$PORT" \
  >"$WORK/gateway.log" 2>&1 &
GW=$!
PIDS+=("$GW")
python3 "$PROBE" wait-http "http://127.0.0.1:$PORT/health" --timeout 120 || { tail -20 "$WORK/gateway.log"; exit 1; }

URL="http://127.0.0.1:$PORT/v1/chat/completions"
python3 "$PROBE" send "$URL" --n "$WARMUP" --body "$BODY" "${HEADERS[@]}"
sleep 1                                  # the warm-up's ledger batch is written
callgrind_control --zero "$GW" >/dev/null 2>&1
log "counting $N requests"
python3 "$PROBE" send "$URL" --n "$N" --body "$BODY" "${HEADERS[@]}"
sleep 1.5                                # their records are written (the ledger flushes every 200 ms)
callgrind_control --dump "$GW" >/dev/null 2>&1
sleep 1
DUMP="$(ls -t "$WORK"/callgrind.out.*.* | head -1)"
TOTAL="$(awk '/^(summary|totals):/ {print $2; exit}' "$DUMP")"
if [[ -n ${BENCH_GATEWAY_BIN:-} ]]; then
  what="$GATEWAY_BIN"
else
  what="commit $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo '+changes')"
fi
if [[ -n ${BENCH_DUMP:-} ]]; then cp "$DUMP" "$BENCH_DUMP"; fi
printf '%s: %s instructions per request (%s requests, %s in all)\n' "$what" "$((TOTAL / N))" "$N" "$TOTAL"
if ((TOP > 0)); then
  callgrind_annotate --inclusive=yes "$DUMP" 2>/dev/null | sed -n '/file:function/,$p' | sed 1,2d \
    | grep -v -E 'clone\.S|start_thread|thread_start|call_once|__rust_begin_short_backtrace|libc_start|lang_start|\(below main\)' \
    | head -"$TOP"
fi

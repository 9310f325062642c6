#!/usr/bin/env bash
# bench/run.sh — the reproducible benchmark of llm-gateway. See bench/README.md.
#
#   bench/run.sh                  full run (10 s lanes, 30 streams per lane, 1,000,000-request soak)
#   BENCH_QUICK=1 bench/run.sh    development run (3 s lanes, 8 streams, 100,000-request soak)
#
# Other knobs: BENCH_SKIP_LITELLM=1 (leave LiteLLM out), BENCH_SKIP_PORTAL=1 (leave out the portal
# lane (p), which seeds a 1,000,000-record ledger and loads every view in Chromium; 100,000 records
# in quick mode, or BENCH_PORTAL_RECORDS), BENCH_KEEP_WORK=1 (keep the temp dir
# with configs and logs), LITELLM_VERSION, BENCH_QUIET_WAIT / BENCH_DISTURBED_PCT / BENCH_ATTEMPTS /
# BENCH_WAIT_BUDGET (how it copes with other processes on the machine; defaults below).
#
# Everything it starts is pinned with taskset and killed on exit (trap), even on failure.

set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
HARNESS="$BENCH/harness"
QUICK="${BENCH_QUICK:-0}"
SKIP_LITELLM="${BENCH_SKIP_LITELLM:-0}"
SKIP_PORTAL="${BENCH_SKIP_PORTAL:-0}"
# The newest LiteLLM whose [proxy] extra resolves from the package index this machine reaches
# (later releases depend on litellm-proxy / litellm-proxy-extras versions it does not serve).
LITELLM_VERSION="${LITELLM_VERSION:-1.108.5}"

# CPU placement (2 cores): the proxy under test alone on CPU 0; the mock upstream, the load
# generator and the streaming client share CPU 1.
PROXY_CPU=0
LOAD_CPU=1
GATEWAY_WORKERS=1   # one HTTP worker: the gateway has one core (CPU 0) to itself
MOCK_WORKERS=1
CONCURRENCIES=(1 16 64)
if [[ $QUICK == 1 ]]; then
  MODE=quick; DURATION=3; WARMUP=1; STREAM_N=8; SOAK_SEGMENTS=(10000 40000 50000); ROUTE_DECISIONS=50000
  PORTAL_RECORDS=100000
else
  MODE=full; DURATION=10; WARMUP=3; STREAM_N=30; SOAK_SEGMENTS=(100000 400000 500000); ROUTE_DECISIONS=200000
  PORTAL_RECORDS=1000000
fi
# (p) The portal: a ledger of PORTAL_RECORDS (BENCH_PORTAL_RECORDS overrides the mode's) over
# PORTAL_DAYS, each view loaded 1 + PORTAL_LOADS times.
PORTAL_RECORDS="${BENCH_PORTAL_RECORDS:-$PORTAL_RECORDS}"
PORTAL_DAYS=30
PORTAL_LOADS=5
SOAK_CONCURRENCY=64
# Other people's builds and tests may share this machine. Before each measurement the harness
# waits (up to BENCH_QUIET_WAIT s) for a second in which processes outside the benchmark use less
# than 10% of a core; during it, it accounts their CPU (all busy jiffies minus the benchmark's own
# processes and the load tool); a non-streaming cell they disturbed (> BENCH_DISTURBED_PCT % of a
# core) is measured again, up to BENCH_ATTEMPTS times in all. The report shows every figure.
# BENCH_WAIT_BUDGET caps the time spent waiting and re-measuring over the whole run, so that a
# machine that never becomes quiet still gets its (flagged) report in bounded time.
QUIET_WAIT="${BENCH_QUIET_WAIT:-120}"
DISTURBED_PCT="${BENCH_DISTURBED_PCT:-10}"
ATTEMPTS="${BENCH_ATTEMPTS:-3}"
if [[ $QUICK == 1 ]]; then WAIT_BUDGET="${BENCH_WAIT_BUDGET:-120}"; else WAIT_BUDGET="${BENCH_WAIT_BUDGET:-600}"; fi
STREAM_CHUNKS=64
STREAM_GAP_MS=20

BODY='{"model":"gpt-4o","messages":[{"role":"user","content":"Hello, how are you today?"}]}'
# The same request left to the Router (lane gateway-auto): [routing] default_profile picks the model.
AUTO_BODY='{"model":"auto","messages":[{"role":"user","content":"Hello, how are you today?"}]}'
STREAM_BODY_OPENAI='{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello, how are you today?"}]}'
STREAM_BODY_ANTHROPIC='{"model":"claude-sonnet-4-20250514","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hello, how are you today?"}]}'
STREAM_BODY_TRANSLATED='{"model":"gpt-4o","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hello, how are you today?"}]}'
COMMON_HEADERS=(-H "x-project: bench" -H "x-source: wrk" -H "Content-Type: application/json")
GATEWAY_AUTH=(-H "Authorization: Bearer bench-team-key")
STREAM_HEADERS=(-H "x-mock-chunks: $STREAM_CHUNKS" -H "x-mock-chunk-delay-ms: $STREAM_GAP_MS")

TS="$(date -u +%Y%m%dT%H%M%SZ)"
WORK="$(mktemp -d /tmp/llm-gateway-bench.XXXXXX)"
chmod 755 "$WORK"
RAW="$WORK/raw"
mkdir -p "$RAW"/{http,stream,soak,logs,lanes,portal} "$WORK/bin"
cd "$WORK"   # nothing the benchmark starts writes into the repository

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# ------------------------------------------------------------------ processes and cleanup

PIDS=()   # process-group leaders started by this script (each via setsid)

start_bg() { # NAME CPU CMD... — starts CMD pinned to CPU in its own process group; sets LAST_PID
  local name=$1 cpu=$2; shift 2
  setsid taskset -c "$cpu" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

stop_pid() { # PID — SIGTERM to its group, then SIGKILL after 10 s; sets STOP_RC to its exit status
  local pid=$1 i
  STOP_RC=0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || STOP_RC=$?; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || STOP_RC=$?
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then stop_pid "$pid"; fi
  done
  if [[ ${BENCH_KEEP_WORK:-0} == 1 || $rc != 0 ]]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

probe() { python3 "$HARNESS/probe.py" "$@"; }
freeport() { probe freeport; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
lane_status() { echo "$2" > "$RAW/lanes/$1.status"; }

# ------------------------------------------------------------------ 1. build

log "mode: $MODE (work dir $WORK)"
# What is being measured: the commit, and whether the work tree differed from it (others edit
# src/ concurrently), taken right before the build.
printf '{"rev": "%s", "modified_tracked_files": %s, "diffstat": "%s"}\n' \
  "$(git -C "$REPO" rev-parse --short HEAD)" \
  "$(git -C "$REPO" status --porcelain --untracked-files=no | wc -l)" \
  "$(git -C "$REPO" diff --shortstat | sed 's/^ *//; s/"/\\"/g')" > "$RAW/git-at-build.json"
log "building release binaries"
(cd "$REPO" && cargo build --release -p llm-gateway -p mock-upstream) > "$RAW/logs/build.log" 2>&1 || {
  tail -30 "$RAW/logs/build.log"; log "build failed"; exit 1; }
# (d) The sanitizer alone: a ~100 KB prompt scanned with every pattern on (p50/p99, MB/s).
log "measuring the sanitizer on a 100 KB prompt"
(cd "$REPO" && taskset -c 0 cargo run --release --quiet --example sanitizer_throughput) \
  > "$RAW/sanitizer.json" 2>> "$RAW/logs/build.log" || log "sanitizer measurement failed (see build.log)"
# (r) One routing decision over the whole catalog: built now, measured before the lanes (below).
(cd "$REPO" && cargo build --release --quiet --example route_decision) >> "$RAW/logs/build.log" 2>&1 \
  || log "examples/route_decision failed to build (see build.log)"
# (k) The admission stage with limits on (examples/admission.rs): built now, measured with (r).
(cd "$REPO" && cargo build --release --quiet --example admission) >> "$RAW/logs/build.log" 2>&1 \
  || log "examples/admission failed to build (see build.log)"
# (p) The portal lane's ledger seeder (examples/seed_ledger.rs), built now, run after the soak.
if [[ $SKIP_PORTAL != 1 ]]; then
  (cd "$REPO" && cargo build --release --quiet --example seed_ledger) >> "$RAW/logs/build.log" 2>&1 \
    || log "examples/seed_ledger failed to build (see build.log)"
fi
# (t) Translating one streamed event between the two APIs (examples/translate_event.rs; JSON).
log "measuring the translation of one streamed event, both ways"
(cd "$REPO" && taskset -c 0 cargo run --release --quiet --example translate_event) \
  > "$RAW/translate.json" 2>> "$RAW/logs/build.log" || log "translation measurement failed (see build.log)"
# Run private copies: a concurrent rebuild of target/ must not swap binaries mid-run.
cp "$REPO/target/release/llm-gateway" "$REPO/target/release/mock-upstream" "$WORK/bin/"
cp "$REPO/target/release/examples/route_decision" "$WORK/bin/" 2>/dev/null || true
cp "$REPO/target/release/examples/admission" "$WORK/bin/" 2>/dev/null || true
[[ $SKIP_PORTAL == 1 ]] || cp "$REPO/target/release/examples/seed_ledger" "$WORK/bin/" 2>/dev/null || true
GATEWAY_BIN="$WORK/bin/llm-gateway"
sha256sum "$WORK/bin/llm-gateway" "$WORK/bin/mock-upstream" | sed "s#$WORK/bin/##" > "$RAW/binaries.sha256"
MOCK_BIN="$WORK/bin/mock-upstream"

# ------------------------------------------------------------------ 2. tools

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
if ((${#missing[@]})); then
  log "installing ${missing[*]} from apt"
  apt-get install -y "${missing[@]}" > "$RAW/logs/apt.log" 2>&1 \
    || { apt-get update >> "$RAW/logs/apt.log" 2>&1 && apt-get install -y "${missing[@]}" >> "$RAW/logs/apt.log" 2>&1; }
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

LITELLM_VENV="$BENCH/.venv-litellm"
LITELLM_STATUS=ok
if [[ $SKIP_LITELLM == 1 ]]; then
  LITELLM_STATUS="skipped (BENCH_SKIP_LITELLM=1)"
elif [[ ! -x $LITELLM_VENV/bin/litellm ]] \
     || ! grep -qx "Version: $LITELLM_VERSION" <<< "$("$LITELLM_VENV/bin/pip" show litellm 2>/dev/null)"; then
  log "installing litellm[proxy]==$LITELLM_VERSION into $LITELLM_VENV"
  if ! { python3 -m venv "$LITELLM_VENV" \
         && "$LITELLM_VENV/bin/pip" install -q --upgrade pip \
         && "$LITELLM_VENV/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"; } > "$RAW/logs/litellm-install.log" 2>&1; then
    LITELLM_STATUS="install failed: $({ grep '^ERROR' "$RAW/logs/litellm-install.log" || tail -1 "$RAW/logs/litellm-install.log"; } | tail -1)"
    log "LiteLLM: $LITELLM_STATUS"
  fi
fi

# (p) The portal lane drives Debian's chromium with playwright-core (the version tests/browser
# pins, installed where tests/browser/test_portal.py installs it).
BROWSER_NODE="$REPO/target/browser-node"
PORTAL_STATUS=ok
if [[ $SKIP_PORTAL == 1 ]]; then
  PORTAL_STATUS="skipped (BENCH_SKIP_PORTAL=1)"
else
  if [[ ! -x /usr/bin/chromium ]]; then
    log "installing chromium from apt"
    apt-get install -y chromium >> "$RAW/logs/apt.log" 2>&1 \
      || { apt-get update >> "$RAW/logs/apt.log" 2>&1 && apt-get install -y chromium >> "$RAW/logs/apt.log" 2>&1; } \
      || PORTAL_STATUS="chromium failed to install (see logs/apt.log)"
  fi
  if [[ ! -d $BROWSER_NODE/node_modules/playwright-core ]]; then
    log "installing playwright-core into $BROWSER_NODE"
    { mkdir -p "$BROWSER_NODE" && cp "$REPO/tests/browser/package.json" "$BROWSER_NODE/package.json" \
        && npm install --prefix "$BROWSER_NODE" --no-audit --no-fund --loglevel=error; } > "$RAW/logs/npm.log" 2>&1 \
      || PORTAL_STATUS="playwright-core failed to install (see logs/npm.log)"
  fi
  [[ -x $WORK/bin/seed_ledger ]] || PORTAL_STATUS="examples/seed_ledger did not build (see logs/build.log)"
fi

probe meta --out "$RAW/meta.json" --repo "$REPO" \
  --litellm-pip "$([[ -x $LITELLM_VENV/bin/pip ]] && echo "$LITELLM_VENV/bin/pip")"

cat > "$RAW/settings.json" <<EOF
{"mode": "$MODE", "timestamp": "$TS", "duration_s": $DURATION, "warmup_s": $WARMUP,
 "concurrencies": [$(IFS=,; echo "${CONCURRENCIES[*]}")], "stream_requests": $STREAM_N,
 "stream_chunks": $STREAM_CHUNKS, "stream_gap_ms": $STREAM_GAP_MS,
 "soak_segments": [$(IFS=,; echo "${SOAK_SEGMENTS[*]}")], "soak_concurrency": $SOAK_CONCURRENCY,
 "route_decisions": $ROUTE_DECISIONS,
 "portal_records": $PORTAL_RECORDS, "portal_days": $PORTAL_DAYS, "portal_loads": $PORTAL_LOADS,
 "proxy_cpu": $PROXY_CPU, "load_cpu": $LOAD_CPU, "gateway_workers": $GATEWAY_WORKERS,
 "mock_workers": $MOCK_WORKERS, "disturbed_pct": $DISTURBED_PCT, "attempts": $ATTEMPTS, "quiet_wait_s": $QUIET_WAIT,
 "wait_budget_s": $WAIT_BUDGET, "litellm_version": "$LITELLM_VERSION", "load_tool": "wrk -t1 (Lua script harness/wrk_post.lua)"}
EOF

# ------------------------------------------------------------------ 3. upstreams and proxies

log "starting mock-upstream on CPU $LOAD_CPU"
start_bg mock "$LOAD_CPU" "$MOCK_BIN" --port 0 --workers "$MOCK_WORKERS" --no-record
MOCK_PID=$LAST_PID
for _ in $(seq 100); do [[ -s $WORK/mock.out ]] && break; sleep 0.1; done
MOCK_PORT="$(head -1 "$WORK/mock.out")"
MOCK="http://127.0.0.1:$MOCK_PORT"
probe wait-http "$MOCK/v1/models" --timeout 10

# The mock's POST handlers always await a timer (tokio rounds even a zero delay up to the next
# 1 ms tick), which quantizes their latency; a static nginx on CPU 1 answering the same JSON
# body gives a timer-free upstream for a second, precise measure of added latency (lane a2).
MOCK_JSON="$(curl -s "$MOCK/v1/chat/completions" -H 'Content-Type: application/json' -d "$BODY")"
STATIC_PORT="$(freeport)"
mkdir -p "$WORK/nginx-static"
python3 - "$MOCK_JSON" "$STATIC_PORT" "$WORK/nginx-static" > "$WORK/nginx-static/nginx.conf" <<'PY'
import sys
body, port, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
assert "$" not in body
body = body.replace("\\", "\\\\").replace("'", "\\'")
print(f"""worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port};
    location = /v1/chat/completions {{
      default_type application/json;
      add_header x-request-id upstream-req-123;
      return 200 '{body}';
    }}
  }}
}}""")
PY
log "starting static upstream (nginx) on CPU $LOAD_CPU"
start_bg nginx-static "$LOAD_CPU" "$NGINX" -p "$WORK/nginx-static" -c "$WORK/nginx-static/nginx.conf" -e "$WORK/nginx-static/error.log"
STATIC="http://127.0.0.1:$STATIC_PORT"

NGINX_PORT="$(freeport)"
NGINX_STATIC_PORT="$(freeport)"
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/client_body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  upstream mock   { server 127.0.0.1:$MOCK_PORT;   keepalive 128; keepalive_requests 100000000; }
  upstream static { server 127.0.0.1:$STATIC_PORT; keepalive 128; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
  server {
    listen 127.0.0.1:$NGINX_STATIC_PORT;
    location / {
      proxy_pass http://static;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
log "starting nginx reverse proxy on CPU $PROXY_CPU"
start_bg nginx "$PROXY_CPU" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
NGINX_PID=$LAST_PID

source "$HARNESS/gateway_config.sh"   # write_gateway_config FILE UPSTREAM_URL DB_FILE [WORKERS]

start_gateway() { # NAME CONFIG PORT — sets GW_PID
  start_bg "$1" "$PROXY_CPU" env RUST_LOG=warn "$GATEWAY_BIN" --config "$2" --port "$3"
  GW_PID=$LAST_PID
  probe wait-http "http://127.0.0.1:$3/health" --timeout 30 || { tail -20 "$WORK/$1.log"; return 1; }
}

GW_PORT="$(freeport)"
write_gateway_config "$WORK/gateway.toml" "$MOCK" "$WORK/bench-ledger.db" "$GATEWAY_WORKERS"
log "starting llm-gateway on CPU $PROXY_CPU (workers = $GATEWAY_WORKERS)"
start_gateway gateway "$WORK/gateway.toml" "$GW_PORT"
GATEWAY_PID=$GW_PID
GATEWAY="http://127.0.0.1:$GW_PORT"
echo "$(rss_kb "$GATEWAY_PID")" > "$RAW/http/gateway-rss-idle.kb"
# The same gateway for the model: auto lane, with a ledger of its own: each lane's records go
# to a database that grew alike (the lanes alternate, cell by cell), so that neither pays for
# the other's writes.
AUTO_PORT="$(freeport)"
write_gateway_config "$WORK/gateway-auto.toml" "$MOCK" "$WORK/bench-ledger-auto.db" "$GATEWAY_WORKERS"
start_gateway gateway-auto "$WORK/gateway-auto.toml" "$AUTO_PORT"
AUTO_PID=$GW_PID
GATEWAY_AUTO="http://127.0.0.1:$AUTO_PORT"

probe wait-http "$STATIC/v1/chat/completions" --timeout 10 >/dev/null 2>&1 || true
probe wait-http "http://127.0.0.1:$NGINX_PORT/v1/models" --timeout 10

# ------------------------------------------------------------------ lanes

# The body posted by http_lane / run_wrk: $LANE_BODY when set (LANE_BODY=... http_lane ...), else $BODY;
# the smoke test looks for $LANE_EXPECT in the answer (default "choices").
run_wrk() { # OUT_JSON CONC SECONDS URL [wrk args...]
  local out=$1 c=$2 d=$3 url=$4; shift 4
  BENCH_BODY="${LANE_BODY:-$BODY}" BENCH_OUT="$out" taskset -c "$LOAD_CPU" \
    wrk -t1 -c"$c" -d"${d}s" --timeout 10s -s "$HARNESS/wrk_post.lua" "$@" "$url" > "${out%.json}.txt" 2>&1
}

# Other people's builds and tests may share this machine: see QUIET_WAIT at the top.
SELF_PGID="$(ps -o pgid= $$ | tr -d ' ')"
our_pgids() { echo "${PIDS[*]} $SELF_PGID"; }
children_cpu_s() { awk 'NR==2 { n = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); n += a[1] * 60 + a[2] } print n }' "$1"; }

# measure PREFIX CMD... — runs CMD (a load tool or the stream client) between CPU snapshots;
# writes PREFIX.load (JSON: foreign CPU, quiet wait). Returns 2 when other processes disturbed it.
budget_left() { awk -v b="$WAIT_BUDGET" 'BEGIN { exit !(b > 0) }'; }

wait_quiet() { # PREFIX — writes PREFIX.quiet; spends from WAIT_BUDGET
  local max waited
  max="$(awk -v b="$WAIT_BUDGET" -v q="$QUIET_WAIT" 'BEGIN { m = (b < q ? b : q); print (m > 0 ? m : 0) }')"
  probe quiet --pgids "$(our_pgids)" --threshold 10 --max-wait "$max" > "$1.quiet" || echo '{}' > "$1.quiet"
  waited="$(grep -o '"waited_s": [0-9.]*' "$1.quiet" | awk '{ print $2 }')"
  WAIT_BUDGET="$(awk -v b="$WAIT_BUDGET" -v w="${waited:-0}" 'BEGIN { print b - (w > 1 ? w - 1 : 0) }')"
  grep -q '"quiet": true' "$1.quiet" || log "    the machine did not become quiet (waited ${waited:-0}s): $(cat "$1.quiet")"
}

measure() {
  local prefix=$1; shift
  [[ -s $prefix.quiet ]] || echo '{}' > "$prefix.quiet"
  probe cpu-snap --pgids "$(our_pgids)" --out "$prefix.snap-before"
  times > "$WORK/times.before"
  local rc=0
  "$@" || rc=$?
  times > "$WORK/times.after"
  probe cpu-snap --pgids "$(our_pgids)" --out "$prefix.snap-after"
  local tool_cpu foreign kernel
  tool_cpu="$(awk -v a="$(children_cpu_s "$WORK/times.before")" -v b="$(children_cpu_s "$WORK/times.after")" 'BEGIN { print b - a }')"
  read -r foreign kernel < <(probe foreign "$prefix.snap-before" "$prefix.snap-after" --extra-cpu-s "$tool_cpu")
  printf '{"foreign_cpu_pct": %s, "kernel_threads_cpu_pct": %s, "tool_cpu_s": %s, "quiet_wait": %s, "rc": %s}\n' \
    "$foreign" "$kernel" "$tool_cpu" "$(cat "$prefix.quiet")" "$rc" > "$prefix.load"
  if awk -v f="$foreign" -v t="$DISTURBED_PCT" 'BEGIN { exit !(f > t) }'; then
    log "    other processes used ${foreign}% of a core during this measurement"
    return 2
  fi
  return 0
}

print_cell() { # OUT LANE C
  python3 - "$@" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1])); e = d["errors"]; l = d["latency_us"]
rps = d["requests"] / d["duration_us"] * 1e6
errs = ", ".join(f"{k} {v}" for k, v in e.items() if v)
print(f"  {sys.argv[2]:>20} c={sys.argv[3]:<3} {rps:9.0f} req/s  p50 {l['p50']:6d} us  p99 {l['p99']:6d} us" + (f"  ERRORS: {errs}" if errs else ""))
PY
}

# again_if_disturbed PREFIX LABEL SECONDS CMD... — CMD (which runs measure PREFIX ...) after a quiet
# wait, and again while other processes disturbed it: up to ATTEMPTS in all, within WAIT_BUDGET
# (SECONDS: what one more attempt costs).
again_if_disturbed() {
  local prefix=$1 label=$2 seconds=$3 attempt rc; shift 3
  for attempt in $(seq "$ATTEMPTS"); do
    wait_quiet "$prefix"
    rc=0
    "$@" || rc=$?
    cat "$prefix.load" >> "$prefix.attempts"
    [[ $rc == 2 && $attempt -lt $ATTEMPTS ]] && budget_left || break
    WAIT_BUDGET="$(awk -v b="$WAIT_BUDGET" -v d="$seconds" 'BEGIN { print b - d }')"
    log "    $label: measuring again (attempt $((attempt + 1)) of $ATTEMPTS)"
  done
}

wrk_cell() { # OUT CONC URL [wrk args...] — warm-up, then the measurement
  local out=$1 c=$2 url=$3; shift 3
  run_wrk "$WORK/warmup.json" "$c" "$WARMUP" "$url" "$@" || true
  measure "$out" run_wrk "$out" "$c" "$DURATION" "$url" "$@"
}

http_lane() { # LANE URL [headers...] — smoke test, then warm-up + measurement at each concurrency
  local lane=$1 url=$2; shift 2
  local c out
  if ! probe smoke "$url" --body "${LANE_BODY:-$BODY}" --expect "${LANE_EXPECT:-\"choices\"}" "$@" > "$RAW/lanes/$lane.smoke" 2>&1; then
    lane_status "$lane" "failed smoke test: $(cat "$RAW/lanes/$lane.smoke")"
    log "$lane: smoke test failed: $(cat "$RAW/lanes/$lane.smoke")"
    return 0
  fi
  lane_status "$lane" ok
  for c in ${LANE_CONCURRENCIES:-${CONCURRENCIES[*]}}; do
    out="$RAW/http/$lane-c$c.json"
    again_if_disturbed "$out" "$lane c=$c" "$((DURATION + WARMUP))" wrk_cell "$out" "$c" "$url" "$@"
    if [[ -s $out ]]; then print_cell "$out" "$lane" "$c"; else log "$lane c=$c: no result"; fi
  done
}

repin() { # CPU PGID... — moves every thread of every process of these process groups to CPU
  local cpu=$1 g p; shift
  for g in "$@"; do for p in $(pgrep -g "$g"); do taskset -apc "$cpu" "$p" >/dev/null || true; done; done
}

gateway_check() { # NAME PID URL — note errors and crashes of a gateway after a lane
  local name=$1 pid=$2 url=$3
  if ! kill -0 "$pid" 2>/dev/null; then
    local rc=0; wait "$pid" 2>/dev/null || rc=$?
    echo "exited with status $rc; last log lines: $(tail -5 "$WORK/$name.log" | tr '\n' ' ')" > "$RAW/lanes/$name.crash"
    log "$name is not running any more (status $rc)"
    return 1
  fi
  curl -s --max-time 30 "$url/v1/records?status=error&limit=20" > "$RAW/logs/$name-error-records.json" || true
  return 0
}

# (r) The router alone, on the proxy's CPU while nothing else of the benchmark runs: one routing
# decision over the whole catalog per shipped profile (examples/route_decision.rs; JSON).
route_decision() {
  taskset -c "$PROXY_CPU" "$WORK/bin/route_decision" "$ROUTE_DECISIONS" > "$RAW/routing.json" 2> "$RAW/logs/route-decision.log"
}
if [[ -x $WORK/bin/route_decision ]]; then
  log "(r) one routing decision over the catalog: $ROUTE_DECISIONS per shipped profile, on CPU $PROXY_CPU"
  # One attempt takes about a second per 4,000 decisions (7 profiles, with and without the trace).
  again_if_disturbed "$RAW/routing" "(r) routing decision" "$((ROUTE_DECISIONS / 4000))" measure "$RAW/routing" route_decision
  [[ -s $RAW/routing.json ]] || log "routing measurement failed: $(tail -3 "$RAW/logs/route-decision.log" | tr '\n' ' ')"
fi

# (k) The admission stage per request with limits on (a key's budget, rpm and tpm), its counters
# local, shared in Redis (127.0.0.1:6379) and in PostgreSQL (127.0.0.1:5432), beside no limits.
ADMISSION_REQUESTS=$((ROUTE_DECISIONS))
admission() {
  taskset -c "$PROXY_CPU" "$WORK/bin/admission" "$ADMISSION_REQUESTS" > "$RAW/admission.json" 2> "$RAW/logs/admission.log"
}
if [[ -x $WORK/bin/admission ]]; then
  log "(k) admission with limits on: $ADMISSION_REQUESTS requests per way of keeping the counters, on CPU $PROXY_CPU"
  again_if_disturbed "$RAW/admission" "(k) admission" "$((ADMISSION_REQUESTS / 20000 + 2))" measure "$RAW/admission" admission
  [[ -s $RAW/admission.json ]] || log "admission measurement failed: $(tail -3 "$RAW/logs/admission.log" | tr '\n' ' ')"
fi

log "(a) non-streaming lanes, ${DURATION}s each after ${WARMUP}s warm-up, concurrency ${CONCURRENCIES[*]}"
http_lane mock "$MOCK/v1/chat/completions" "${COMMON_HEADERS[@]}"
http_lane nginx "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "${COMMON_HEADERS[@]}"
# gateway and gateway-auto alternate, concurrency by concurrency, so that the machine's drift
# over the run falls on both alike.
for c in "${CONCURRENCIES[@]}"; do
  LANE_CONCURRENCIES=$c http_lane gateway "$GATEWAY/v1/chat/completions" "${GATEWAY_AUTH[@]}" "${COMMON_HEADERS[@]}"
  LANE_CONCURRENCIES=$c LANE_BODY="$AUTO_BODY" http_lane gateway-auto "$GATEWAY_AUTO/v1/chat/completions" "${GATEWAY_AUTH[@]}" "${COMMON_HEADERS[@]}"
done
# Where the Router sent the auto requests (its x-route-profile / x-route-model headers).
curl -s --max-time 10 -o /dev/null -D - "$GATEWAY_AUTO/v1/chat/completions" "${GATEWAY_AUTH[@]}" "${COMMON_HEADERS[@]}" \
  -d "$AUTO_BODY" | tr -d '\r' | grep -i '^x-route-' > "$RAW/lanes/gateway-auto.route" || true
if ! gateway_check gateway "$GATEWAY_PID" "$GATEWAY"; then
  lane_status gateway "crashed: $(cat "$RAW/lanes/gateway.crash")"
fi
if ! gateway_check gateway-auto "$AUTO_PID" "$GATEWAY_AUTO"; then
  lane_status gateway-auto "crashed: $(cat "$RAW/lanes/gateway-auto.crash")"
fi
stop_pid "$AUTO_PID"; echo "$STOP_RC" > "$RAW/logs/gateway-auto.exit"
echo "$(rss_kb "$GATEWAY_PID")" > "$RAW/http/gateway-rss-after-lanes.kb"

# (e) Embeddings (POST /v1/embeddings, what retrieval pipelines call for every document and
# query): two inputs, the mock's float vectors back, direct, through nginx and through the
# gateway (the same gateway as (a): metered, priced from the embedding card, sanitized).
log "(e) embeddings lanes, ${DURATION}s each after ${WARMUP}s warm-up, concurrency ${CONCURRENCIES[*]}"
EMBED_BODY='{"model":"text-embedding-3-small","input":["The quick brown fox jumps over the lazy dog.","Retrieval pipelines embed every document and every query."],"dimensions":64}'
LANE_BODY="$EMBED_BODY" LANE_EXPECT='"embedding"' http_lane embed-mock "$MOCK/v1/embeddings" "${COMMON_HEADERS[@]}"
LANE_BODY="$EMBED_BODY" LANE_EXPECT='"embedding"' http_lane embed-nginx "http://127.0.0.1:$NGINX_PORT/v1/embeddings" "${COMMON_HEADERS[@]}"
LANE_BODY="$EMBED_BODY" LANE_EXPECT='"embedding"' http_lane embed-gateway "$GATEWAY/v1/embeddings" "${GATEWAY_AUTH[@]}" "${COMMON_HEADERS[@]}"

log "(b) streaming lanes: $STREAM_N sequential requests each, $STREAM_CHUNKS chunks ${STREAM_GAP_MS} ms apart"
stream_lane() { # LANE URL BODY [headers...]
  local lane=$1 url=$2 body=$3; shift 3
  log "  stream $lane"
  wait_quiet "$RAW/stream/$lane.json"
  measure "$RAW/stream/$lane.json" taskset -c "$LOAD_CPU" python3 "$HARNESS/probe.py" stream "$url" \
    --body "$body" --n "$STREAM_N" --warmup 2 --chunks "$STREAM_CHUNKS" --gap-ms "$STREAM_GAP_MS" \
    --out "$RAW/stream/$lane.json" "${STREAM_HEADERS[@]}" "${COMMON_HEADERS[@]}" "$@" || true
}
stream_lane direct-openai "$MOCK/v1/chat/completions" "$STREAM_BODY_OPENAI"
stream_lane nginx-openai "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$STREAM_BODY_OPENAI"
stream_lane gateway-openai "$GATEWAY/v1/chat/completions" "$STREAM_BODY_OPENAI" "${GATEWAY_AUTH[@]}"
stream_lane direct-anthropic "$MOCK/v1/messages" "$STREAM_BODY_ANTHROPIC" -H "anthropic-version: 2023-06-01"
stream_lane gateway-anthropic "$GATEWAY/v1/messages" "$STREAM_BODY_ANTHROPIC" -H "anthropic-version: 2023-06-01" "${GATEWAY_AUTH[@]}"
# Translated: an Anthropic client on gpt-4o (the mock's OpenAI stream, turned into Messages
# events as each chunk arrives), beside the direct OpenAI lane.
stream_lane gateway-translated "$GATEWAY/v1/messages" "$STREAM_BODY_TRANSLATED" -H "anthropic-version: 2023-06-01" "${GATEWAY_AUTH[@]}"
gateway_check gateway "$GATEWAY_PID" "$GATEWAY" || true
stop_pid "$GATEWAY_PID"; echo "$STOP_RC" > "$RAW/logs/gateway.exit"
cp "$WORK/gateway.log" "$RAW/logs/gateway.log"

log "(a2) timer-free upstream: static nginx answer direct, through nginx, through the gateway"
GW2_PORT="$(freeport)"
write_gateway_config "$WORK/gateway-static.toml" "$STATIC" "$WORK/bench-ledger-static.db" "$GATEWAY_WORKERS"
if start_gateway gateway-static "$WORK/gateway-static.toml" "$GW2_PORT"; then
  GATEWAY_STATIC_PID=$GW_PID
  http_lane static "$STATIC/v1/chat/completions" "${COMMON_HEADERS[@]}"
  http_lane nginx-static "http://127.0.0.1:$NGINX_STATIC_PORT/v1/chat/completions" "${COMMON_HEADERS[@]}"
  http_lane gateway-static "http://127.0.0.1:$GW2_PORT/v1/chat/completions" "${GATEWAY_AUTH[@]}" "${COMMON_HEADERS[@]}"
  gateway_check gateway-static "$GATEWAY_STATIC_PID" "http://127.0.0.1:$GW2_PORT" || lane_status gateway-static "crashed: $(cat "$RAW/lanes/gateway-static.crash")"

  # (a3) Every cross-core hop costs tens of µs on this virtual machine (waking the other vCPU),
  # so at c=1 the pinned lanes above mostly measure the hops. Moving nginx and the gateway onto
  # the load CPU for a c=1 run measures their own processing time per request instead.
  log "(a3) c=1 with the proxy, the static upstream and wrk all on CPU $LOAD_CPU"
  repin "$LOAD_CPU" "$NGINX_PID" "$GATEWAY_STATIC_PID"
  LANE_CONCURRENCIES=1 http_lane static-1core "$STATIC/v1/chat/completions" "${COMMON_HEADERS[@]}"
  LANE_CONCURRENCIES=1 http_lane nginx-static-1core "http://127.0.0.1:$NGINX_STATIC_PORT/v1/chat/completions" "${COMMON_HEADERS[@]}"
  LANE_CONCURRENCIES=1 http_lane gateway-static-1core "http://127.0.0.1:$GW2_PORT/v1/chat/completions" "${GATEWAY_AUTH[@]}" "${COMMON_HEADERS[@]}"
  repin "$PROXY_CPU" "$NGINX_PID" "$GATEWAY_STATIC_PID"
  stop_pid "$GATEWAY_STATIC_PID"; echo "$STOP_RC" > "$RAW/logs/gateway-static.exit"
  cp "$WORK/gateway-static.log" "$RAW/logs/gateway-static.log"
else
  lane_status gateway-static "failed to start: $(tail -3 "$WORK/gateway-static.log" | tr '\n' ' ')"
fi
stop_pid "$NGINX_PID"

# ------------------------------------------------------------------ LiteLLM (a) and (b)

if [[ $LITELLM_STATUS == ok ]]; then
  log "starting LiteLLM proxy $LITELLM_VERSION on CPU $PROXY_CPU (default single worker)"
  LITELLM_PORT="$(freeport)"
  LITELLM_KEY="sk-bench-$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
  cat > "$WORK/litellm.yaml" <<EOF
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: $MOCK/v1
      api_key: sk-bench-litellm-upstream
general_settings:
  # LiteLLM refuses to start without a master key; clients then send it as their bearer token.
  master_key: $LITELLM_KEY
  # Forward x-* headers, so the mock's x-mock-chunks / x-mock-chunk-delay-ms steer its streams.
  forward_client_headers_to_llm_api: true
litellm_settings:
  drop_params: true
EOF
  start_bg litellm "$PROXY_CPU" env LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY_DISABLED=true \
    LITELLM_LOG=ERROR DISABLE_ADMIN_UI=True NO_DOCS=True \
    "$LITELLM_VENV/bin/litellm" --config "$WORK/litellm.yaml" --host 127.0.0.1 --port "$LITELLM_PORT"
  LITELLM_PID=$LAST_PID
  if probe wait-http "http://127.0.0.1:$LITELLM_PORT/health/liveliness" --timeout 180; then
    LITELLM_AUTH=(-H "Authorization: Bearer $LITELLM_KEY")
    http_lane litellm "http://127.0.0.1:$LITELLM_PORT/v1/chat/completions" "${LITELLM_AUTH[@]}" "${COMMON_HEADERS[@]}"
    stream_lane litellm-openai "http://127.0.0.1:$LITELLM_PORT/v1/chat/completions" "$STREAM_BODY_OPENAI" "${LITELLM_AUTH[@]}"
    kill -0 "$LITELLM_PID" 2>/dev/null || LITELLM_STATUS="exited during its lanes: $(tail -3 "$WORK/litellm.log" | tr '\n' ' ')"
  else
    LITELLM_STATUS="failed to start within 180 s: $(grep -m3 -iE 'error|exception' "$WORK/litellm.log" | tr '\n' ' ' | cut -c1-400)"
  fi
  stop_pid "$LITELLM_PID"
  cp "$WORK/litellm.log" "$RAW/logs/litellm.log" 2>/dev/null || true
fi
[[ $LITELLM_STATUS == ok ]] || log "LiteLLM: $LITELLM_STATUS"
echo "$LITELLM_STATUS" > "$RAW/lanes/litellm.status.detail"
[[ -f $RAW/lanes/litellm.status ]] || lane_status litellm "$LITELLM_STATUS"

# ------------------------------------------------------------------ (c) RSS soak and /v1/stats

TOTAL=0; for n in "${SOAK_SEGMENTS[@]}"; do TOTAL=$((TOTAL + n)); done
log "(c) soak: a fresh gateway, $TOTAL requests at concurrency $SOAK_CONCURRENCY, RSS sampled"
GW3_PORT="$(freeport)"
SOAK_DB="$WORK/bench-ledger-soak.db"
write_gateway_config "$WORK/gateway-soak.toml" "$MOCK" "$SOAK_DB" "$GATEWAY_WORKERS"
start_gateway gateway-soak "$WORK/gateway-soak.toml" "$GW3_PORT"
SOAK_PID=$GW_PID
SOAK_URL="http://127.0.0.1:$GW3_PORT"
sleep 2
CHECKPOINTS="$RAW/soak/rss-checkpoints.tsv"
queue_depth() { curl -s --max-time 2 "$SOAK_URL/metrics" | awk '/^llm_gateway_ledger_queue_depth /{print $2}'; }
printf 'label\trequests\trss_kb\tledger_queue\n' > "$CHECKPOINTS"
printf 'idle after start\t0\t%s\t%s\n' "$(rss_kb "$SOAK_PID")" "$(queue_depth)" >> "$CHECKPOINTS"
# 1 s RSS timeline for the whole soak (a sampler of our own, stopped below).
# Each line: time, VmRSS KiB, the ledger's queue depth (llm_gateway_ledger_queue_depth on /metrics,
# where the gateway has it): records received but not yet written to SQLite.
setsid bash -c 'while kill -0 '"$SOAK_PID"' 2>/dev/null; do
    printf "%s\t%s\t%s\n" "$(date +%s.%N)" "$(awk "/^VmRSS/{print \$2}" /proc/'"$SOAK_PID"'/status)" \
      "$(curl -s --max-time 1 '"$SOAK_URL"'/metrics | awk "/^llm_gateway_ledger_queue_depth /{print \$2}")"
    sleep 1; done' > "$RAW/soak/rss-timeline.tsv" 2>/dev/null &
SAMPLER_PID=$!
PIDS+=("$SAMPLER_PID")
wait_quiet "$RAW/soak/soak"
echo "load-start $(date +%s.%N)" > "$RAW/soak/load-window.txt"
probe cpu-snap --pgids "$(our_pgids)" --out "$RAW/soak/soak.snap-before"
times > "$WORK/times.soak-before"
sent=0; seg=0
for n in "${SOAK_SEGMENTS[@]}"; do
  seg=$((seg + 1))
  out="$RAW/soak/segment$seg.json"
  BENCH_MAX_REQUESTS=$n BENCH_BODY="$BODY" BENCH_OUT="$out" taskset -c "$LOAD_CPU" \
    wrk -t1 -c"$SOAK_CONCURRENCY" -d1800s --timeout 10s -s "$HARNESS/wrk_post.lua" \
    "${GATEWAY_AUTH[@]}" "${COMMON_HEADERS[@]}" "$SOAK_URL/v1/chat/completions" > "${out%.json}.txt" 2>&1 || true
  rss="$(rss_kb "$SOAK_PID")"
  done_n="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$out" 2>/dev/null || echo 0)"
  sent=$((sent + done_n))
  printf 'after %s requests\t%s\t%s\t%s\n' "$sent" "$sent" "$rss" "$(queue_depth)" >> "$CHECKPOINTS"
  log "  $sent requests done, gateway RSS $((rss / 1024)) MiB"
  kill -0 "$SOAK_PID" 2>/dev/null || { log "  the gateway exited during the soak"; break; }
done
echo "load-end $(date +%s.%N)" >> "$RAW/soak/load-window.txt"
times > "$WORK/times.soak-after"
probe cpu-snap --pgids "$(our_pgids)" --out "$RAW/soak/soak.snap-after"
tool_cpu="$(awk -v a="$(children_cpu_s "$WORK/times.soak-before")" -v b="$(children_cpu_s "$WORK/times.soak-after")" 'BEGIN { print b - a }')"
read -r foreign kernel < <(probe foreign "$RAW/soak/soak.snap-before" "$RAW/soak/soak.snap-after" --extra-cpu-s "$tool_cpu")
printf '{"foreign_cpu_pct": %s, "kernel_threads_cpu_pct": %s, "tool_cpu_s": %s, "quiet_wait": %s}\n' \
  "$foreign" "$kernel" "$tool_cpu" "$(cat "$RAW/soak/soak.quiet")" > "$RAW/soak/soak.load"
sleep 5
printf '5 s after the load\t%s\t%s\t%s\n' "$sent" "$(rss_kb "$SOAK_PID")" "$(queue_depth)" >> "$CHECKPOINTS"
sleep 1   # the ledger writes in batches every 200 ms
if kill -0 "$SOAK_PID" 2>/dev/null; then
  probe stats "$SOAK_URL/v1/stats" --n 10 --out "$RAW/soak/stats.json" || true
else
  gateway_check gateway-soak "$SOAK_PID" "$SOAK_URL" || true
fi
stat -c '%n %s' "$SOAK_DB"* > "$RAW/soak/db-size.txt" 2>/dev/null || true
curl -s --max-time 5 "$SOAK_URL/metrics" > "$RAW/soak/metrics.txt" || true
gateway_check gateway-soak "$SOAK_PID" "$SOAK_URL" || true
t0=$(date +%s%N)
stop_pid "$SOAK_PID"; rc=$STOP_RC
echo "$rc $(( ($(date +%s%N) - t0) / 1000000 ))" > "$RAW/logs/gateway-soak.exit"   # exit status, shutdown ms
stat -c '%n %s' "$SOAK_DB"* > "$RAW/soak/db-size-after-stop.txt" 2>/dev/null || true
stop_pid "$SAMPLER_PID"
cp "$WORK/gateway-soak.log" "$RAW/logs/gateway-soak.log"

# ------------------------------------------------------------------ (p) the portal over a large ledger

# A ledger of PORTAL_RECORDS records over the last PORTAL_DAYS days, seeded through the ledger's
# own batch writes (so the rollups are the gateway's), then every portal view loaded in headless
# Chromium against a fresh gateway on it: the gateway on CPU 0, Chromium and node on CPU 1.
portal_lane() {
  local db="$WORK/portal-ledger.db" port
  log "(p) portal: seeding a ledger of $PORTAL_RECORDS records over $PORTAL_DAYS days"
  if ! taskset -c "$PROXY_CPU" "$WORK/bin/seed_ledger" "$db" "$PORTAL_RECORDS" "$PORTAL_DAYS" \
       > "$RAW/portal/seed.json" 2> "$RAW/logs/seed-ledger.log"; then
    PORTAL_STATUS="seeding failed: $(tail -3 "$RAW/logs/seed-ledger.log" | tr '\n' ' ')"; return 0
  fi
  log "  seeded: $(cat "$RAW/portal/seed.json")"
  port="$(freeport)"
  write_gateway_config "$WORK/gateway-portal.toml" "$MOCK" "$db" "$GATEWAY_WORKERS"
  if ! start_gateway gateway-portal "$WORK/gateway-portal.toml" "$port"; then
    PORTAL_STATUS="the gateway failed to start on the seeded ledger: $(tail -3 "$WORK/gateway-portal.log" | tr '\n' ' ')"; return 0
  fi
  local pid=$GW_PID
  /usr/bin/chromium --version > "$RAW/portal/chromium.version" 2>/dev/null || true
  log "  loading every view $((PORTAL_LOADS + 1)) times in headless Chromium on CPU $LOAD_CPU"
  portal_run() {
    BROWSER_NODE="$BROWSER_NODE" taskset -c "$LOAD_CPU" node "$BENCH/portal/portal_speed.mjs" \
      "http://127.0.0.1:$port" "$RAW/portal/views.json" "$PORTAL_LOADS" 2> "$RAW/logs/portal.log"
  }
  again_if_disturbed "$RAW/portal/portal" "(p) portal views" 60 measure "$RAW/portal/portal" portal_run
  [[ -s $RAW/portal/views.json ]] || PORTAL_STATUS="the browser run failed: $(tail -3 "$RAW/logs/portal.log" | tr '\n' ' ')"
  # Not gateway_check: the seeded ledger's error records are synthetic, not the gateway's.
  kill -0 "$pid" 2>/dev/null || PORTAL_STATUS="the gateway exited during the run: $(tail -3 "$WORK/gateway-portal.log" | tr '\n' ' ')"
  stop_pid "$pid"
  cp "$WORK/gateway-portal.log" "$RAW/logs/gateway-portal.log"
  rm -f "$db" "$db-wal" "$db-shm"
}
if [[ $PORTAL_STATUS == ok ]]; then portal_lane; fi
[[ $PORTAL_STATUS == ok ]] || log "portal: $PORTAL_STATUS"
echo "$PORTAL_STATUS" > "$RAW/portal/status"
cp "$WORK/mock.log" "$RAW/logs/mock.log" 2>/dev/null || true
cp "$WORK/nginx/error.log" "$RAW/logs/nginx-error.log" 2>/dev/null || true
cat /proc/loadavg > "$RAW/logs/loadavg-at-end.txt"
echo "$WAIT_BUDGET" > "$RAW/logs/wait-budget-left.txt"

# ------------------------------------------------------------------ 4. report

if [[ $MODE == full ]]; then OUTDIR="$BENCH/results"; else OUTDIR="$BENCH/results/quick"; fi
mkdir -p "$OUTDIR/history"
python3 "$HARNESS/report.py" --raw "$RAW" --out "$OUTDIR" --stamp "$TS"
log "report: $OUTDIR/latest.md  chart: $OUTDIR/latest.svg  raw: $OUTDIR/latest.json"

-- wrk script for the non-streaming lanes: POST a fixed JSON body, write the results as JSON.
--
-- Environment:
--   BENCH_BODY          request body (required)
--   BENCH_OUT           file to write the JSON summary to (required)
--   BENCH_MAX_REQUESTS  optional: stop after this many responses (used by the RSS soak).
--                       wrk has no request-count flag, so the thread stops its own loop and
--                       interrupts wrk's main thread (SIGINT = wrk's normal "stop and report").
-- Headers come from wrk's -H flags.

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
local out = os.getenv("BENCH_OUT")
local max = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0") or 0
local statuses = {}

if max > 0 then
  local n = 0
  function response(status, headers, body)
    n = n + 1
    statuses[status] = (statuses[status] or 0) + 1
    if n == max then
      wrk.thread:stop()
      -- $PPID of the shell spawned by os.execute is wrk itself. system() ignores SIGINT in
      -- the caller until the shell returns, hence the short delay in the background.
      os.execute("(sleep 0.1; kill -INT $PPID) >/dev/null 2>&1 &")
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local f = assert(io.open(out, "w"))
  f:write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
  f:close()
end

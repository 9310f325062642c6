#!/usr/bin/env python3
"""Small measuring tools for bench/run.sh (standard library only).

Subcommands:
  freeport                     print a free TCP port on 127.0.0.1
  wait-http URL [--timeout S]  wait until GET URL answers 200 (exit 1 on timeout)
  smoke URL --body B [-H ...]  one POST; exit 1 unless 200 with a JSON body holding --expect
  stream URL ...               sequential streaming requests: TTFB and gaps between content chunks
  send URL --n N --body B      N POSTs in sequence on one keep-alive connection; exit 1 unless all 200
  stats URL --n N --out F      time N GETs of /v1/stats, keep the reported totals
  meta --out F [...]           machine and tool facts for the report
  cpu-snap / foreign / quiet   CPU accounting: how much CPU processes outside the benchmark used
"""

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

CHUNK_RE = re.compile(rb"chunk(\d+) ")


def now_ns():
    return time.perf_counter_ns()


def parse_headers(values):
    out = []
    for h in values or []:
        name, _, value = h.partition(":")
        out.append((name.strip(), value.strip()))
    return out


# ---------------------------------------------------------------- freeport / wait / smoke


def cmd_freeport(_args):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_wait_http(args):
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(args.url, timeout=2) as r:
                if r.status == 200:
                    return 0
        except Exception:
            pass
        time.sleep(0.2)
    print(f"timed out waiting for {args.url}", file=sys.stderr)
    return 1


def cmd_smoke(args):
    req = urllib.request.Request(args.url, data=args.body.encode(), method="POST")
    for k, v in parse_headers(args.header):
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except Exception as e:  # connection refused, timeout...
        print(f"request failed: {e}")
        return 1
    text = body.decode(errors="replace")
    if status != 200 or args.expect not in text:
        print(f"HTTP {status}: {text[:400]}")
        return 1
    print(f"HTTP {status}, {len(body)} bytes")
    return 0


def cmd_send(args):
    url = urllib.parse.urlsplit(args.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    headers = dict(parse_headers(args.header))
    body = args.body.encode()
    for i in range(args.n):
        conn.request("POST", url.path, body=body, headers=headers)
        r = conn.getresponse()
        answer = r.read()
        if r.status != 200:
            print(f"request {i + 1}: HTTP {r.status}: {answer[:400].decode(errors='replace')}")
            return 1
    return 0


# ---------------------------------------------------------------- streaming probe


class ChunkedDecoder:
    """Incremental decoder of an HTTP/1.1 chunked body."""

    def __init__(self):
        self.buf = b""
        self.remaining = None  # bytes left in the current chunk, None = expecting a size line
        self.done = False

    def feed(self, data):
        self.buf += data
        out = []
        while not self.done:
            if self.remaining is None:
                eol = self.buf.find(b"\r\n")
                if eol < 0:
                    break
                size = int(self.buf[:eol].split(b";")[0], 16)
                self.buf = self.buf[eol + 2 :]
                if size == 0:
                    self.done = True
                    break
                self.remaining = size
            if self.remaining > 0:
                take = self.buf[: self.remaining]
                out.append(take)
                self.buf = self.buf[len(take) :]
                self.remaining -= len(take)
                if self.remaining > 0:
                    break
            if len(self.buf) < 2:
                break
            self.buf = self.buf[2:]  # CRLF after the chunk data
            self.remaining = None
        return b"".join(out)


def one_stream(host, port, path, headers, body, timeout):
    """Sends one streaming request on a fresh connection; returns timings in ns relative to the send."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
            f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    result = {"status": None, "ttfb_ns": None, "first_event_ns": None, "chunk_ns": {}, "events": 0,
              "bytes": 0, "total_ns": None, "error": None}
    raw = b""
    header_done = False
    decoder = None
    sse = b""
    try:
        t0 = now_ns()
        sock.sendall(request)
        while True:
            data = sock.recv(65536)
            t = now_ns() - t0
            if not data:
                break
            if result["ttfb_ns"] is None:
                result["ttfb_ns"] = t
            result["bytes"] += len(data)
            if not header_done:
                raw += data
                end = raw.find(b"\r\n\r\n")
                if end < 0:
                    continue
                header_done = True
                head_text = raw[:end].decode("latin-1")
                lines = head_text.split("\r\n")
                result["status"] = int(lines[0].split()[1])
                hdrs = {ln.split(":", 1)[0].strip().lower(): ln.split(":", 1)[1].strip()
                        for ln in lines[1:] if ":" in ln}
                if "chunked" in hdrs.get("transfer-encoding", "").lower():
                    decoder = ChunkedDecoder()
                data = raw[end + 4 :]
            payload = decoder.feed(data) if decoder else data
            sse += payload.replace(b"\r\n", b"\n")
            while True:
                cut = sse.find(b"\n\n")
                if cut < 0:
                    break
                event, sse = sse[:cut], sse[cut + 2 :]
                if not event.strip():
                    continue
                result["events"] += 1
                if result["first_event_ns"] is None:
                    result["first_event_ns"] = t
                for m in CHUNK_RE.finditer(event):
                    result["chunk_ns"].setdefault(int(m.group(1)), t)
            if decoder and decoder.done:
                break
        result["total_ns"] = now_ns() - t0
    except Exception as e:  # noqa: BLE001 - reported, not raised
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        sock.close()
    return result


def cmd_stream(args):
    u = urllib.parse.urlsplit(args.url)
    headers = parse_headers(args.header)
    body = args.body.encode()
    runs = []
    for i in range(args.warmup + args.n):
        r = one_stream(u.hostname, u.port, u.path, headers, body, args.timeout)
        if i >= args.warmup:
            runs.append(r)
        time.sleep(0.05)
    gaps_us, ttfb_us, first_event_us, problems = [], [], [], []
    for k, r in enumerate(runs):
        if r["error"] or r["status"] != 200:
            problems.append(f"request {k}: status {r['status']} {r['error'] or ''}".strip())
            continue
        ttfb_us.append(r["ttfb_ns"] / 1000)
        first_event_us.append(r["first_event_ns"] / 1000 if r["first_event_ns"] else None)
        chunks = r["chunk_ns"]
        missing = [i for i in range(args.chunks) if i not in chunks]
        if missing:
            problems.append(f"request {k}: {len(missing)} of {args.chunks} content chunks missing")
        for i in range(1, args.chunks):
            if i in chunks and i - 1 in chunks:
                gaps_us.append((chunks[i] - chunks[i - 1]) / 1000)
    out = {
        "url": args.url, "requests": args.n, "warmup": args.warmup, "ok": len(ttfb_us),
        "chunks": args.chunks, "gap_ms": args.gap_ms, "ttfb_us": ttfb_us,
        "first_event_us": first_event_us, "gaps_us": gaps_us,
        "events_per_request": [r["events"] for r in runs], "problems": problems,
    }
    with open(args.out, "w") as f:
        json.dump(out, f)
    if ttfb_us and gaps_us:
        dev = sorted(abs(g - args.gap_ms * 1000) for g in gaps_us)
        print(f"  {len(ttfb_us)}/{args.n} ok, TTFB p50 {statistics.median(ttfb_us):.0f} us, "
              f"|gap-{args.gap_ms}ms| p50 {dev[len(dev) // 2]:.0f} us max {dev[-1]:.0f} us"
              + (f", {len(problems)} problem(s): {problems[0]}" if problems else ""))
    else:
        print(f"  no usable stream: {problems[:3]}")
    return 0


# ---------------------------------------------------------------- /v1/stats timing


def cmd_stats(args):
    u = urllib.parse.urlsplit(args.url)
    times_ms, last = [], None
    for _ in range(args.n):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        t0 = now_ns()
        conn.request("GET", u.path + (f"?{u.query}" if u.query else ""))
        resp = conn.getresponse()
        data = resp.read()
        times_ms.append((now_ns() - t0) / 1e6)
        conn.close()
        if resp.status != 200:
            last = {"status": resp.status, "body": data[:500].decode(errors="replace")}
        else:
            last = json.loads(data)
    keep = {k: v for k, v in (last or {}).items() if not k.startswith("by_")}
    with open(args.out, "w") as f:
        json.dump({"times_ms": times_ms, "stats": keep}, f)
    print(f"  /v1/stats x{args.n}: p50 {statistics.median(times_ms):.1f} ms, max {max(times_ms):.1f} ms, "
          f"total_requests {keep.get('total_requests')}")
    return 0


# ---------------------------------------------------------------- CPU accounting
#
# Other people's builds and tests may run on this machine during a benchmark. A snapshot holds
# the per-CPU jiffies from /proc/stat and the CPU time of the processes in the benchmark's own
# process groups; the difference between two snapshots, less the load tool's CPU time, is the
# CPU that *other* processes used during the measurement.

HZ = os.sysconf("SC_CLK_TCK")


def snapshot(pgids):
    cpus = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu"):
                parts = line.split()
                vals = list(map(int, parts[1:9]))
                cpus[parts[0]] = [sum(vals), vals[3] + vals[4]]  # total, idle + iowait
    ours = kernel = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
        if int(fields[2]) in pgids:  # field 5 (pgrp) is the 3rd after the command name
            ours += ticks
        elif fields[1] == "2" or pid == "2":  # kernel threads (children of kthreadd)
            kernel += ticks
    return {"t": time.monotonic(), "cpus": cpus, "ours_ticks": ours, "kernel_ticks": kernel}


def foreign_pct(before, after, extra_cpu_s=0.0):
    """CPU used by user processes outside the benchmark, in % of one core (kernel threads, such as
    the ext4 journal and writeback work the gateway's SQLite writes cause, are left out)."""
    dt = after["t"] - before["t"]
    busy = sum(busy_ticks(before, after, c) for c in after["cpus"] if c != "cpu" and c in before["cpus"])
    other = (busy - (after["ours_ticks"] - before["ours_ticks"]) - kernel_ticks(before, after)
             - extra_cpu_s * HZ)
    return max(0.0, 100.0 * other / (dt * HZ)) if dt > 0 else 0.0


def busy_ticks(before, after, cpu):
    """Busy time of one CPU between two snapshots, in ticks: elapsed time minus idle and iowait.
    /proc/stat's idle time is exact on a tickless kernel, while its user/system columns are sampled
    at each tick, which overcounts timer-driven work (mock-upstream wakes on 1 ms timers); the
    per-process times it is compared with are exact as well (scaled to the scheduler's runtime)."""
    dt = after["t"] - before["t"]
    idle = after["cpus"][cpu][1] - before["cpus"][cpu][1]
    return max(0.0, dt * HZ - idle)


def kernel_ticks(before, after):
    return after.get("kernel_ticks", 0) - before.get("kernel_ticks", 0)


def kernel_pct(before, after):
    dt = after["t"] - before["t"]
    return max(0.0, 100.0 * kernel_ticks(before, after) / (dt * HZ)) if dt > 0 else 0.0


def parse_pgids(text):
    return {int(x) for x in (text or "").replace(",", " ").split() if x.strip()}


def cmd_cpu_snap(args):
    with open(args.out, "w") as f:
        json.dump(snapshot(parse_pgids(args.pgids)), f)


def cmd_foreign(args):
    before, after = load_json(args.before), load_json(args.after)
    print(f"{foreign_pct(before, after, args.extra_cpu_s):.1f} {kernel_pct(before, after):.1f}")


def cmd_quiet(args):
    """Waits (up to --max-wait s) for a 1 s window in which other processes use < --threshold % CPU."""
    pgids = parse_pgids(args.pgids)
    start = time.monotonic()
    while True:
        b = snapshot(pgids)
        time.sleep(1)
        f = foreign_pct(b, snapshot(pgids))
        waited = time.monotonic() - start
        if f < args.threshold or waited >= args.max_wait:
            print(json.dumps({"foreign_cpu_pct": round(f, 1), "waited_s": round(waited, 1),
                              "quiet": f < args.threshold}))
            return 0


def load_json(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------- machine facts


def sh(cmd):
    try:
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30)
        return (p.stdout + p.stderr).strip()
    except Exception as e:  # noqa: BLE001
        return f"unavailable ({e})"


def cmd_meta(args):
    lscpu = sh("lscpu")
    fields = {}
    for line in lscpu.splitlines():
        k, _, v = line.partition(":")
        fields[k.strip()] = v.strip()
    meta = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nproc": sh("nproc"),
        "cpu_model": fields.get("Model name", "?"),
        "lscpu": {k: fields.get(k) for k in ("Architecture", "CPU(s)", "Model name", "Thread(s) per core",
                                             "Core(s) per socket", "Hypervisor vendor", "L2 cache", "L3 cache")},
        "uname": sh("uname -srvmo"),
        "mem_total": sh("grep MemTotal /proc/meminfo"),
        "loadavg_at_start": sh("cat /proc/loadavg"),
        "rustc": sh("rustc --version"),
        "wrk": sh("wrk --version 2>&1 | head -1"),
        "nginx": sh("nginx -v 2>&1"),
        "python": sh("python3 --version"),
        "litellm": sh(f"{args.litellm_pip} show litellm 2>/dev/null | grep -i ^version") if args.litellm_pip else "n/a",
        "git_rev": sh(f"git -C {args.repo} rev-parse --short HEAD"),
        "git_dirty_files": sh(f"git -C {args.repo} status --porcelain --untracked-files=no | wc -l"),
    }
    with open(args.out, "w") as f:
        json.dump(meta, f, indent=1)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("freeport")
    w = sub.add_parser("wait-http")
    w.add_argument("url")
    w.add_argument("--timeout", type=float, default=30)
    s = sub.add_parser("smoke")
    s.add_argument("url")
    s.add_argument("--body", required=True)
    s.add_argument("-H", "--header", action="append")
    s.add_argument("--expect", default='"choices"')
    se = sub.add_parser("send")
    se.add_argument("url")
    se.add_argument("--body", required=True)
    se.add_argument("-H", "--header", action="append")
    se.add_argument("--n", type=int, default=1000)
    st = sub.add_parser("stream")
    st.add_argument("url")
    st.add_argument("--body", required=True)
    st.add_argument("-H", "--header", action="append")
    st.add_argument("--n", type=int, default=30)
    st.add_argument("--warmup", type=int, default=2)
    st.add_argument("--chunks", type=int, default=64)
    st.add_argument("--gap-ms", type=float, default=20)
    st.add_argument("--timeout", type=float, default=60)
    st.add_argument("--out", required=True)
    sa = sub.add_parser("stats")
    sa.add_argument("url")
    sa.add_argument("--n", type=int, default=10)
    sa.add_argument("--out", required=True)
    m = sub.add_parser("meta")
    m.add_argument("--out", required=True)
    m.add_argument("--repo", required=True)
    m.add_argument("--litellm-pip", default="")
    cs = sub.add_parser("cpu-snap")
    cs.add_argument("--pgids", default="")
    cs.add_argument("--out", required=True)
    fo = sub.add_parser("foreign")
    fo.add_argument("before")
    fo.add_argument("after")
    fo.add_argument("--extra-cpu-s", type=float, default=0.0)
    q = sub.add_parser("quiet")
    q.add_argument("--pgids", default="")
    q.add_argument("--threshold", type=float, default=10)
    q.add_argument("--max-wait", type=float, default=60)
    args = p.parse_args()
    handler = {"freeport": cmd_freeport, "wait-http": cmd_wait_http, "smoke": cmd_smoke, "send": cmd_send,
               "stream": cmd_stream, "stats": cmd_stats, "meta": cmd_meta,
               "cpu-snap": cmd_cpu_snap, "foreign": cmd_foreign, "quiet": cmd_quiet}[args.cmd]
    sys.exit(handler(args) or 0)


if __name__ == "__main__":
    main()

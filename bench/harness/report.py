#!/usr/bin/env python3
"""Turns the raw files of one bench/run.sh run into latest.md, latest.svg and latest.json
(plus timestamped copies under history/), and prints the key figures and PASS/MISS lines."""

import argparse
import glob
import json
import math
import os
import re
import shutil

LANES_HTTP = ["mock", "nginx", "gateway", "gateway-auto", "litellm"]
LANES_STATIC = ["static", "nginx-static", "gateway-static"]
LANES_1CORE = ["static-1core", "nginx-static-1core", "gateway-static-1core"]
LANES_EMBED = ["embed-mock", "embed-nginx", "embed-gateway"]
LANES_STREAM = ["direct-openai", "nginx-openai", "gateway-openai", "litellm-openai",
                "direct-anthropic", "gateway-anthropic", "gateway-translated"]
LANE_TITLES = {
    "mock": "mock (direct)", "nginx": "nginx → mock", "gateway": "llm-gateway → mock",
    "gateway-auto": "llm-gateway auto → mock",
    "litellm": "LiteLLM → mock", "static": "static nginx (direct)",
    "nginx-static": "nginx → static", "gateway-static": "llm-gateway → static",
    "static-1core": "static nginx (direct), 1 core", "nginx-static-1core": "nginx → static, 1 core",
    "gateway-static-1core": "llm-gateway → static, 1 core",
    "embed-mock": "embeddings, mock (direct)", "embed-nginx": "embeddings, nginx → mock",
    "embed-gateway": "embeddings, llm-gateway → mock",
    "direct-openai": "direct, OpenAI shape", "nginx-openai": "nginx, OpenAI shape",
    "gateway-openai": "llm-gateway, OpenAI shape", "litellm-openai": "LiteLLM, OpenAI shape",
    "direct-anthropic": "direct, Anthropic shape", "gateway-anthropic": "llm-gateway, Anthropic shape",
    "gateway-translated": "llm-gateway, Anthropic client → OpenAI upstream (translated)",
}
COLORS = {"mock": "#7f8c8d", "nginx": "#2e86c1", "gateway": "#e67e22", "gateway-auto": "#f4d03f",
          "litellm": "#8e44ad"}


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def cpu_busy(before, after):
    """Busy share of each CPU between two snapshots of harness/probe.py cpu-snap."""
    b, a = load(before), load(after)
    res = {}
    if not (a and b):
        return res
    hz = os.sysconf("SC_CLK_TCK")
    dt = (a["t"] - b["t"]) * hz
    for cpu, (_tot, idle) in a["cpus"].items():
        if cpu != "cpu" and cpu in b["cpus"] and dt > 0:
            # elapsed minus idle: /proc/stat's idle is exact, its busy columns are tick samples
            res[cpu] = round(max(0.0, min(100.0, 100 * (dt - (idle - b["cpus"][cpu][1])) / dt)), 1)
    return res


def load_info(prefix):
    """Other processes' CPU during a measurement (and earlier attempts at it)."""
    info = load(prefix + ".load", {}) or {}
    attempts = []
    for line in read(prefix + ".attempts").splitlines():
        try:
            attempts.append(json.loads(line).get("foreign_cpu_pct"))
        except ValueError:
            pass
    return {"foreign_cpu_pct": info.get("foreign_cpu_pct"), "kernel_threads_cpu_pct": info.get("kernel_threads_cpu_pct"),
            "attempts": attempts or None, "quiet_wait": info.get("quiet_wait")}


def parse_metrics(text):
    """The gateway's /metrics (Prometheus text): its own overhead histogram and requests by status."""
    out = {"overhead": None, "requests_by_status": {}}
    buckets, total, count = [], None, None
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            v = float(value)
        except ValueError:
            continue
        if name.startswith("llm_gateway_overhead_seconds_bucket"):
            m = re.search(r'le="([^"]+)"', name)
            if m:
                buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), v))
        elif name == "llm_gateway_overhead_seconds_sum":
            total = v
        elif name == "llm_gateway_overhead_seconds_count":
            count = v
        elif name.startswith("llm_gateway_requests_total"):
            m = re.search(r'status="([^"]+)"', name)
            key = m.group(1) if m else "?"
            out["requests_by_status"][key] = out["requests_by_status"].get(key, 0) + int(v)
    if count:
        buckets.sort()

        def upper(q):
            for le, c in buckets:
                if c >= q * count:
                    return le
            return None
        out["overhead"] = {"count": int(count), "mean_us": round(1e6 * total / count, 1),
                           "p50_upper_bound_us": None if upper(0.5) in (None, float("inf")) else round(1e6 * upper(0.5)),
                           "p99_upper_bound_us": None if upper(0.99) in (None, float("inf")) else round(1e6 * upper(0.99))}
    return out


def http_results(raw, lanes, concurrencies):
    res = {}
    for lane in lanes:
        status = read(f"{raw}/lanes/{lane}.status", "not run")
        entry = {"status": status, "by_concurrency": {}}
        for c in concurrencies:
            path = f"{raw}/http/{lane}-c{c}.json"
            d = load(path)
            if not d:
                continue
            dur = d["duration_us"] / 1e6
            lat = d["latency_us"]
            entry["by_concurrency"][str(c)] = {
                "requests": d["requests"], "duration_s": round(dur, 3),
                "rps": round(d["requests"] / dur, 1),
                "ok_rps": round((d["requests"] - d["errors"]["status"]) / dur, 1),
                "errors": d["errors"], "latency_us": lat,
                "cpu_busy_pct": cpu_busy(path + ".snap-before", path + ".snap-after"),
                "other_load": load_info(path),
            }
        res[lane] = entry
    return res


def stream_results(raw, gap_ms):
    res = {}
    for lane in LANES_STREAM:
        d = load(f"{raw}/stream/{lane}.json")
        if not d:
            continue
        gaps = d["gaps_us"]
        dev = [abs(g - gap_ms * 1000) for g in gaps]
        fe = [x for x in d["first_event_us"] if x is not None]
        res[lane] = {
            "requests": d["requests"], "ok": d["ok"], "problems": d["problems"],
            "events_per_request": sorted(set(d["events_per_request"])),
            "ttfb_us": {"p50": pct(d["ttfb_us"], 50), "p99": pct(d["ttfb_us"], 99), "max": max(d["ttfb_us"], default=None)},
            "first_event_us": {"p50": pct(fe, 50), "p99": pct(fe, 99)},
            "gap_us": {"n": len(gaps), "p50": pct(gaps, 50), "min": min(gaps, default=None), "max": max(gaps, default=None)},
            "gap_deviation_us": {"p50": pct(dev, 50), "p99": pct(dev, 99), "max": max(dev, default=None)},
            "other_load": load_info(f"{raw}/stream/{lane}.json"),
        }
    return res


def soak_results(raw, settings):
    segs = []
    for i in range(1, len(settings["soak_segments"]) + 1):
        d = load(f"{raw}/soak/segment{i}.json")
        if d:
            segs.append({"requests": d["requests"], "duration_s": round(d["duration_us"] / 1e6, 2),
                         "rps": round(d["requests"] / (d["duration_us"] / 1e6), 1),
                         "errors": d["errors"], "latency_us": d["latency_us"]})
    checkpoints = []
    for line in read(f"{raw}/soak/rss-checkpoints.tsv").splitlines()[1:]:
        parts = line.split("\t") + [""]
        label, n, kb, queue = parts[:4]
        if label.startswith("after ") and label.endswith(" requests"):
            label = f"after {int(n):,} requests"
        checkpoints.append({"label": label, "requests": int(n), "rss_kib": int(kb or 0),
                            "ledger_queue": int(float(queue)) if queue.strip() else None})
    window = dict(line.split() for line in read(f"{raw}/soak/load-window.txt").splitlines() if line.strip())
    timeline = []
    for line in read(f"{raw}/soak/rss-timeline.tsv").splitlines():
        parts = line.split("\t") + [""]
        if parts[1].strip():
            q = parts[2].strip()
            timeline.append((float(parts[0]), int(parts[1]), int(float(q)) if q else None))
    in_load = [(kb, q) for t, kb, q in timeline
               if "load-start" in window and float(window["load-start"]) <= t <= float(window.get("load-end", 1e20))]
    during = [kb for kb, _ in in_load]
    queues = [q for _, q in in_load if q is not None]
    t0 = float(window.get("load-start", timeline[0][0] if timeline else 0))
    stats = load(f"{raw}/soak/stats.json", {})
    sent = sum(s["requests"] for s in segs)
    db = {}
    for line in read(f"{raw}/soak/db-size.txt").splitlines():
        name, size = line.rsplit(" ", 1)
        db[os.path.basename(name)] = int(size)
    db_after = {}
    for line in read(f"{raw}/soak/db-size-after-stop.txt").splitlines():
        name, size = line.rsplit(" ", 1)
        db_after[os.path.basename(name)] = int(size)
    exit_info = read(f"{raw}/logs/gateway-soak.exit").split()
    return {
        "segments": segs, "completed_requests": sent,
        "in_flight_allowance": settings["soak_concurrency"] * len(segs),
        "checkpoints": checkpoints,
        "rss_during_load_kib": {"max": max(during, default=None), "min": min(during, default=None),
                                "samples": len(during)},
        "ledger_queue_during_load": {"max": max(queues, default=None), "samples": len(queues)},
        "timeline_columns": ["seconds since the load started", "rss_kib", "ledger_queue_depth"],
        "timeline": [[round(t - t0, 1), kb, q] for t, kb, q in timeline],
        "gateway_metrics": parse_metrics(read(f"{raw}/soak/metrics.txt")),
        "stats_times_ms": stats.get("times_ms", []),
        "stats_p50_ms": pct(stats.get("times_ms", []), 50), "stats_max_ms": max(stats.get("times_ms", []), default=None),
        "stats_total_requests": stats.get("stats", {}).get("total_requests"),
        "stats_failed_requests": stats.get("stats", {}).get("failed_requests"),
        "stats": stats.get("stats", {}),
        "db_bytes": db, "db_total_bytes": sum(db.values()),
        "db_bytes_after_stop": db_after, "db_total_bytes_after_stop": sum(db_after.values()),
        "other_load": load_info(f"{raw}/soak/soak"),
        "shutdown": {"exit_status": exit_info[0] if exit_info else None,
                     "ms": int(exit_info[1]) if len(exit_info) > 1 else None},
    }


def portal_results(raw, settings):
    """(p): the seeding figures, and per view its cold load, the median of the other loads and
    its API calls (bench/portal/portal_speed.mjs)."""
    views = load(f"{raw}/portal/views.json", {}) or {}
    return {"status": read(f"{raw}/portal/status", "not run") or "not run",
            "records": settings.get("portal_records"), "days": settings.get("portal_days"),
            "loads": settings.get("portal_loads"), "seed": load(f"{raw}/portal/seed.json", {}) or {},
            "chromium": read(f"{raw}/portal/chromium.version"), "settle_ms": views.get("settle_ms"),
            "views": views.get("views", []), "other_load": load_info(f"{raw}/portal/portal")}


def route_headers(path):
    """The x-route-* headers of one model-auto answer (curl -D), by lower-case name."""
    pairs = (line.split(":", 1) for line in read(path).splitlines() if ":" in line)
    return {k.strip().lower(): v.strip() for k, v in pairs}


def log_findings(raw):
    out = {}
    for name in ["gateway", "gateway-static", "gateway-soak", "gateway-portal"]:
        text = read(f"{raw}/logs/{name}.log")
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln) for ln in text.splitlines()]
        levels = {}
        samples = []
        for ln in lines:
            m = re.search(r"\b(WARN|ERROR)\b", ln)
            if m:
                levels[m.group(1)] = levels.get(m.group(1), 0) + 1
                msg = re.sub(r"^\S+\s+", "", ln)  # drop the timestamp
                if msg not in samples and len(samples) < 5:
                    samples.append(msg[:300])
        records = load(f"{raw}/logs/{name}-error-records.json")
        err_records = []
        if isinstance(records, dict):
            records = records.get("records") or records.get("data") or []
        if isinstance(records, list):
            for r in records[:5]:
                if isinstance(r, dict):
                    err_records.append({k: r.get(k) for k in ("status", "outcome", "error_kind", "error_message") if k in r})
        out[name] = {"levels": levels, "samples": samples, "error_records": err_records,
                     "exit": read(f"{raw}/logs/{name}.exit"), "crash": read(f"{raw}/lanes/{name}.crash")}
    return out


def fmt_us(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_ms(v_us):
    return "–" if v_us is None else f"{v_us / 1000:.2f}"


def fmt_pct(v):
    return "–" if v is None else f"{v:.0f}%"


def fmt_signed(v):
    return "–" if v is None else f"{v:+,.0f}"


def ratio_rows(http, base, concurrencies, proxies):
    rows = []
    nginx_key = {"mock": "nginx", "static": "nginx-static", "static-1core": "nginx-static-1core",
                 "embed-mock": "embed-nginx"}[base]
    for c in map(str, concurrencies):
        b = http.get(base, {}).get("by_concurrency", {}).get(c)
        n = http.get(nginx_key, {}).get("by_concurrency", {}).get(c)
        for lane in proxies:
            r = http.get(lane, {}).get("by_concurrency", {}).get(c)
            if not (r and b):
                continue
            rows.append({
                "lane": lane, "concurrency": int(c),
                "rps_vs_nginx": round(r["ok_rps"] / n["ok_rps"], 3) if n and n["ok_rps"] else None,
                "rps_vs_direct": round(r["ok_rps"] / b["ok_rps"], 3) if b["ok_rps"] else None,
                "added_p50_us": r["latency_us"]["p50"] - b["latency_us"]["p50"],
                "added_p99_us": r["latency_us"]["p99"] - b["latency_us"]["p99"],
                "over_nginx_p50_us": r["latency_us"]["p50"] - n["latency_us"]["p50"] if n else None,
                "over_nginx_p99_us": r["latency_us"]["p99"] - n["latency_us"]["p99"] if n else None,
            })
    return rows


def find(rows, lane, c):
    for r in rows:
        if r["lane"] == lane and r["concurrency"] == c:
            return r
    return None


def foreign(data, lane, c):
    r = data["http"].get(lane, {}).get("by_concurrency", {}).get(str(c))
    return (r or {}).get("other_load", {}).get("foreign_cpu_pct")


def disturbed_note(data, cells):
    """A note naming the cells that other processes disturbed (> the run's threshold)."""
    limit = data["settings"].get("disturbed_pct", 10)
    bad = []
    for lane, c in cells:
        f = foreign(data, lane, c)
        if f is not None and f > limit:
            bad.append(f"{lane} c={c}: {f:.0f}%")
    return ("disturbed by other processes (" + ", ".join(bad) + " of a core)") if bad else ""


def routing_profiles(data):
    """route_decision's figures by profile (the example's JSON), those that were measured."""
    return {k: v for k, v in (data.get("routing") or {}).items() if isinstance(v, dict) and v.get("p99_us") is not None}


def admission_ways(data):
    """examples/admission's figures by way of keeping the counters (off, local, redis, postgres)."""
    return {k: v for k, v in (data.get("admission") or {}).items() if isinstance(v, dict) and v.get("mean_us") is not None}


def admission_disturbed(data):
    """'; disturbed …' when other processes disturbed the (k) measurement."""
    f = (data.get("admission_load") or {}).get("foreign_cpu_pct")
    limit = data["settings"].get("disturbed_pct", 10)
    return f"; disturbed by other processes ({f:.0f}% of a core)" if f is not None and f > limit else ""


def routing_disturbed(data):
    """'; disturbed by other processes (N% of a core)' when they disturbed the (r) measurement."""
    f = (data.get("routing_load") or {}).get("foreign_cpu_pct")
    limit = data["settings"].get("disturbed_pct", 10)
    return f"; disturbed by other processes ({f:.0f}% of a core)" if f is not None and f > limit else ""


def evaluate(data):
    s = data["settings"]
    targets = []

    def add(group, name, value, ok, detail=""):
        targets.append({"group": group, "target": name, "value": value,
                        "result": "n/a" if ok is None else ("PASS" if ok else "MISS"), "detail": detail})

    def http_targets(group, rows, gw, base, nginx, suffix):
        for c in s["concurrencies"]:
            r = find(rows, gw, c)
            v = r and r["rps_vs_nginx"]
            add(group, f"gateway throughput ≥ 80% of nginx at c={c}{suffix}", "–" if v is None else f"{100 * v:.0f}%",
                None if v is None else v >= 0.8, disturbed_note(data, [(gw, c), (nginx, c)]))
        r = find(rows, gw, 1)
        add(group, f"added p50 latency at c=1 ≤ 100 µs{suffix}", "–" if not r else f"{r['added_p50_us']:+,} µs",
            None if not r else r["added_p50_us"] <= 100,
            "" if not r else "; ".join(x for x in [f"nginx adds {r['added_p50_us'] - r['over_nginx_p50_us']:+,} µs" if r["over_nginx_p50_us"] is not None else "",
                                                   disturbed_note(data, [(gw, 1), (base, 1)])] if x))
        r = find(rows, gw, 64)
        add(group, f"added p99 latency at c=64 ≤ 1 ms{suffix}", "–" if not r else f"{r['added_p99_us']:+,} µs",
            None if not r else r["added_p99_us"] <= 1000,
            "" if not r else "; ".join(x for x in [f"nginx adds {r['added_p99_us'] - r['over_nginx_p99_us']:+,} µs" if r["over_nginx_p99_us"] is not None else "",
                                                   disturbed_note(data, [(gw, 64), (base, 64)])] if x))

    T, S = "target", "supplementary"
    http_targets(T, data["ratios_mock"], "gateway", "mock", "nginx", "")
    for c in s["concurrencies"]:
        r = find(data.get("ratios_embed", []), "embed-gateway", c)
        v = r and r["rps_vs_nginx"]
        add(T, f"embeddings throughput ≥ 80% of nginx at c={c}", "–" if v is None else f"{100 * v:.0f}%",
            None if v is None else v >= 0.8,
            "; ".join(x for x in [f"p50 over nginx {fmt_signed(r['over_nginx_p50_us'])} µs" if r else "",
                                  disturbed_note(data, [("embed-gateway", c), ("embed-nginx", c)])] if x))
    for c in s["concurrencies"]:
        auto = data["http"].get("gateway-auto", {}).get("by_concurrency", {}).get(str(c))
        explicit = data["http"].get("gateway", {}).get("by_concurrency", {}).get(str(c))
        v = auto["ok_rps"] / explicit["ok_rps"] if auto and explicit and explicit["ok_rps"] else None
        add(T, f"auto/explicit throughput ≥ 0.95 at c={c}", "–" if v is None else f"{v:.3f}",
            None if v is None else v >= 0.95,
            "" if v is None else "; ".join(x for x in [
                f"{auto['ok_rps']:,.0f} vs {explicit['ok_rps']:,.0f} req/s, p50 "
                f"{auto['latency_us']['p50'] - explicit['latency_us']['p50']:+,} µs",
                disturbed_note(data, [("gateway-auto", c), ("gateway", c)])] if x))
    rt = routing_profiles(data)
    if rt:
        worst = max(rt, key=lambda k: rt[k]["p99_us"])
        add(T, "routing decision p99 ≤ 20 µs (each shipped profile, the whole catalog)", f"{rt[worst]['p99_us']:.1f} µs",
            rt[worst]["p99_us"] <= 20,
            f"slowest: {worst}; p50 {min(r['p50_us'] for r in rt.values()):.1f}–{max(r['p50_us'] for r in rt.values()):.1f} µs "
            f"over {len(rt)} profiles, every layer from the inventory on; after new live figures or signals (the "
            f"eligible candidates kept) p99 up to {max(r.get('refresh_p99_us', 0) for r in rt.values()):.1f} µs; "
            f"over a profile's prepared set (what a "
            f"request pays while providers, live figures and signals stand) p99 up to "
            f"{max(r.get('warm_p99_us', 0) for r in rt.values()):.1f} µs; with the trace (POST /v1/route) p99 up to "
            f"{max(r['explain_p99_us'] for r in rt.values()):.1f} µs" + routing_disturbed(data))
    else:
        add(T, "routing decision p99 ≤ 20 µs", "–", None, "not measured (see logs/route-decision.log)")
    adm = admission_ways(data)
    if adm and "off" in adm:
        off = adm["off"]["mean_us"]
        shared = [k for k in ("redis", "postgres") if k in adm]
        for way in ["local"] + shared:
            if way not in adm:
                continue
            added = adm[way]["mean_us"] - off
            add(T, f"admission with limits on adds ≤ 5 µs per request (counters {way})", f"{added:.2f} µs", added <= 5,
                f"mean {adm[way]['mean_us']:.2f} µs against {off:.2f} µs with no limit; p50 {adm[way]['p50_us']:.2f}, "
                f"p99 {adm[way]['p99_us']:.2f}, p99.9 {adm[way]['p999_us']:.2f} µs" + admission_disturbed(data))
        if not shared:
            add(T, "admission with shared counters (Redis, PostgreSQL)", "–", None,
                "not measured: neither store answered (see logs/admission.log)")
    else:
        add(T, "admission with limits on adds ≤ 5 µs per request", "–", None, "not measured (see logs/admission.log)")
    tr = {k: v for k, v in (data.get("translate") or {}).items() if isinstance(v, dict) and v.get("p50_ns") is not None}
    if tr:
        worst = max(tr, key=lambda k: tr[k]["p50_ns"])
        add(T, "translating one streamed event ≤ 5 µs (p50, each direction)", f"{tr[worst]['p50_ns'] / 1000:.2f} µs",
            tr[worst]["p50_ns"] <= 5000,
            "; ".join(f"{k.replace('_', ' ')}: p50 {v['p50_ns'] / 1000:.2f} µs, p99 {v['p99_ns'] / 1000:.2f} µs"
                      for k, v in tr.items()))
    else:
        add(T, "translating one streamed event ≤ 5 µs (p50)", "–", None, "not measured (see logs/build.log)")

    st = data["streaming"]
    for shape in ("openai", "anthropic"):
        g, d = st.get(f"gateway-{shape}"), st.get(f"direct-{shape}")
        name = f"streaming TTFB ≤ 1 ms over direct ({shape}, p50)"
        if g and d and g["ttfb_us"]["p50"] is not None and d["ttfb_us"]["p50"] is not None:
            diff = g["ttfb_us"]["p50"] - d["ttfb_us"]["p50"]
            add(T, name, f"{diff / 1000:+.3f} ms", diff <= 1000,
                f"p99 difference {(g['ttfb_us']['p99'] - d['ttfb_us']['p99']) / 1000:+.3f} ms")
        else:
            add(T, name, "–", None)
    for shape in ("openai", "anthropic"):
        g, d = st.get(f"gateway-{shape}"), st.get(f"direct-{shape}")
        name = f"chunk gaps preserved within 1 ms, p99 ({shape})"
        if g and d and g["gap_deviation_us"]["p99"] is not None and d["gap_deviation_us"]["p99"] is not None:
            added = g["gap_deviation_us"]["p99"] - d["gap_deviation_us"]["p99"]
            complete = not g["problems"]
            add(T, name, f"{added / 1000:+.3f} ms", added <= 1000 and complete,
                f"p99 |gap−{s['stream_gap_ms']:.0f} ms|: gateway {g['gap_deviation_us']['p99'] / 1000:.3f} ms, "
                f"direct {d['gap_deviation_us']['p99'] / 1000:.3f} ms"
                + ("" if complete else f"; {len(g['problems'])} incomplete stream(s)"))
        else:
            add(T, name, "–", None)

    soak = data["soak"]
    cps = [c for c in soak["checkpoints"] if c["label"].startswith("after")]
    if cps:
        first, last = cps[0], cps[-1]
        add(T, f"RSS ≤ 64 MiB after {first['requests']:,} requests", f"{first['rss_kib'] / 1024:.1f} MiB",
            first["rss_kib"] <= 64 * 1024)
        # RSS under load swings with the ledger's queue (records waiting for the next batch), so
        # single readings at the checkpoints differ by a few MiB either way. Growth is judged on
        # the peaks: the highest reading in the second half of the load against the first half's.
        load_s = sum(seg.get("duration_s") or 0 for seg in soak.get("segments", []))
        during = [(t, kib) for t, kib, *_ in soak.get("timeline", []) if kib and 0 <= t <= load_s]
        early = [kib for t, kib in during if t <= load_s / 2]
        late = [kib for t, kib in during if t > load_s / 2]
        growth = (max(late) - max(early)) / max(early) if early and late else None
        add(T, f"RSS not growing from {first['requests']:,} to {last['requests']:,} requests "
               "(peak of the load's second half ≤ +10% over its first half's)",
            "–" if growth is None else f"{100 * growth:+.1f}%", None if growth is None else growth <= 0.10,
            ("–" if growth is None else f"peaks {max(early) / 1024:.1f} → {max(late) / 1024:.1f} MiB; ")
            + "at the checkpoints " + " → ".join(f"{c['rss_kib'] / 1024:.1f}" for c in cps) + " MiB")
        # The peak itself: a ledger that falls behind under full load holds its queue in memory
        # (the run on d302dae peaked at 127 MiB with 54k records queued) while the checkpoint
        # after 100k requests and the growth check can still pass.
        queue_max = max((q for _, _, q, *_ in soak.get("timeline", []) if q is not None), default=None)
        add(T, f"RSS ≤ 64 MiB throughout the {last['requests']:,}-request load (highest 1 s reading)",
            f"{max(kib for _, kib in during) / 1024:.1f} MiB" if during else "–",
            None if not during else max(kib for _, kib in during) <= 64 * 1024,
            "" if queue_max is None else f"ledger queue at most {queue_max:,.0f} records")
    else:
        add(T, "RSS ≤ 64 MiB after 100k requests", "–", None)
    san = data.get("sanitizer") or {}
    if san.get("p50_us") is not None:
        add(T, f"sanitizer scans a {san['bytes'] / 1000:.0f} KB prompt in under 1 ms (p50)", f"{san['p50_us']:.0f} µs",
            san["p50_us"] < 1000, f"p99 {san['p99_us']:.0f} µs, {san['mb_per_s']:.0f} MB/s")
    else:
        add(T, "sanitizer scans a 100 KB prompt in under 1 ms", "–", None)
    if soak["stats_max_ms"] is not None:
        add(T, f"/v1/stats under 200 ms over {soak['stats_total_requests'] or 0:,} records (max of {len(soak['stats_times_ms'])} calls)",
            f"{soak['stats_max_ms']:.1f} ms", soak["stats_max_ms"] < 200, f"p50 {soak['stats_p50_ms']:.1f} ms")
    else:
        add(T, "/v1/stats under 200 ms", "–", None)

    po = data["portal"]
    records = po["seed"].get("records") or po["records"] or 0
    name = f"portal overview rendered within 1 s with {records:,} records (median of {po['loads']} loads in Chromium)"
    ov = next((v for v in po["views"] if v["view"] == "overview"), None)
    if ov and ov["median_ms"] is not None and not ov["error"]:
        add(T, name, f"{ov['median_ms']:,} ms", ov["median_ms"] <= 1000,
            f"cold first load {ov['cold_ms']:,} ms; {ov['api_calls']} API calls; slowest view: "
            + max(((v["view"], v["median_ms"]) for v in po["views"] if v["median_ms"] is not None),
                  key=lambda x: x[1], default=("–", 0))[0])
    else:
        add(T, name, "–", None, po["status"] if po["status"] != "ok" else (ov or {}).get("error") or "overview not measured")

    tr = soak["stats_total_requests"]
    if tr is not None:
        lo, hi = soak["completed_requests"], soak["completed_requests"] + soak["in_flight_allowance"]
        add(S, "ledger total_requests ≈ requests sent", f"{tr:,} vs {lo:,} completed", lo <= tr <= hi,
            f"expected {lo:,}–{hi:,}: requests still in flight when wrk stops a segment are recorded too")
    errs = []
    for lane in ("gateway", "gateway-auto", "gateway-static", "gateway-static-1core"):
        for c, r in data["http"].get(lane, {}).get("by_concurrency", {}).items():
            e = {k: v for k, v in r["errors"].items() if v}
            if e:
                errs.append(f"{lane} c={c}: {e}")
    for i, seg in enumerate(soak["segments"], 1):
        e = {k: v for k, v in seg["errors"].items() if v}
        if e:
            errs.append(f"soak segment {i}: {e}")
    add(S, "gateway answered every request with 200 (all lanes and the soak)", "yes" if not errs else "no", not errs,
        "; ".join(errs))
    http_targets(S, data["ratios_static"], "gateway-static", "static", "nginx-static", " [timer-free upstream]")
    r = find(data["ratios_1core"], "gateway-static-1core", 1)
    add(S, "added p50 latency at c=1 ≤ 100 µs [timer-free upstream, all on one core]",
        "–" if not r else f"{r['added_p50_us']:+,} µs", None if not r else r["added_p50_us"] <= 100,
        "" if not r else "; ".join(x for x in [
            f"nginx adds {r['added_p50_us'] - r['over_nginx_p50_us']:+,} µs" if r["over_nginx_p50_us"] is not None else "",
            disturbed_note(data, [("gateway-static-1core", 1), ("static-1core", 1)])] if x))
    return targets


# ---------------------------------------------------------------- SVG


def svg_bars(out, x0, y0, pw, ph, title, groups, series, value_of, log_scale=False, label_fmt=None):
    """One grouped bar panel. series: [(name, color, opacity)]; value_of(group, name) -> number or None."""
    out.append(f'<text x="{x0}" y="{y0 - 12}" font-size="13" font-weight="bold">{esc(title)}</text>')
    vals = [value_of(g, n) for g in groups for n, _, _ in series]
    vals = [abs(v) for v in vals if v is not None]
    if log_scale:
        top = 10 ** max(1, math.ceil(math.log10(max(vals + [10]))))
        decades = int(round(math.log10(top)))
        scale = lambda v: ph * math.log10(max(v, 1)) / decades  # noqa: E731
        for d in range(decades + 1):
            y = y0 + ph - ph * d / decades
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + pw}" y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{x0 - 5}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#555">{10 ** d:,}</text>')
    else:
        vmax = max(vals + [1]) * 1.15
        step = nice_step(vmax / 5)
        scale = lambda v: ph * max(v, 0) / vmax  # noqa: E731
        v = 0
        while v <= vmax:
            y = y0 + ph - ph * v / vmax
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + pw}" y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{x0 - 5}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#555">{short(v)}</text>')
            v += step
    gw = pw / len(groups)
    bw = (gw - 24) / len(series)
    for gi, g in enumerate(groups):
        gx = x0 + gi * gw + 12
        out.append(f'<text x="{gx + (gw - 24) / 2:.1f}" y="{y0 + ph + 15}" text-anchor="middle" font-size="11">c = {g}</text>')
        for si, (name, color, opacity) in enumerate(series):
            v = value_of(g, name)
            bx = gx + si * bw
            if v is None:
                out.append(f'<text x="{bx + bw / 2:.1f}" y="{y0 + ph - 3}" text-anchor="middle" font-size="8" fill="#999">n/a</text>')
                continue
            h = scale(v)
            out.append(f'<rect x="{bx + 1.5:.1f}" y="{y0 + ph - h:.1f}" width="{max(bw - 3, 1):.1f}" height="{max(h, 1):.1f}" '
                       f'fill="{color}" fill-opacity="{opacity}" stroke="{color}" stroke-width="0.6"/>')
            out.append(f'<text x="{bx + bw / 2:.1f}" y="{y0 + ph - h - 3:.1f}" text-anchor="middle" font-size="8">'
                       f'{esc(label_fmt(v) if label_fmt else short(v))}</text>')
    out.append(f'<line x1="{x0}" y1="{y0 + ph}" x2="{x0 + pw}" y2="{y0 + ph}" stroke="#333"/>')


def load_git_rev(data):
    return data["build_note"].split(";")[0].replace(" at build time", "").split(" plus")[0].replace("commit ", "")


def svg_chart(data):
    s = data["settings"]
    http = data["http"]
    concs = [str(c) for c in s["concurrencies"]]
    W, H = 1120, 760
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">llm-gateway benchmark — '
           f'{esc(data["meta"].get("date_utc", ""))}, {esc(s["mode"])} run, {esc(data["meta"].get("nproc", "?"))} cores, '
           f'commit {esc((load_git_rev(data)))}</text>']

    def rps_of(g, n):
        return http.get(n, {}).get("by_concurrency", {}).get(g, {}).get("ok_rps")

    lanes_a = [(l, COLORS[l], 1) for l in LANES_HTTP]
    svg_bars(out, 70, 70, 470, 250, "(a) requests/s — upstream: mock", concs, lanes_a, rps_of)
    static_colors = {"static": COLORS["mock"], "nginx-static": COLORS["nginx"], "gateway-static": COLORS["gateway"]}
    lanes_b = [(l, static_colors[l], 1) for l in LANES_STATIC]
    svg_bars(out, 620, 70, 470, 250, "(a2) requests/s — upstream: static nginx (no timer)", concs, lanes_b, rps_of)

    def added(rows):
        def f(g, key):
            lane, p = key.rsplit(":", 1)
            r = find(rows, lane, int(g))
            return None if r is None else r[f"added_{p}_us"]
        return f

    def signed(v):
        return f"{v:+,}"

    ser_a = []
    for l in ("nginx", "gateway", "gateway-auto", "litellm"):
        ser_a += [(f"{l}:p50", COLORS[l], 1), (f"{l}:p99", COLORS[l], 0.35)]
    svg_bars(out, 70, 400, 470, 250, "(a) added latency over the mock, µs (log; p50 solid, p99 light)", concs, ser_a,
             added(data["ratios_mock"]), log_scale=True, label_fmt=signed)
    ser_b = []
    for l in ("nginx-static", "gateway-static"):
        ser_b += [(f"{l}:p50", static_colors[l], 1), (f"{l}:p99", static_colors[l], 0.35)]
    svg_bars(out, 620, 400, 470, 250, "(a2) added latency over the static upstream, µs (log)", concs, ser_b,
             added(data["ratios_static"]), log_scale=True, label_fmt=signed)

    lx, ly = 70, H - 50
    for i, (lane, title) in enumerate([("mock", "direct (mock / static)"), ("nginx", "nginx reverse proxy"),
                                       ("gateway", "llm-gateway"), ("gateway-auto", "llm-gateway, model auto"),
                                       ("litellm", "LiteLLM proxy")]):
        x = lx + i * 205
        out.append(f'<rect x="{x}" y="{ly - 10}" width="14" height="14" fill="{COLORS[lane]}"/>')
        measured = bool(http.get(lane, {}).get("by_concurrency"))
        out.append(f'<text x="{x + 20}" y="{ly + 2}">{esc(title + ("" if measured else " (not measured)"))}</text>')
    out.append(f'<text x="{lx}" y="{H - 18}" font-size="10" fill="#555">Proxy under test on CPU {s["proxy_cpu"]}; '
               f'upstream and wrk on CPU {s["load_cpu"]}; llm-gateway workers = {s["gateway_workers"]}. '
               'Labels: requests/s, or added µs (signed; a negative difference is drawn as a stub). '
               'Numbers: latest.json / latest.md.</text>')
    out.append("</svg>")
    return "\n".join(out)


def esc(t):
    """For SVG text."""
    return str(t).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md(t):
    """For a Markdown table cell."""
    return str(t).replace("|", "\\|").replace("\n", " ")


def short(v):
    return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}"


def nice_step(x):
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= x:
            return m * e
    return 10 * e


# ---------------------------------------------------------------- Markdown


def markdown(data):
    s, m = data["settings"], data["meta"]
    L = []
    L.append("# llm-gateway benchmark")
    L.append("")
    L.append(f"Run `{s['timestamp']}` ({s['mode']} mode), produced by `bench/run.sh`"
             + (" with `BENCH_QUICK=1` — short lanes, for development only" if s["mode"] == "quick" else "") + ".")
    L.append("")
    L.append("## Machine and tools")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    for k, v in [("date (UTC)", m.get("date_utc")), ("nproc", m.get("nproc")), ("CPU", m.get("cpu_model")),
                 ("lscpu", ", ".join(f"{k2}: {v2}" for k2, v2 in m.get("lscpu", {}).items() if v2)),
                 ("memory", m.get("mem_total")), ("kernel (uname -srvmo)", m.get("uname")),
                 ("load average at start / end", f"{m.get('loadavg_at_start')} / {data.get('loadavg_end')}"),
                 ("rustc", m.get("rustc")), ("load tool", f"{m.get('wrk')} — {s['load_tool']}"),
                 ("nginx", m.get("nginx")),
                 ("LiteLLM", f"{m.get('litellm')} (proxy ran)" if data["litellm_status"] == "ok"
                  else f"litellm[proxy]=={s.get('litellm_version')}: {data['litellm_status']}"),
                 ("python (stream client)", m.get("python")),
                 ("llm-gateway measured", data["build_note"])]:
        L.append(f"| {k} | {md(v)} |")
    L.append("")
    L.append("**CPU placement** (taskset): the proxy under test (llm-gateway, nginx or LiteLLM, each alone while "
             f"measured) on CPU {s['proxy_cpu']}; the mock upstream (`--workers {s['mock_workers']}`), the load "
             f"generator (`wrk -t1`) and the streaming client on CPU {s['load_cpu']}. llm-gateway runs with "
             f"`[server] workers = {s['gateway_workers']}` (one core), nginx with `worker_processes 1`, LiteLLM "
             "with its default single worker. With two cores the direct lanes have CPU 1 for mock + wrk and leave CPU 0 "
             "idle, and every proxied lane shares CPU 1 between mock and wrk: the busy columns show which core was saturated.")
    L.append("")
    L.append(f"Non-streaming lanes: {s['duration_s']} s per cell after a {s['warmup_s']} s warm-up, body "
             "`{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello, how are you today?\"}]}`, "
             "keep-alive connections, latency measured by wrk from request write to response end. The lane "
             "*llm-gateway, model auto* sends the same body with `\"model\":\"auto\"`: the Router picks the model.")
    L.append("")

    L.append("## Targets")
    L.append("")
    L.append("As specified (upstream: mock-upstream; CPU placement as above):")
    L.append("")
    L.append("| target | measured | result | detail |")
    L.append("|---|---|---|---|")
    for t in data["targets"]:
        if t["group"] == "target":
            L.append(f"| {md(t['target'])} | {md(t['value'])} | **{t['result']}** | {md(t['detail'])} |")
    L.append("")
    L.append("Supplementary checks (same run; see (a2), (a3) and (c) for why they are here):")
    L.append("")
    L.append("| check | measured | result | detail |")
    L.append("|---|---|---|---|")
    for t in data["targets"]:
        if t["group"] != "target":
            L.append(f"| {md(t['target'])} | {md(t['value'])} | {t['result']} | {md(t['detail'])} |")
    L.append("")

    def http_table(title, lanes, rows, note):
        L.append(title)
        L.append("")
        if note:
            L.append(note)
            L.append("")
        L.append("| lane | c | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | errors | CPU0 busy | CPU1 busy | other processes |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
        for lane in lanes:
            e = data["http"].get(lane, {})
            if not e.get("by_concurrency"):
                L.append(f"| {LANE_TITLES[lane]} | – | not measured: {md(e.get('status', 'not run'))} | | | | | | | | | |")
                continue
            for c, r in e["by_concurrency"].items():
                lat = r["latency_us"]
                errs = ", ".join(f"{k} {v}" for k, v in r["errors"].items() if v) or "0"
                cpu = r["cpu_busy_pct"]
                ol = r["other_load"]
                other = "–" if ol["foreign_cpu_pct"] is None else f"{ol['foreign_cpu_pct']:.0f}%"
                if ol.get("kernel_threads_cpu_pct") is not None:
                    other += f" (kernel {ol['kernel_threads_cpu_pct']:.0f}%)"
                if ol["attempts"] and len(ol["attempts"]) > 1:
                    other += f" (attempts: {', '.join(f'{x:.0f}%' for x in ol['attempts'])})"
                L.append(f"| {LANE_TITLES[lane]} | {c} | {r['ok_rps']:,.0f} | {fmt_us(lat['p50'])} | {fmt_us(lat['p90'])} | "
                         f"{fmt_us(lat['p99'])} | {fmt_us(lat['p999'])} | {fmt_us(lat['max'])} | {errs} | "
                         f"{cpu.get('cpu0', '–')}% | {cpu.get('cpu1', '–')}% | {other} |")
        L.append("")
        L.append("| proxy | c | req/s vs nginx | req/s vs direct | added p50 µs | added p99 µs | p50 over nginx µs | p99 over nginx µs |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            vs_nginx = "–" if r["rps_vs_nginx"] is None else f"{100 * r['rps_vs_nginx']:.0f}%"
            vs_direct = "–" if r["rps_vs_direct"] is None else f"{100 * r['rps_vs_direct']:.0f}%"
            L.append(f"| {LANE_TITLES[r['lane']]} | {r['concurrency']} | {vs_nginx} | {vs_direct} | "
                     f"{fmt_signed(r['added_p50_us'])} | {fmt_signed(r['added_p99_us'])} | "
                     f"{fmt_signed(r['over_nginx_p50_us'])} | {fmt_signed(r['over_nginx_p99_us'])} |")
        L.append("")

    L.append("Columns: *added* = the proxied lane's percentile minus the direct lane's at the same concurrency, "
             "*over nginx* = minus nginx's (differences of percentiles, not per-request measures); *CPU busy* from "
             "/proc/stat over the measurement; *other processes* = CPU (in % of one core) used by processes that are "
             "not part of the benchmark during the measurement — other people's builds on a shared machine. A cell "
             f"above {s.get('disturbed_pct', 10)}% is measured again (up to {s.get('attempts', 3)} attempts, after "
             "waiting for a quiet second), and the last attempt is kept.")
    L.append("")
    ar = data.get("auto_route") or {}
    http_table("## (a) Non-streaming throughput and latency — upstream: mock-upstream", LANES_HTTP, data["ratios_mock"],
               "*llm-gateway, model auto*: a second gateway of the lane above's config (a ledger of its own; the two "
               "lanes alternate concurrency by concurrency), the same headers, the body "
               "with `\"model\":\"auto\"` instead of `gpt-4o`, so each request goes through the Router "
               "(`[routing] default_profile`, one decision per request) before it is forwarded"
               + (f"; it was routed by profile `{md(ar.get('x-route-profile', '?'))}` to "
                  f"`{md(ar.get('x-route-model', '?'))}` (the answer's `x-route-*` headers)." if ar else "."))
    http_table("## (a2) Supplementary: timer-free upstream (static nginx answer)", LANES_STATIC, data["ratios_static"],
               "mock-upstream's POST handlers always await a tokio timer (even with `x-mock-delay-ms: 0`), and tokio "
               "rounds timers up to its next 1 ms tick: the mock's latency is quantized to ~1 ms (its GET /v1/models, "
               "with no timer, answers in ~80 µs), so at c=1 the client loop locks onto that tick, and its CPU cost "
               "caps the proxied lanes' throughput. Here a second nginx (`worker_processes 1`, on CPU 1 with wrk) "
               "answers `POST /v1/chat/completions` with the mock's own JSON body and no timer; nginx → static and "
               "llm-gateway → static are configured as in (a) but pointed at it.")
    http_table("## (a3) Supplementary: c=1 with everything on one core", LANES_1CORE, data["ratios_1core"],
               "On this virtual machine every hop between the two vCPUs costs tens of µs (the sender's wake-up of "
               "the other, idle vCPU), and a proxied request makes four such hops where the direct one makes none; "
               "at c=1 the pinned lanes mostly measure that. Here nginx and the gateway of (a2) are moved (taskset) "
               f"onto CPU {s['load_cpu']} with the static upstream and wrk: with no cross-core hop, the added latency "
               "is the proxy's own processing time per request.")
    http_table("## (e) Embeddings — upstream: mock-upstream", LANES_EMBED, data["ratios_embed"],
               "`POST /v1/embeddings` with two inputs and `dimensions: 64` (the mock answers 64 floats per input, "
               "about 1 KB of JSON), direct, through nginx and through the gateway of (a): metered from "
               "`usage.prompt_tokens`, priced from the text-embedding-3-small card, the inputs scanned by the "
               "sanitizer. Placement as in (a).")

    st = data["streaming"]
    L.append("## (b) Streaming — time to first byte and gaps between chunks")
    L.append("")
    L.append(f"{s['stream_requests']} sequential requests per lane (after 2 warm-ups), each on a new connection, "
             f"`x-mock-chunks: {s['stream_chunks']}`, `x-mock-chunk-delay-ms: {s['stream_gap_ms']:.0f}`. The client "
             "(harness/probe.py, raw socket, TCP_NODELAY, `time.perf_counter_ns`) stamps the recv that brings each "
             "byte: TTFB = request written → first response byte; a gap = arrival of content chunk i → chunk i+1 "
             "(chunks identified by their text `chunkN `, so events a proxy adds, drops or merges do not count as "
             "chunks). OpenAI body: `stream: true` with `stream_options.include_usage` (so the gateway passes the "
             "same events as the mock sends); Anthropic body: "
             "`{\"model\":\"claude-sonnet-4-20250514\",\"max_tokens\":64,\"stream\":true,...}`.")
    L.append("")
    L.append("| lane | ok | TTFB p50 ms | TTFB p99 ms | first event p50 ms | gap p50 ms | gap min–max ms | "
             "\\|gap−20 ms\\| p50 ms | p99 ms | max ms | events/request | problems | other processes |")
    L.append("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|---:|")
    for lane in LANES_STREAM:
        r = st.get(lane)
        if not r:
            status = data["litellm_status"] if lane.startswith("litellm") else "not run"
            L.append(f"| {LANE_TITLES[lane]} | – | not measured: {md(status)} | | | | | | | | | | |")
            continue
        g, d = r["gap_us"], r["gap_deviation_us"]
        L.append(f"| {LANE_TITLES[lane]} | {r['ok']}/{r['requests']} | {fmt_ms(r['ttfb_us']['p50'])} | {fmt_ms(r['ttfb_us']['p99'])} | "
                 f"{fmt_ms(r['first_event_us']['p50'])} | {fmt_ms(g['p50'])} | {fmt_ms(g['min'])}–{fmt_ms(g['max'])} | "
                 f"{fmt_ms(d['p50'])} | {fmt_ms(d['p99'])} | {fmt_ms(d['max'])} | {r['events_per_request']} | "
                 f"{md('; '.join(r['problems'][:3])) or 'none'} | {fmt_pct(r['other_load']['foreign_cpu_pct'])} |")
    L.append("")
    L.append("| comparison | TTFB p50 diff ms | TTFB p99 diff ms | \\|gap−20 ms\\| p99 diff ms | \\|gap−20 ms\\| max diff ms |")
    L.append("|---|---:|---:|---:|---:|")
    for a, b in [("gateway-openai", "direct-openai"), ("gateway-anthropic", "direct-anthropic"),
                 ("gateway-translated", "direct-openai"), ("gateway-translated", "gateway-openai"),
                 ("nginx-openai", "direct-openai"), ("litellm-openai", "direct-openai")]:
        if a in st and b in st:
            x, y = st[a], st[b]
            L.append(f"| {LANE_TITLES[a]} − {LANE_TITLES[b]} | {(x['ttfb_us']['p50'] - y['ttfb_us']['p50']) / 1000:+.3f} | "
                     f"{(x['ttfb_us']['p99'] - y['ttfb_us']['p99']) / 1000:+.3f} | "
                     f"{(x['gap_deviation_us']['p99'] - y['gap_deviation_us']['p99']) / 1000:+.3f} | "
                     f"{(x['gap_deviation_us']['max'] - y['gap_deviation_us']['max']) / 1000:+.3f} |")
    L.append("")
    L.append("The mock's own gaps are not exactly 20 ms: it sleeps 20 ms after writing each event and tokio rounds "
             "the deadline up to its 1 ms tick, so the direct lanes show the upstream's own deviation; the target "
             "compares the gateway's deviation with the direct lane's.")
    L.append("")

    so = data["soak"]
    L.append("## (c) Memory over a long run, the ledger, /v1/stats")
    L.append("")
    L.append(f"A fresh llm-gateway (same config, empty ledger) on CPU {s['proxy_cpu']}; wrk at concurrency "
             f"{s['soak_concurrency']} in {len(so['segments'])} segments of {', '.join(f'{n:,}' for n in s['soak_segments'])} "
             "requests (each segment stops after that many responses); RSS = VmRSS from /proc/<pid>/status.")
    L.append("")
    L.append("| when | requests so far | RSS MiB | ledger queue depth |")
    L.append("|---|---:|---:|---:|")
    for c in so["checkpoints"]:
        q = "–" if c["ledger_queue"] is None else f"{c['ledger_queue']:,}"
        L.append(f"| {md(c['label'])} | {c['requests']:,} | {c['rss_kib'] / 1024:.1f} | {q} |")
    dl, dq = so["rss_during_load_kib"], so["ledger_queue_during_load"]
    if dl["max"]:
        qmax = "–" if dq["max"] is None else f"{dq['max']:,}"
        L.append(f"| during the load (1 s samples, n={dl['samples']}) | – | min {dl['min'] / 1024:.1f}, "
                 f"max {dl['max'] / 1024:.1f} | max {qmax} |")
    L.append("")
    L.append("RSS and ledger queue depth (records received but not yet written; `llm_gateway_ledger_queue_depth` "
             "from the gateway's /metrics), every 5 s of the soak:")
    L.append("")
    L.append("| s | " + " | ".join(f"{t:.0f}" for t, _, _ in so["timeline"][::5] if t >= 0) + " |")
    L.append("|---|" + "---:|" * len([1 for t, _, _ in so["timeline"][::5] if t >= 0]))
    L.append("| RSS MiB | " + " | ".join(f"{kb / 1024:.0f}" for t, kb, _ in so["timeline"][::5] if t >= 0) + " |")
    L.append("| queue | " + " | ".join("–" if q is None else f"{q:,}" for t, _, q in so["timeline"][::5] if t >= 0) + " |")
    L.append("")
    L.append("| segment | requests | seconds | req/s | p50 µs | p99 µs | errors |")
    L.append("|---:|---:|---:|---:|---:|---:|---|")
    for i, g in enumerate(so["segments"], 1):
        errs = ", ".join(f"{k} {v}" for k, v in g["errors"].items() if v) or "0"
        L.append(f"| {i} | {g['requests']:,} | {g['duration_s']} | {g['rps']:,.0f} | {fmt_us(g['latency_us']['p50'])} | "
                 f"{fmt_us(g['latency_us']['p99'])} | {errs} |")
    L.append("")
    times = so["stats_times_ms"]
    L.append(f"- `GET /v1/stats` ×{len(times)} (1 s after the ledger's last batch was due): "
             + (f"p50 **{so['stats_p50_ms']:.1f} ms**, max **{so['stats_max_ms']:.1f} ms** "
                f"(all: {', '.join(f'{t:.1f}' for t in times)})" if times else "not measured"))
    L.append(f"- `total_requests` reported: **{so['stats_total_requests'] if so['stats_total_requests'] is not None else '–'}**"
             f" (failed: {so['stats_failed_requests']}); responses completed by wrk: {so['completed_requests']:,}; "
             f"up to {s['soak_concurrency']} requests per segment were still in flight when wrk stopped, and the "
             "gateway records those too.")
    L.append(f"- SQLite ledger: {', '.join(f'{k} {v / 2**20:.1f} MiB' for k, v in so['db_bytes'].items()) or '–'} "
             f"(total {so['db_total_bytes'] / 2**20:.1f} MiB; after shutdown "
             f"{so['db_total_bytes_after_stop'] / 2**20:.1f} MiB).")
    gm = so["gateway_metrics"]
    if gm["overhead"]:
        o = gm["overhead"]
        L.append(f"- The gateway's own overhead histogram (`llm_gateway_overhead_seconds` on /metrics: time in the "
                 f"gateway excluding the wait for the upstream), over {o['count']:,} requests of this gateway: mean "
                 f"**{o['mean_us']:,.0f} µs**, p50 ≤ {o['p50_upper_bound_us']} µs, p99 ≤ {o['p99_upper_bound_us']} µs "
                 "(bucket bounds).")
    if gm["requests_by_status"]:
        L.append(f"- Requests by HTTP status (`llm_gateway_requests_total`): {md(gm['requests_by_status'])}.")
    L.append(f"- Other processes used {fmt_pct(so['other_load']['foreign_cpu_pct'])} of a core during the soak "
             f"(kernel threads: {fmt_pct(so['other_load']['kernel_threads_cpu_pct'])}).")
    L.append(f"- Shutdown on SIGTERM after the soak: exit status {so['shutdown']['exit_status']} in {so['shutdown']['ms']} ms.")
    L.append("")

    san = data.get("sanitizer") or {}
    L.append("## (d) The sanitizer alone")
    L.append("")
    if san.get("p50_us") is not None:
        L.append(f"`cargo run --release --example sanitizer_throughput` on CPU 0: a {san['bytes']:,}-byte JSON prompt "
                 f"(prose, code, logs; findings {san['findings']}), every pattern on, PII redacted: "
                 f"p50 **{san['p50_us']:.0f} µs**, p99 {san['p99_us']:.0f} µs, **{san['mb_per_s']:.0f} MB/s**.")
    else:
        L.append("Not measured (the example failed; see logs/build.log).")
    L.append("")

    adm = admission_ways(data)
    L.append("## (k) Admission with limits on")
    L.append("")
    if adm:
        L.append(f"`examples/admission.rs` (release build) on CPU 0, before the (a) lanes: the admission stage "
                 "(`pipeline::admission::admit_asker`: the plan's price, then the key's budget of 1,000 USD a day, "
                 "600,000 requests and 10^9 tokens a minute) and the settle at the request's end, "
                 f"{data['admission'].get('requests', 0):,} requests per way of keeping the counters, each timed on "
                 "its own. *off*: no limit configured; *local*: this instance's counters; *redis*, *postgres*: "
                 "shared with every instance, leased 5% of a limit at a time, the next slice in the background "
                 "(p99.9 and max show the requests that waited on a lease).")
        L.append("")
        L.append("| counters | p50 µs | p99 µs | p99.9 µs | max µs | mean µs |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for way, r in adm.items():
            L.append(f"| {way} | {r['p50_us']:.2f} | {r['p99_us']:.2f} | {r['p999_us']:.2f} | {r['max_us']:.0f} | **{r['mean_us']:.2f}** |")
    else:
        L.append("Not measured (see logs/admission.log).")
    L.append("")

    rt = routing_profiles(data)
    L.append("## (r) The router: one routing decision")
    L.append("")
    if rt:
        first = next(iter(rt.values()))
        L.append(f"`examples/route_decision.rs` (release build) on CPU 0, before the (a) lanes: `Routing::route` (the five layers) over an "
                 f"inventory of {first['inventory']} models — providers openai, anthropic, an azure_openai deployment "
                 "`gpt-4o` and a local server that reported every local model of the catalog and a few without a card — "
                 "for the chat body of (a) with `model: auto` (OpenAI API). Each decision timed on its own "
                 f"(`Instant`): {first['decisions']:,} per profile after a warm-up with `explain: false`, each over "
                 "a registry snapshot the one before did not see, so that every layer runs from the inventory on "
                 "(what the first request after the providers, the live figures or the signals change pays); "
                 f"*warm*: {first['decisions']:,} over the profile's prepared set (what every other `model: auto` "
                 f"request pays: capabilities, size, breakers, scores, ranking); {first['explained']:,} with "
                 "`explain: true` (the layer-by-layer trace `POST /v1/route` returns). *candidates* = the models "
                 "left to score after layers 2–3. Other "
                 f"processes used {fmt_pct(data['routing_load']['foreign_cpu_pct'])} of a core meanwhile"
                 + (f" (attempts: {', '.join(f'{x:.0f}%' for x in data['routing_load']['attempts'])})"
                    if len(data["routing_load"]["attempts"] or []) > 1 else "") + ".")
        L.append("")
        L.append("| profile | candidates | primary | p50 µs | p99 µs | mean µs | warm p50 µs | warm p99 µs | explain p50 µs | explain p99 µs |")
        L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for profile, r in rt.items():
            L.append(f"| {md(profile)} | {r['candidates']} | {md(r.get('primary', ''))} | {r['p50_us']:.1f} | "
                     f"**{r['p99_us']:.1f}** | {r['mean_us']:.1f} | {r.get('warm_p50_us', float('nan')):.1f} | "
                     f"{r.get('warm_p99_us', float('nan')):.1f} | {r['explain_p50_us']:.1f} | {r['explain_p99_us']:.1f} |")
    else:
        L.append("Not measured (the example failed; see logs/route-decision.log).")
    L.append("")

    po = data["portal"]
    L.append("## (p) The portal over a large ledger")
    L.append("")
    if po["views"]:
        sd = po["seed"]
        L.append(f"`examples/seed_ledger.rs` (release build, CPU 0) wrote **{sd.get('records', 0):,} records** over the last "
                 f"{sd.get('days')} days through the ledger's own batch writes (`ledger::store::write_batch`, batches of "
                 f"2,000: the rollups and projects as the gateway writes them) in {sd.get('seconds')} s "
                 f"({sd.get('records_per_s', 0):,.0f} records/s): {sd.get('rollup_rows', 0):,} hourly rollup rows, "
                 f"{sd.get('attempt_rows', 0):,} attempt rows, {sd.get('db_bytes', 0) / 2**20:,.0f} MiB of SQLite. "
                 "Five key labels (one of them no virtual key) with their projects, sources and models (8 models over "
                 "openai, azure, anthropic and local), busier by day; ~3% mitigated by failover, ~3% errors, 2% with "
                 "sanitizer findings"
                 + (" (a smaller ledger than the full run's 1,000,000 records)" if (sd.get("records") or 0) < 1_000_000 else "") + ".")
        L.append("")
        L.append(f"A fresh gateway (the lanes' config) on that ledger, on CPU 0; {md(po['chromium'] or 'chromium')} headless "
                 f"(playwright-core, a fresh profile) with node on CPU 1. Each view of the portal's navigation is loaded "
                 f"{po['loads'] + 1} times, each a full page load from `about:blank`, timed from the navigation's start "
                 "to the view's rendered mark (`document.body.dataset.ready`); *cold* is the first load of the view "
                 f"(for the first view, the browser's first page too), *median* that of the {po['loads']} others. "
                 f"*API calls*: requests to `/v1/*` from the navigation to {po['settle_ms']} ms after the mark. "
                 f"Other processes used {fmt_pct(po['other_load']['foreign_cpu_pct'])} of a core meanwhile.")
        L.append("")
        L.append("| view | cold ms | median ms | loads ms | API calls | calls (slowest first, ms) | state |")
        L.append("|---|---:|---:|---|---:|---|---|")
        for v in po["views"]:
            api = ", ".join(f"`{md(a['path'])}` {a['ms']}" for a in sorted(v["api"], key=lambda a: -a["ms"]))
            state = "error: " + v["error"] if v["error"] else ("; ".join(v["problems"]) or "ok")
            L.append(f"| {md(v['view'])} | {v['cold_ms'] if v['cold_ms'] is not None else '–'} | "
                     f"**{v['median_ms'] if v['median_ms'] is not None else '–'}** | {', '.join(map(str, v['loads_ms']))} | "
                     f"{v['api_calls'] if v['api_calls'] is not None else '–'} | {api} | {md(state)} |")
    else:
        L.append(f"Not measured: {md(po['status'])}.")
    L.append("")

    L.append("## Observations")
    L.append("")
    for o in data["observations"]:
        L.append(f"- {o}")
    L.append("")
    L.append("Raw numbers: `latest.json` (this run; every wrk summary, every stream's TTFB and gaps, the RSS timeline). "
             "Chart: `latest.svg`.")
    return "\n".join(L) + "\n"


def observations(data):
    obs = []
    logs = data["logs"]
    for name, f in logs.items():
        if f["levels"]:
            obs.append(f"{name} log: {f['levels']} — e.g. `{md(f['samples'][0])}`"
                       + (f" (and {len(f['samples']) - 1} other distinct line(s))" if len(f['samples']) > 1 else ""))
        if f["crash"]:
            obs.append(f"**{name} crashed**: {md(f['crash'])}")
        if f["error_records"]:
            obs.append(f"{name} ledger error records (first {len(f['error_records'])}): {md(json.dumps(f['error_records']))}")
    for lane in LANES_HTTP + LANES_STATIC + LANES_1CORE:
        st = data["http"].get(lane, {}).get("status", "")
        if st not in ("ok", "") and lane != "litellm":
            obs.append(f"lane {lane}: {md(st)}")
    if data["litellm_status"] != "ok":
        obs.append(f"**LiteLLM not measured: {md(data['litellm_status'])}**")
    # CPU saturation hints
    for lane in ("nginx", "gateway", "gateway-auto", "nginx-static", "gateway-static"):
        r = data["http"].get(lane, {}).get("by_concurrency", {}).get("64")
        if r:
            cpu = r["cpu_busy_pct"]
            obs.append(f"{LANE_TITLES[lane]} at c=64: CPU0 (proxy) {cpu.get('cpu0')}% busy, CPU1 (upstream + wrk) {cpu.get('cpu1')}% busy")
    limit = data["settings"].get("disturbed_pct", 10)
    bad = []
    for lane, e in data["http"].items():
        for c, r in e.get("by_concurrency", {}).items():
            f = r["other_load"]["foreign_cpu_pct"]
            if f is not None and f > limit:
                bad.append(f"{lane} c={c} ({f:.0f}%)")
    for lane, r in data["streaming"].items():
        f = r["other_load"]["foreign_cpu_pct"]
        if f is not None and f > limit:
            bad.append(f"stream {lane} ({f:.0f}%)")
    f = data["soak"]["other_load"]["foreign_cpu_pct"]
    if f is not None and f > limit:
        bad.append(f"soak ({f:.0f}%)")
    f = data["routing_load"]["foreign_cpu_pct"]
    if f is not None and f > limit:
        bad.append(f"routing decision ({f:.0f}%)")
    f = data["portal"]["other_load"]["foreign_cpu_pct"]
    if f is not None and f > limit:
        bad.append(f"portal views ({f:.0f}%)")
    if bad:
        obs.append("**Measurements disturbed by other processes on the machine** (CPU they used, in % of one core; "
                   "these figures are less reliable): " + ", ".join(bad))
    else:
        obs.append(f"No measurement was disturbed by other processes (each used < {limit}% of a core outside the benchmark).")
    try:
        left = float(data["wait_budget_left_s"])
        budget = data["settings"].get("wait_budget_s")
        if budget and left < budget:
            obs.append(f"Waiting for a quiet machine and re-measuring disturbed cells took {budget - left:.0f} s "
                       f"of the {budget} s budget" + (" — the budget ran out, later cells were not re-measured." if left <= 0 else "."))
    except ValueError:
        pass
    so = data["soak"]
    cps = [c for c in so["checkpoints"] if c["label"].startswith("after")]
    if len(cps) >= 2:
        q = so["ledger_queue_during_load"]["max"]
        rss = " → ".join(f"{c['rss_kib'] / 1024:.0f}" for c in cps)
        reqs = ", ".join(f"{c['requests']:,}" for c in cps)
        obs.append(f"Soak: RSS went {rss} MiB at {reqs} requests"
                   + ("" if q is None else f", while the ledger queue (records not yet written) peaked at {q:,} "
                      f"(~{q / 1024:.0f} MiB at the ~1 KiB a record the config documents)") + ".")
    rl = data["gateway_rss_kib_lanes"]
    if rl["idle"]:
        obs.append(f"The gateway of lanes (a)/(b): RSS {rl['idle'] / 1024:.1f} MiB idle after start, "
                   f"{rl['after_a_lanes'] / 1024:.1f} MiB after the (a) lanes.")
    return obs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stamp", required=True)
    a = ap.parse_args()
    raw = a.raw
    settings = load(f"{raw}/settings.json")
    meta = load(f"{raw}/meta.json", {})
    http = http_results(raw, LANES_HTTP + LANES_STATIC + LANES_1CORE + LANES_EMBED, settings["concurrencies"])
    data = {
        "settings": settings, "meta": meta,
        "litellm_status": read(f"{raw}/lanes/litellm.status.detail", "unknown"),
        "loadavg_end": read(f"{raw}/logs/loadavg-at-end.txt"),
        "wait_budget_left_s": read(f"{raw}/logs/wait-budget-left.txt"),
        "http": http,
        "gateway_rss_kib_lanes": {"idle": int(read(f"{raw}/http/gateway-rss-idle.kb", "0") or 0),
                                  "after_a_lanes": int(read(f"{raw}/http/gateway-rss-after-lanes.kb", "0") or 0)},
        "ratios_mock": ratio_rows(http, "mock", settings["concurrencies"], ["nginx", "gateway", "gateway-auto", "litellm"]),
        "ratios_static": ratio_rows(http, "static", settings["concurrencies"], ["nginx-static", "gateway-static"]),
        "ratios_1core": ratio_rows(http, "static-1core", [1], ["nginx-static-1core", "gateway-static-1core"]),
        "ratios_embed": ratio_rows(http, "embed-mock", settings["concurrencies"], ["embed-nginx", "embed-gateway"]),
        "streaming": stream_results(raw, settings["stream_gap_ms"]),
        "soak": soak_results(raw, settings),
        "sanitizer": load(f"{raw}/sanitizer.json", {}),
        "routing": load(f"{raw}/routing.json", {}),
        "translate": load(f"{raw}/translate.json", {}),
        "routing_load": load_info(f"{raw}/routing"),
        "admission": load(f"{raw}/admission.json", {}),
        "admission_load": load_info(f"{raw}/admission"),
        "auto_route": route_headers(f"{raw}/lanes/gateway-auto.route"),
        "portal": portal_results(raw, settings),
        "logs": log_findings(raw),
    }
    git = load(f"{raw}/git-at-build.json")
    sha = read(f"{raw}/binaries.sha256")
    if git:
        note = f"commit {git['rev']}" + (f" plus uncommitted changes in {git['modified_tracked_files']} tracked files ({git['diffstat']})"
                                         if git["modified_tracked_files"] else ", clean work tree") + " at build time"
    else:
        note = f"commit {meta.get('git_rev')} ({meta.get('git_dirty_files')} tracked files modified)"
    if sha:
        note += "; sha256 " + ", ".join(f"{ln.split()[1]} {ln.split()[0][:12]}" for ln in sha.splitlines() if ln.strip())
    data["build_note"] = note
    data["targets"] = evaluate(data)
    data["observations"] = observations(data)
    # Raw per-stream numbers go into the JSON too.
    data["streaming_raw"] = {lane: load(f"{raw}/stream/{lane}.json") for lane in LANES_STREAM
                             if os.path.exists(f"{raw}/stream/{lane}.json")}

    os.makedirs(f"{a.out}/history", exist_ok=True)
    md, svg = markdown(data), svg_chart(data)
    for name, content in (("latest.md", md), ("latest.svg", svg), ("latest.json", json.dumps(data, indent=1))):
        with open(f"{a.out}/{name}", "w") as f:
            f.write(content)
        shutil.copy(f"{a.out}/{name}", f"{a.out}/history/{a.stamp}-{settings['mode']}.{name.split('.')[1]}")

    # Console summary
    print()
    print("=" * 78)
    print(f"llm-gateway benchmark ({settings['mode']}), {meta.get('date_utc')}")
    print(f"{'lane':<24}{'c':>4}{'req/s':>10}{'p50 us':>9}{'p99 us':>9}")
    for lane in LANES_HTTP + LANES_STATIC + LANES_1CORE:
        for c, r in http.get(lane, {}).get("by_concurrency", {}).items():
            print(f"{LANE_TITLES[lane]:<24}{c:>4}{r['ok_rps']:>10,.0f}{r['latency_us']['p50']:>9,}{r['latency_us']['p99']:>9,}")
    for lane, r in data["streaming"].items():
        print(f"stream {LANE_TITLES[lane]:<30} TTFB p50 {fmt_ms(r['ttfb_us']['p50'])} ms, "
              f"|gap-20ms| p99 {fmt_ms(r['gap_deviation_us']['p99'])} ms")
    for c in data["soak"]["checkpoints"]:
        print(f"RSS {c['label']:<28} {c['rss_kib'] / 1024:7.1f} MiB")
    for profile, r in routing_profiles(data).items():
        print(f"routing decision {profile:<16} {r['candidates']:>3} candidates  p50 {r['p50_us']:6.1f} us  "
              f"p99 {r['p99_us']:6.1f} us  (explain p99 {r['explain_p99_us']:6.1f} us)")
    for v in data["portal"]["views"]:
        print(f"portal {v['view']:<12} cold {v['cold_ms']} ms  median {v['median_ms']} ms  {v['api_calls']} API call(s)"
              + (f"  ERROR: {v['error']}" if v["error"] else ""))
    print()
    for group in ("target", "supplementary"):
        print("Targets:" if group == "target" else "Supplementary:")
        for t in data["targets"]:
            if t["group"] == group:
                print(f"{t['result']:<5} {t['target']}: {t['value']}" + (f"  ({t['detail']})" if t["detail"] else ""))
    print("=" * 78)


if __name__ == "__main__":
    main()

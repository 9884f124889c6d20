#!/usr/bin/env python3
"""Markdown report from the JSON lines bench/run.sh collects.

    report.py RESULTS.jsonl > report.md

Line kinds: wrk runs (no "kind"; written by run.sh's bench()), {"kind":"sse",...} from
sse_ttfb.py, and {"kind":"meta","key","value"} for machine info, versions and RSS.
"""
import json
import sys

TARGET_ORDER = ["direct", "nginx", "gateway-info", "gateway-limited", "gateway-warn"]
TARGET_LABEL = {
    "direct": "direct (upstream nginx)",
    "nginx": "nginx proxy",
    "gateway-info": "gateway, LOG_LEVEL=info",
    "gateway-limited": "gateway, LOG_LEVEL=info, key with every limit",
    "gateway-warn": "gateway, LOG_LEVEL=warn",
}


def load(path):
    runs, sse, sys_, meta = [], [], [], {}
    with open(path) as f:
        for line in f:
            j = json.loads(line)
            kind = j.get("kind")
            if kind == "meta":
                meta[j["key"]] = j["value"]
            elif kind == "sse":
                sse.append(j)
            elif kind == "sys":
                sys_.append(j)
            else:
                j["rps"] = j["requests"] / (j["duration_us"] / 1e6)
                runs.append(j)
    return runs, sse, sys_, meta


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_delta(x):
    return f"{x:+,.0f}"


def main():
    runs, sse, sys_, meta = load(sys.argv[1])
    by = {(r["target"], r["conns"]): r for r in runs}
    out = []
    w = out.append

    w(f"# llm-gateway load benchmark, {meta.get('date', '?')}")
    w("")
    w(f"Command: `{meta.get('cmdline', '?')}`  ")
    w(f"Commit: `{meta.get('git', '?')}`")
    w("")
    w("## Machine and versions")
    w("")
    w("| | |")
    w("|---|---|")
    for k, label in [("cpu", "CPU"), ("nproc", "nproc"), ("mem", "memory"), ("kernel", "kernel"),
                     ("load_start", "uptime before"), ("load_end", "uptime after"),
                     ("pinning", "CPU pinning"), ("gateway", "llm-gateway"), ("wrk", "wrk"),
                     ("nginx", "nginx"), ("redis", "Redis"), ("postgres", "PostgreSQL"),
                     ("node", "Node.js"), ("python", "Python")]:
        w(f"| {label} | {meta.get(k, '?').strip()} |")
    w("")
    try:
        load0 = float(meta.get("load_start", "").split("load average:")[1].split(",")[0])
    except (IndexError, ValueError):
        load0 = None
    if load0 is not None and load0 > 0.5:
        w(f"> **The machine was not idle before the start**: 1-minute load {load0:.2f} (other jobs, or "
          "their decaying average). Timings and RPS are noisy; CPU µs/req and syscalls/req are the more stable "
          "numbers. The per-run *load1* column includes the benchmark's own processes (about 2).")
        w("")
    body = next((r["body_bytes"] for r in runs), "?")
    w(f"Each run: {meta.get('warmup', '?')} s warm-up (discarded), then {meta.get('duration', '?')} s measured "
      f"with `wrk --latency -s bench/post.lua`: `POST /v1/chat/completions`, {body}-byte JSON body, "
      "Bearer key, keep-alive. Concurrency 1 = `-t1 -c1`, 64 = `-t2 -c64`. The upstream is nginx "
      "returning a canned 625-byte `chat.completion` (no model work), so every microsecond shown is "
      "HTTP + proxy overhead.")
    w("")

    w("## Non-streaming: throughput, latency, cost")
    w("")
    w("Latencies in µs (wrk's end-to-end, client side). *added* = target minus direct at the same "
      "concurrency. *CPU µs/req* = utime+stime of the proxy process (nginx: master + worker) over the "
      "measured window divided by requests; for the gateway the Redis it queries on every request is "
      "shown separately (CPU from Redis `INFO`, i.e. getrusage; commands from `total_commands_processed`). *core busy* = (proxy + Redis CPU) / wall time: near 100 % means the proxy core "
      "was the bottleneck.")
    w("")
    w("| target | conc | RPS | p50 | p90 | p99 | added p50 | added p99 | RPS / direct | RPS / nginx "
      "| CPU µs/req | Redis CPU µs/req | Redis cmds/req | core busy | load1 |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for conns in sorted({r["conns"] for r in runs}):
        d = by.get(("direct", conns))
        n = by.get(("nginx", conns))
        for t in TARGET_ORDER:
            r = by.get((t, conns))
            if not r:
                continue
            cells = [TARGET_LABEL.get(t, t), str(conns), fmt_int(r["rps"]),
                     fmt_int(r["p50_us"]), fmt_int(r["p90_us"]), fmt_int(r["p99_us"])]
            if d and t != "direct":
                cells += [fmt_delta(r["p50_us"] - d["p50_us"]), fmt_delta(r["p99_us"] - d["p99_us"]),
                          f"{r['rps'] / d['rps']:.2f}"]
            else:
                cells += ["—", "—", "—"]
            cells.append(f"{r['rps'] / n['rps']:.2f}" if n and t.startswith("gateway") else "—")
            if r.get("proxy_cpu_us") is not None:
                cells.append(f"{r['proxy_cpu_us'] / r['requests']:.1f}")
            else:
                cells.append("—")
            if r.get("redis_cpu_us") is not None:
                cells.append(f"{r['redis_cpu_us'] / r['requests']:.1f}")
                cells.append(f"{r['redis_cmds'] / r['requests']:.2f}")
            else:
                cells += ["—", "—"]
            if r.get("proxy_cpu_us") is not None:
                busy = (r["proxy_cpu_us"] + (r.get("redis_cpu_us") or 0)) / r["duration_us"]
                cells.append(f"{busy * 100:.0f} %")
            else:
                cells.append("—")
            cells.append(f"{r['load1']:.2f}")
            w("| " + " | ".join(cells) + " |")
    w("")
    w("Errors: every run above had 0 non-2xx responses and 0 socket errors (run.sh fails otherwise).")
    w("")

    if sse:
        w("## Streaming: time to first byte")
        w("")
        w(f"{meta.get('sse_n', '?')} sequential `\"stream\": true` requests on one keep-alive connection "
          "(after 20 discarded), against the Node mock upstream (test/mock_upstream/server.mjs: role "
          "chunk, 6 content chunks 2 ms apart, finish chunk, `[DONE]`), by `bench/client.py sse`. "
          "*first data* = request sent -> first SSE `data:` bytes received; *total* = -> end of the "
          "chunked body. µs; *added* = vs direct.")
        w("")
        w("| target | headers p50 | first data p50 | p90 | p99 | added first-data p50 | total p50 | added total p50 |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|")
        sd = next((s for s in sse if s["target"] == "direct"), None)
        for s in sorted(sse, key=lambda s: TARGET_ORDER.index(s["target"]) if s["target"] in TARGET_ORDER else 99):
            add_f = fmt_delta(s["first_p50_us"] - sd["first_p50_us"]) if sd and s is not sd else "—"
            add_t = fmt_delta(s["total_p50_us"] - sd["total_p50_us"]) if sd and s is not sd else "—"
            w(f"| {TARGET_LABEL.get(s['target'], s['target'])} | {fmt_int(s['headers_p50_us'])} | "
              f"{fmt_int(s['first_p50_us'])} | {fmt_int(s['first_p90_us'])} | {fmt_int(s['first_p99_us'])} | "
              f"{add_f} | {fmt_int(s['total_p50_us'])} | {add_t} |")
        w("")

    if sys_:
        w("## Syscalls per request")
        w("")
        w(f"`strace -c -f` attached to the proxy (nginx: its worker) while bench/client.py sends "
          f"{sys_[0]['n']} sequential non-streamed requests over one keep-alive connection. Exact "
          "counts, divided by the number of requests; `epoll_wait` varies with timing.")
        w("")
        w("| target | syscalls/req | breakdown |")
        w("|---|--:|---|")
        for s in sys_:
            n = s["n"]
            items = sorted(s["calls"].items(), key=lambda kv: -kv[1])
            total = sum(s["calls"].values()) / n
            parts = ", ".join(f"{k} {v / n:.2f}" for k, v in items if v / n >= 0.05)
            w(f"| {TARGET_LABEL.get(s['target'], s['target'])} | {total:.1f} | {parts} |")
        w("")

    w("## Memory after the runs")
    w("")
    w("| process | VmRSS | VmHWM (peak) |")
    w("|---|--:|--:|")
    for key, label in [("rss:gateway-info", "gateway (LOG_LEVEL=info), after its runs"),
                       ("rss:gateway-warn", "gateway (LOG_LEVEL=warn), after its runs"),
                       ("rss:nginx-proxy", "nginx proxy (master + worker)"),
                       ("rss:redis", "Redis")]:
        if key in meta:
            rss, hwm = (int(x) for x in meta[key].split())
            w(f"| {label} | {rss / 1024:.1f} MiB | {hwm / 1024:.1f} MiB |")
    w("")
    if "gw_log_lines_info" in meta:
        w(f"Gateway stdout lines: {meta['gw_log_lines_info']} at LOG_LEVEL=info (one JSON line per "
          f"request), {meta.get('gw_log_lines_warn', '?')} at warn.")
        w("")

    if "perf_dso" in meta:
        w("## Where the gateway spends CPU (perf, flat profile)")
        w("")
        w("`perf record -e cpu-clock -F 999 -p <gateway>` during one extra 64-connection run at "
          "LOG_LEVEL=info (not one of the runs above). Self time; kernel time is `[kernel.kallsyms]`.")
        w("")
        w("```")
        w(meta["perf_dso"].rstrip())
        w("```")
        w("")
        w("<details><summary>top symbols</summary>")
        w("")
        w("```")
        w(meta.get("perf_sym", "").rstrip())
        w("```")
        w("</details>")
        w("")

    w("## Raw wrk output")
    w("")
    for r in runs:
        w(f"<details><summary>{TARGET_LABEL.get(r['target'], r['target'])}, {r['conns']} connections</summary>")
        w("")
        w("```")
        w(r["raw"].rstrip())
        w("```")
        w("</details>")
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()

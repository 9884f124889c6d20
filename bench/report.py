#!/usr/bin/env python3
"""Markdown report and latency plot from the JSON lines bench/run.sh collects.

    report.py RESULTS.jsonl OUT.md      # also writes OUT.png (gnuplot) next to it

Line kinds ("kind"): run (one wrk run), sys (syscalls of one contender), stream (concurrent
streams), idle (idle streams held), flood (invalid keys), perf (profile), rss, gwlog, contender,
layout, meta.
"""
import json
import os
import shutil
import subprocess
import sys

ORDER = ["direct", "nginx", "gw-log-on", "gw-log-off", "gw-limited", "portkey"]
SHORT = {"direct": "direct", "nginx": "nginx", "gw-log-on": "gateway (log on)",
         "gw-log-off": "gateway (log off)", "gw-limited": "gateway (limited key)", "portkey": "Portkey"}


def load(path):
    d = {"run": [], "sys": [], "stream": [], "idle": [], "flood": [], "perf": [], "rss": [], "gwlog": [],
         "contender": [], "layout": [], "meta": {}}
    with open(path) as f:
        for line in f:
            j = json.loads(line)
            k = j.pop("kind")
            if k == "meta":
                d["meta"][j["key"]] = j["value"]
            else:
                d.setdefault(k, []).append(j)
    for r in d["run"]:
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
        r["errors"] = sum(r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    return d


def f0(x):
    return "—" if x is None else f"{x:,.0f}"


def f1(x):
    return "—" if x is None else f"{x:,.1f}"


def f2(x):
    return "—" if x is None else f"{x:.2f}"


def sgn(x):
    return "—" if x is None else f"{x:+,.0f}"


def ordkey(t):
    return ORDER.index(t) if t in ORDER else 99


def per_req(r, k):
    v = r.get(k)
    return None if v is None or not r["requests"] else v / r["requests"]


class Report:
    def __init__(self, d, png_name):
        self.d = d
        self.m = d["meta"]
        self.png = png_name
        self.out = []
        self.runs = {(r["workers"], r["target"], r["conns"]): r for r in d["run"]}
        self.blocks = sorted({r["workers"] for r in d["run"]} | {l["workers"] for l in d["layout"]})
        self.concs = sorted({r["conns"] for r in d["run"]})
        self.labels = {(c["workers"], c["target"]): c["label"] for c in d["contender"]}
        self.layouts = {l["workers"]: l["text"] for l in d["layout"]}

    def w(self, s=""):
        self.out.append(s)

    def heading(self, title):
        self.w("## " + title)
        self.w()

    def table(self, head, rows, align=None):
        self.w("| " + " | ".join(head) + " |")
        self.w("|" + "|".join(align or (["---"] + ["--:"] * (len(head) - 1))) + "|")
        for r in rows:
            self.w("| " + " | ".join(str(c) for c in r) + " |")
        self.w()

    def run(self, w, t, c):
        return self.runs.get((w, t, c))

    # ---- targets --------------------------------------------------------------------------------
    def targets(self):
        rows = []

        def add(target, measured, ok, note=""):
            rows.append([target, measured, "—" if ok is None else ("**pass**" if ok else "**FAIL**"), note])

        c64 = 64 if 64 in self.concs else (self.concs[-1] if self.concs else None)
        for wk in self.blocks:
            n, g, goff = self.run(wk, "nginx", c64), self.run(wk, "gw-log-on", c64), self.run(wk, "gw-log-off", c64)
            if n and g:
                ratio = g["rps"] / n["rps"]
                add(f"RPS >= 0.9x nginx, {c64} connections, WORKERS={wk} vs {wk} nginx worker(s)",
                    f"{ratio:.2f}x ({f0(g['rps'])} vs {f0(n['rps'])})", ratio >= 0.9,
                    f"log off: {goff['rps'] / n['rps']:.2f}x" if goff else "")
                if n.get("proxy_cpu_us") and g.get("proxy_cpu_us"):
                    cr = per_req(g, "proxy_cpu_us") / per_req(n, "proxy_cpu_us")
                    add(f"CPU µs/request <= 1.3x nginx's, {c64} connections, WORKERS={wk}",
                        f"{cr:.2f}x ({f1(per_req(g, 'proxy_cpu_us'))} vs {f1(per_req(n, 'proxy_cpu_us'))} µs)",
                        cr <= 1.3,
                        (f"log off: {per_req(goff, 'proxy_cpu_us') / per_req(n, 'proxy_cpu_us'):.2f}x; "
                         if goff else "") + "gateway's Redis + PostgreSQL not included (see the table)")
        for wk in self.blocks:
            d, n, g = self.run(wk, "direct", 1), self.run(wk, "nginx", 1), self.run(wk, "gw-log-on", 1)
            if d and n and g:
                diff = g["p99_us"] - n["p99_us"]
                add(f"added p99 at concurrency 1 within 20 µs of nginx's, WORKERS={wk}",
                    f"{diff:+,} µs (gateway {g['p99_us'] - d['p99_us']:+,}, nginx {n['p99_us'] - d['p99_us']:+,} µs over direct)",
                    diff <= 20)
        for wk in self.blocks:
            p, g = self.run(wk, "portkey", c64), self.run(wk, "gw-log-on", c64)
            if p and g:
                ratio = g["rps"] / p["rps"]
                others = [f"{c}: {self.run(wk, 'gw-log-on', c)['rps'] / self.run(wk, 'portkey', c)['rps']:.1f}x"
                          for c in self.concs if c != c64 and self.run(wk, 'portkey', c) and self.run(wk, 'gw-log-on', c)]
                add(f">= 20x Portkey's throughput, {c64} connections, WORKERS={wk} vs one node process",
                    f"{ratio:.1f}x ({f0(g['rps'])} vs {f0(p['rps'])})", ratio >= 20,
                    ("other concurrencies " + ", ".join(others)) if others else "")
        for i in self.d["idle"]:
            if i["tkind"] != "gateway":
                continue
            held = max(i["held"], 1)
            per = (i["rss_holding_kb"] - i["rss_before_kb"]) / held
            proj = i["rss_before_kb"] + per * 10000
            measured_at = f"measured with {i['held']:,} streams" + (
                f" (as many as the fd hard limit {i['fd_limit']:,} allows)"
                if i["n"] < int(self.m.get("idle_n", i["n"])) else "")
            add("10,000 idle streams under 200 MB RSS (20 KiB per stream)",
                f"{proj / 1024:.0f} MB for 10,000 ({per:.1f} KiB/stream; {i['rss_holding_kb'] / 1024:.0f} MB at {i['held']:,})",
                proj / 1024 < 200 and per <= 20, measured_at + ("; 10,000 extrapolated" if i["held"] < 10000 else ""))
        errs, where = 0, []
        for r in self.d["run"]:
            if r["tkind"] == "gateway" and r["errors"]:
                errs += r["errors"]
                where.append(f"{r['target']} c{r['conns']} W{r['workers']}")
        for s in self.d["stream"]:
            if s["tkind"] == "gateway":
                e = sum(s["errors"].values()) + s["statuses"]["other"]
                if e:
                    errs += e
                    where.append(f"streams W{s['workers']}")
        for i in self.d["idle"]:
            if i["tkind"] == "gateway" and (i["failed"] or i.get("dropped_while_held")):
                errs += i["failed"] + (i.get("dropped_while_held") or 0)
                where.append("idle streams")
        if self.d["run"]:
            add("no errors at any concurrency (gateway)", f"{errs:,} errors" + (f" ({', '.join(where)})" if where else ""),
                errs == 0)
        for wk in self.blocks:
            sd = next((s for s in self.d["stream"] if s["workers"] == wk and s["target"] == "direct"), None)
            sg = next((s for s in self.d["stream"] if s["workers"] == wk and s["target"] == "gw-log-on"), None)
            if sd and sg and sd["first_delay_us"] and sg["first_delay_us"]:
                a99 = sg["first_delay_us"]["p99"] - sd["first_delay_us"]["p99"]
                a50 = sg["first_delay_us"]["p50"] - sd["first_delay_us"]["p50"]
                add(f"first stream byte forwarded within 1 ms of the upstream sending it, {sg['conns']:,} streams, WORKERS={wk}",
                    f"added p99 {a99:+,.0f} µs (p50 {a50:+,.0f} µs)", a99 <= 1000,
                    "upstream write -> client read, gateway minus direct")
        for fl in self.d["flood"]:
            n = fl["wrk"]["requests"]
            add("invalid keys: PostgreSQL statements per request = 0",
                f"{fl['pg_statements'] / max(n, 1):.4f} ({fl['pg_statements']:,} statements, {fl['db_calls']:,} gateway DB calls, {n:,} requests)",
                fl["pg_statements"] == 0 and fl["db_calls"] == 0)
        self.heading("Targets (issue 12), as ratios measured in this run")
        self.table(["target", "measured", "", "notes"], rows, ["---", "---", "---", "---"])

    # ---- sections -------------------------------------------------------------------------------
    def nonstream(self):
        self.heading("Non-streaming chat completions")
        self.w(f"`wrk --latency -s bench/post.lua`, {self.m.get('warmup')} s warm-up (discarded), then "
               f"{self.m.get('duration')} s measured; `-t1` at 1 connection, `-t2` above. "
               "Latencies in µs, client side. *+pXX* = contender minus direct at the same concurrency (what the "
               "hop adds). *CPU µs/req* = utime+stime of the proxy's processes (all threads; nginx master + "
               "workers) from `/proc/PID/stat` over the measured run, divided by requests; the gateway's Redis "
               "(`INFO` used_cpu) and PostgreSQL (postmaster + backends, mostly the request-log writer) are shown "
               "apart. *Redis cmds/req* counts the commands Lua scripts run (Redis's "
               "`total_commands_processed`). *PG stmts/req* from `pg_stat_statements`.")
        self.w()
        for wk in self.blocks:
            self.w(f"### WORKERS={wk} (nginx worker_processes {wk})")
            self.w()
            self.w(f"CPUs: {self.layouts.get(wk, '?')}.")
            self.w()
            rows = []
            for c in self.concs:
                d = self.run(wk, "direct", c)
                n = self.run(wk, "nginx", c)
                for t in sorted({k[1] for k in self.runs if k[0] == wk and k[2] == c}, key=ordkey):
                    r = self.run(wk, t, c)
                    add = (lambda k: None if not d or t == "direct" else r[k] - d[k])
                    rows.append([SHORT.get(t, t), c, f0(r["rps"]), f0(r["p50_us"]), f0(r["p99_us"]), f0(r["p999_us"]),
                                 sgn(add("p50_us")), sgn(add("p99_us")), sgn(add("p999_us")),
                                 f2(r["rps"] / n["rps"]) if n and t != "nginx" and t != "direct" else "—",
                                 f1(per_req(r, "proxy_cpu_us")), f1(per_req(r, "redis_cpu_us")),
                                 f2(per_req(r, "redis_cmds")), f1(per_req(r, "pg_cpu_us")),
                                 f"{per_req(r, 'pg_statements'):.3f}" if r.get("pg_statements") is not None else "—",
                                 f"**{r['errors']:,}**" if r["errors"] else "0", f2(r["load1"])])
            self.table(["contender", "conns", "RPS", "p50", "p99", "p99.9", "+p50", "+p99", "+p99.9", "RPS / nginx",
                        "CPU µs/req", "Redis CPU µs/req", "Redis cmds/req", "PG CPU µs/req", "PG stmts/req",
                        "errors", "load1"], rows)
        self.w(f"![latency percentiles per contender]({self.png})")
        self.w()

    def limited(self):
        rows = []
        for wk in self.blocks:
            for c in self.concs:
                u, l = self.run(wk, "gw-log-on", c), self.run(wk, "gw-limited", c)
                if not (u and l):
                    continue
                rows.append([wk, c, f0(u["rps"]), f0(l["rps"]), f"{l['rps'] / u['rps']:.2f}",
                             sgn(l["p50_us"] - u["p50_us"]), sgn(l["p99_us"] - u["p99_us"]),
                             f1(per_req(u, "proxy_cpu_us")), f1(per_req(l, "proxy_cpu_us")),
                             f2(per_req(u, "redis_cmds")), f2(per_req(l, "redis_cmds")),
                             f1(per_req(l, "redis_cpu_us"))])
        if not rows:
            return
        self.heading("Rate limits: a key with every limit vs a key without")
        self.w("Same gateway (request log on), same runs as above. The limited key has rpm, rpd, tpm, "
               "max_parallel, token_budget and budget_usd set far above what the run uses, so nothing is "
               "refused: the difference is the cost of the checks (one Redis round trip with the key's Lua "
               "script to admit, one queued reconcile after the answer).")
        self.w()
        self.table(["WORKERS", "conns", "RPS unlimited", "RPS limited", "ratio", "added p50 µs", "added p99 µs",
                    "CPU µs/req unlimited", "CPU µs/req limited", "Redis cmds/req unlimited",
                    "Redis cmds/req limited", "Redis CPU µs/req limited"], rows)

    def syscalls(self):
        if not self.d["sys"]:
            return
        tool = self.d["sys"][0]["tool"]
        how = ("`perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_<name>... -p <pids>` (every thread, exact "
               "counts; *other* = all syscalls minus the ~55 counted by name)" if tool == "perf"
               else "`strace -c -f -p <pids>`")
        self.heading("Syscalls per request")
        self.w(f"{how} during a separate {self.m.get('sys_duration')} s wrk run at 1 and 64 connections, divided "
               "by the requests wrk completed. Names above 0.05 per request.")
        self.w()
        rows = []
        for s in sorted(self.d["sys"], key=lambda s: (s["workers"], s["conns"], ordkey(s["target"]))):
            n = max(s["requests"], 1)
            items = sorted(s["calls"].items(), key=lambda kv: -kv[1])
            total = sum(s["calls"].values()) / n
            rows.append([s["workers"], SHORT.get(s["target"], s["target"]), s["conns"], f"{s['requests']:,}", f"{total:.1f}",
                         ", ".join(f"{k} {v / n:.2f}" for k, v in items if v / n >= 0.05)])
        self.table(["WORKERS", "contender", "conns", "requests", "syscalls/req", "by name"], rows,
                   ["--:", "---", "--:", "--:", "--:", "---"])

    def streams(self):
        if not self.d["stream"]:
            return
        m = self.m
        self.heading("Streaming")
        self.w(f"`bench/streamer.c stream`: {m.get('streams')} concurrent connections, each 3 streamed requests "
               f"back to back ({m.get('chunks')} SSE chunks {m.get('interval')} ms apart from `streamer upstream`, "
               "each stamped with its CLOCK_MONOTONIC send time), starts staggered over one stream's length; the "
               "middle round is measured. *TTFB* = request written -> first chunk read; *first byte delay* = "
               "upstream wrote chunk 0 -> client read it; *chunk delay* = same for chunks 1.. (the inter-chunk "
               "delay a proxy adds shows here). µs; *+* = contender minus direct. *CPU µs/chunk* = the proxy's CPU "
               "over all 3 rounds / chunks relayed. *proxy CPU*, *client CPU*, *upstream CPU* = the proxy's, the "
               "stream client's and the streamer upstream's CPU in % of one core over the run: a proxy near its "
               "CPUs (the gateway's Redis and PostgreSQL share them) is saturated and queues every chunk; when "
               "client + upstream near the load side's CPUs, the load side itself queues.")
        self.w()
        rows = []
        for wk in self.blocks:
            sd = next((s for s in self.d["stream"] if s["workers"] == wk and s["target"] == "direct"), None)
            for s in sorted((s for s in self.d["stream"] if s["workers"] == wk), key=lambda s: ordkey(s["target"])):
                def g(k, p):
                    return (s.get(k) or {}).get(p)

                def a(k, p):
                    if not sd or s is sd or g(k, p) is None or (sd.get(k) or {}).get(p) is None:
                        return None
                    return g(k, p) - sd[k][p]
                errs = sum(s["errors"].values()) + s["statuses"]["other"]
                chunks = s["statuses"]["200"] * s["chunks"]
                rows.append([wk, SHORT.get(s["target"], s["target"]),
                             f"{s['statuses']['200']:,}/{s['conns'] * s['rounds']:,}",
                             f"**{errs}**" if errs else "0",
                             f0(g("ttfb_us", "p50")), f0(g("ttfb_us", "p99")), sgn(a("ttfb_us", "p50")), sgn(a("ttfb_us", "p99")),
                             f0(g("first_delay_us", "p50")), f0(g("first_delay_us", "p99")),
                             sgn(a("first_delay_us", "p50")), sgn(a("first_delay_us", "p99")),
                             f0(g("chunk_delay_us", "p50")), f0(g("chunk_delay_us", "p99")), f0(g("chunk_delay_us", "p999")),
                             sgn(a("chunk_delay_us", "p50")), sgn(a("chunk_delay_us", "p99")),
                             f1(s["proxy_cpu_us"] / chunks) if s.get("proxy_cpu_us") is not None and chunks else "—",
                             f"{s['proxy_cpu_us'] / (s['wall_s'] * 1e6) * 100:.0f} %"
                             if s.get("proxy_cpu_us") is not None and s.get("wall_s") else "—",
                             f"{s['client_cpu_us'] / (s['wall_s'] * 1e6) * 100:.0f} %" if s.get("wall_s") else "—",
                             f"{s['upstream_cpu_us'] / (s['wall_s'] * 1e6) * 100:.0f} %"
                             if s.get("wall_s") and s.get("upstream_cpu_us") is not None else "—"])
        self.table(["WORKERS", "contender", "streams ok", "errors", "TTFB p50", "TTFB p99", "+TTFB p50", "+TTFB p99",
                    "first byte p50", "p99", "+p50", "+p99", "chunk delay p50", "p99", "p99.9", "+p50", "+p99",
                    "CPU µs/chunk", "proxy CPU", "client CPU", "upstream CPU"], rows)
        for s in self.d["stream"]:
            if s.get("error_messages"):
                self.w(f"- {SHORT.get(s['target'], s['target'])}, WORKERS={s['workers']}: errors {s['error_messages']}")
        if any(s.get("error_messages") for s in self.d["stream"]):
            self.w()
        if any(s["target"] == "portkey" for s in self.d["stream"]):
            self.w("Portkey waits 25 ms before it forwards the first chunk of every stream (a `setTimeout(25)` "
                   "in its stream splitter, `handleStreamingMode`), which is in its TTFB and first-byte rows.")
            self.w()

    def idle(self):
        if not self.d["idle"]:
            return
        self.heading("Idle streams held open")
        i0 = self.d["idle"][0]
        asked = int(self.m.get("idle_n", i0["n"]))
        lim = (f" The file-descriptor hard limit here is {i0['fd_limit']:,}: the gateway holds 2 per stream, so "
               f"{i0['n']:,} streams is as many as it allows ({asked:,} asked)." if i0["n"] < asked else "")
        self.w("`bench/streamer.c idle`: streams that got their headers and first chunk, then nothing (the upstream "
               "holds them open), at most 500 opening at a time, then held "
               f"{i0['hold_s']:g} s.{lim} RSS of the proxy's processes (VmRSS, nginx: master + workers); "
               "*per stream* = (RSS holding - RSS before) / streams held.")
        self.w()
        rows = []
        for i in self.d["idle"]:
            held = max(i["held"], 1)
            rows.append([SHORT.get(i["target"], i["target"]), i["workers"], f"{i['held']:,}/{i['n']:,}",
                         f"**{i['failed'] + (i.get('dropped_while_held') or 0)}**" if i["failed"] or i.get("dropped_while_held") else "0",
                         f"{i['open_s']:.2f}", f"{i['rss_before_kb'] / 1024:.1f}", f"{i['rss_holding_kb'] / 1024:.1f}",
                         f"{(i['rss_holding_kb'] - i['rss_before_kb']) / held:.1f}",
                         f"{(i['rss_before_kb'] + (i['rss_holding_kb'] - i['rss_before_kb']) / held * 10000) / 1024:.0f}",
                         f"{i['rss_after_kb'] / 1024:.1f}", f"{i['open_cpu_us'] / held:.0f}",
                         f"{i['hold_cpu_us'] / (i['hold_s'] * 1e6) * 100:.2f} %"])
        self.table(["contender", "WORKERS", "held / asked", "errors", "open s", "RSS before MiB", "RSS holding MiB",
                    "KiB per stream", "projected MiB at 10,000", "RSS after release MiB", "CPU µs to open one",
                    "CPU while holding (of one core)"], rows)
        for i in self.d["idle"]:
            if i.get("errors"):
                self.w(f"- {SHORT.get(i['target'], i['target'])}: {i['errors']}")
                self.w()
        for s in self.d.get("idlesys", []):
            c = dict(s["calls"])
            total = c.pop("raw_syscalls:sys_enter", c.pop("sys_enter", None))
            if total is None:
                total = sum(c.values())
            sec = float(s["seconds"])
            self.w(f"Syscalls of the {SHORT.get(s['target'], s['target'])} while holding {int(s['streams']):,} idle "
                   f"streams (another {sec:g} s, perf stat): {total / sec:,.0f}/s; " +
                   ", ".join(f"{k} {v / sec:,.0f}/s" for k, v in sorted(c.items(), key=lambda kv: -kv[1])
                             if k != "raw_syscalls" and v / sec >= 1))
            self.w()
        for p in self.d.get("idleperf", []):
            self.w(f"<details><summary>{SHORT.get(p['target'], p['target'])} while holding {int(p['streams']):,} "
                   f"idle streams: top symbols (perf record, {p['seconds']} s)</summary>")
            self.w()
            self.w("```")
            self.w(p["sym"].rstrip())
            self.w("```")
            self.w("</details>")
            self.w()

    def flood(self):
        for fl in self.d["flood"]:
            j = fl["wrk"]
            n = max(j["requests"], 1)
            a, b = [list(map(int, str(s).split())) for s in (fl["s0"], fl["s1"])]
            dl = [y - x for x, y in zip(a, b)]
            clk = int(fl["clk"])
            self.heading("A flood of invalid keys")
            self.w(f"wrk, 64 connections, {self.m.get('duration')} s, every request with a different never-issued key "
                   "(`BENCH_RANDOM_KEY=1`), against the gateway with the request log on. *PG statements* = "
                   "`pg_stat_statements` calls over the run (the log writer's included); *DB calls* = the gateway's "
                   "`llmgw_db_call_duration_seconds_count`.")
            self.w()
            self.table(["requests", "RPS", "statuses", "PG statements", "per request", "gateway DB calls", "CPU µs/req",
                        "Redis cmds/req", "Redis CPU µs/req", "p50 µs", "p99 µs"],
                       [[f"{j['requests']:,}", f0(j["requests"] / (j["duration_us"] / 1e6)),
                         ", ".join(f"{k}: {v:,}" for k, v in sorted(j.get("statuses", {}).items())) or "?",
                         f"{fl['pg_statements']:,}", f"{fl['pg_statements'] / n:.4f}", f"{fl['db_calls']:,}",
                         f"{dl[0] * 1e6 / clk / n:.1f}", f"{(dl[2] - 1) / n:.2f}", f"{dl[1] / n:.1f}",
                         f0(j["p50_us"]), f0(j["p99_us"])]])
            if fl.get("auth_lookups"):
                self.w("Auth lookups (gateway `/metrics`, cumulative since start): `" +
                       fl["auth_lookups"].replace("|", "`, `") + "`")
                self.w()

    def memory(self):
        if not self.d["rss"]:
            return
        self.heading("Memory after each block's runs")
        rows = []
        for r in sorted(self.d["rss"], key=lambda r: (r["workers"], ordkey(r["target"]))):
            rss, hwm = (int(x) for x in str(r["value"]).split())
            rows.append([r["workers"], SHORT.get(r["target"], r["target"]), f"{rss / 1024:.1f}", f"{hwm / 1024:.1f}"])
        self.table(["WORKERS", "process", "VmRSS MiB", "VmHWM (peak) MiB"], rows, ["--:", "---", "--:", "--:"])
        if self.d["gwlog"]:
            self.w("Request log accounting over the block's runs: stdout lines written (to a file) vs requests served, "
                   "lines the buffered writer dropped (`llmgw_stdout_log_lines_dropped_total`), and PostgreSQL rows "
                   "written and dropped (`llmgw_log_rows_written_total`, `llmgw_log_rows_dropped_total`; rows are "
                   "dropped when the writer's queue is full, i.e. PostgreSQL, on the load CPU here, wrote them "
                   "slower than they came).")
            self.w()
            num = lambda g, k: f"{g[k]:,}" if isinstance(g.get(k), int) else "—"
            self.table(["WORKERS", "gateway", "stdout lines", "requests served", "lines dropped", "PG rows written",
                        "PG rows dropped"],
                       [[g["workers"], SHORT.get(g["target"], g["target"]), f"{g['lines']:,}", f"{g['served']:,}",
                         f"{g['dropped']:,}", num(g, "pg_written"), num(g, "pg_dropped")] for g in self.d["gwlog"]],
                       ["--:", "---", "--:", "--:", "--:", "--:", "--:"])

    def profile(self):
        for p in self.d["perf"]:
            self.heading("Where the gateway's CPU goes (perf)")
            self.w(f"`perf record -g -F 999 -p <gateway>` during one extra 64-connection run, request log on, "
                   f"WORKERS={p['workers']} ({p['requests']:,} requests; not one of the runs above). Self time "
                   "(`perf report --no-children`); kernel time is `[kernel.kallsyms]`.")
            self.w()
            self.w("```")
            self.w(p["dso"].rstrip())
            self.w("```")
            self.w()
            self.w("<details><summary>top symbols</summary>")
            self.w()
            self.w("```")
            self.w(p["sym"].rstrip())
            self.w("```")
            self.w("</details>")
            self.w()

    def header(self):
        m = self.m
        quick = m.get("quick") == "1"
        self.w(f"# llm-gateway benchmark{' (QUICK smoke run)' if quick else ''}, {m.get('date', '?')}")
        self.w()
        if quick:
            self.w("> **Quick smoke run** (`BENCH_QUICK=1`): short runs and fewer streams, to check the harness "
                   "and show the report's format. Not for comparing numbers; a full run is `bash bench/run.sh` "
                   "on a quiet machine.")
            self.w()
        self.w(f"Command: `{m.get('cmdline', '?')}`  ")
        self.w(f"Commit: `{m.get('git', '?')}`")
        self.w()
        rows = [[label, str(m.get(k, "?")).strip()] for k, label in [
            ("cpu", "CPU"), ("mem", "memory"), ("kernel", "kernel"), ("load_start", "uptime before"),
            ("load_end", "uptime after"), ("fd_limit", "open files limit"), ("gateway", "llm-gateway"),
            ("log_off_env", "gateway with the request log off"), ("wrk", "wrk"), ("nginx", "nginx"),
            ("redis", "Redis"), ("postgres", "PostgreSQL"), ("portkey", "peer gateway")] if k in m]
        rows += [[f"CPUs, WORKERS={wk}", self.layouts[wk]] for wk in sorted(self.layouts)]
        self.table(["", ""], rows, ["---", "---"])
        try:
            load0 = float(m.get("load_start", "").split("load average:")[1].split(",")[0])
        except (IndexError, ValueError):
            load0 = None
        if load0 is not None and load0 > 0.5:
            self.w(f"> **The machine was not idle at the start** (1-minute load {load0:.2f}): timings and RPS are "
                   "noisy; CPU µs/req and syscalls/req are the steadier numbers. Each run's *load1* includes the "
                   "benchmark's own processes.")
            self.w()
        self.w("Contenders, all on 127.0.0.1, in front of the same upstreams: *direct* = the upstream itself (nginx "
               "returning a canned 625-byte `chat.completion`; for streams `bench/streamer.c upstream`); *nginx* = "
               "nginx `proxy_pass` with as many worker processes as the gateway has WORKERS (upstream keep-alive "
               "pool 256, buffering off); *gateway* = llm-gateway with production settings (key check, route, "
               "model rewrite, request log to stdout and to PostgreSQL), and once more with the request log off; "
               "*Portkey* = `@portkey-ai/gateway` run headless with node (one process), pointed at the upstream "
               "with `x-portkey-provider: openai` + `x-portkey-custom-host`.")
        self.w()

    def render(self):
        self.header()
        self.targets()
        self.nonstream()
        self.limited()
        self.syscalls()
        self.streams()
        self.idle()
        self.flood()
        self.memory()
        self.profile()
        return "\n".join(self.out) + "\n"


def plot(d, png):
    """Latency percentiles per contender: one panel per (WORKERS, concurrency)."""
    if not shutil.which("gnuplot") or not d["run"]:
        return False
    runs = d["run"]
    blocks = sorted({r["workers"] for r in runs})
    concs = sorted({r["conns"] for r in runs})
    targets = sorted({r["target"] for r in runs}, key=ordkey)
    colors = {"direct": "#777777", "nginx": "#009e73", "gw-log-on": "#0072b2", "gw-log-off": "#56b4e9",
              "gw-limited": "#cc79a7", "portkey": "#d55e00"}
    pct_x = lambda p: 1 / (1 - p / 100) if p < 100 else 1e5  # noqa: E731
    s = [f"set terminal pngcairo size {440 * len(concs) + 60},{420 * len(blocks) + 40} font ',9'",
         f"set output '{png}'",
         f"set multiplot layout {len(blocks)},{len(concs)} title 'latency percentiles (wrk, µs, log scale)'",
         "set logscale xy", "set grid", "set key below horizontal maxrows 2 font ',8'", "set format y '%.0s%c'",
         "set xtics ('50' 2, '90' 10, '99' 100, '99.9' 1000, '99.99' 10000, 'max' 100000)",
         "set xrange [1.8:150000]", "set ylabel 'µs'"]
    for wk in blocks:
        for c in concs:
            s.append(f"set title 'WORKERS={wk}, {c} connection{'s' if c > 1 else ''}'")
            plots = []
            for t in targets:
                r = next((r for r in runs if r["workers"] == wk and r["conns"] == c and r["target"] == t), None)
                if not r or "pcts" not in r:
                    continue
                name = f"$d_{wk}_{c}_{t.replace('-', '_')}"
                s.append(f"{name} << EOD")
                for p, v in sorted(((float(k), v) for k, v in r["pcts"].items())):
                    s.append(f"{pct_x(p):.6g} {max(v, 1)}")
                s.append("EOD")
                plots.append(f"{name} using 1:2 with linespoints lw 1.5 pt 7 ps 0.5 lc rgb '{colors.get(t, '#000000')}' "
                             f"title '{SHORT.get(t, t)}'")
            if plots:
                s.append("plot " + ", ".join(plots))
            else:
                s.append("set multiplot next")
    s.append("unset multiplot")
    r = subprocess.run(["gnuplot"], input="\n".join(s) + "\n", text=True, capture_output=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        return False
    return True


def main():
    d = load(sys.argv[1])
    out = sys.argv[2]
    png = os.path.splitext(out)[0] + ".png"
    if not plot(d, png):
        sys.stderr.write("report.py: no plot (gnuplot missing or failed)\n")
    with open(out, "w") as f:
        f.write(Report(d, os.path.basename(png)).render())


if __name__ == "__main__":
    main()

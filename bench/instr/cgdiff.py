#!/usr/bin/env python3
"""Per-request instructions: callgrind totals per function of a run with N2 requests minus a run
with N1, divided by N2 - N1 (start-up, warm-up and shutdown cancel out).
Usage: cgdiff.py OUT_N1 OUT_N2 REQUESTS [TOP]"""
import collections
import re
import subprocess
import sys


def load(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path], capture_output=True, text=True, check=True).stdout
    per_fn = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = m.group(2)
        name = name[4:] if name.startswith("???:") else re.sub(r"^\S*?:", "", name, count=1)
        name = name.replace("(anonymous namespace)", "{anon}")
        name = re.sub(r"\(.*", "", name).replace("{anon}", "(anonymous namespace)")  # no argument lists
        per_fn[name] += int(m.group(1).replace(",", ""))
    return per_fn


a, b, n = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
top = int(sys.argv[4]) if len(sys.argv) > 4 else 30
diff = {k: (b[k] - a[k]) / n for k in set(a) | set(b)}
print(f"user-space instructions per request: {sum(diff.values()):,.0f}\n")
print("| instructions/request | function |\n|--:|---|")
for k, v in sorted(diff.items(), key=lambda kv: -kv[1])[:top]:
    print(f"| {v:,.0f} | `{k[:110]}` |")

#!/usr/bin/env python3
"""Redis CPU of the rate limiter's scripts, without the gateway: admissions and reconciles of one key
with every limit set (as bench/run.sh's limited key), `--inflight` requests running at a time, on a
throwaway redis-server. Prints Redis's own accounting (INFO commandstats): microseconds per script
call and the commands the scripts ran per request.

  python3 bench/micro/limiter_redis.py [--header cache/limiter_scripts.hpp] [--requests 60000]
  git show REV:cache/limiter_scripts.hpp > /tmp/old.hpp && python3 bench/micro/limiter_redis.py --header /tmp/old.hpp

The scripts are put together as cache/limiter.cpp does (the shared parts before each body); headers
of the two earlier layouts are read as they were.
"""
import argparse
import os
import re
import socket
import subprocess
import tempfile
import time

ap = argparse.ArgumentParser()
here = os.path.dirname(os.path.abspath(__file__))
ap.add_argument("--header", default=os.path.join(here, "../../cache/limiter_scripts.hpp"))
ap.add_argument("--requests", type=int, default=60000)
ap.add_argument("--inflight", type=int, default=64)
ap.add_argument("--wrap", default="", help="a command to run redis-server under, e.g. 'valgrind --tool=callgrind'")
ap.add_argument("--limits", default="1000000000,1000000000000,1000000000000,100000,1000000000000,1000000000000000",
                help="rpm,rpd,tpm,max_parallel,token_budget,budget_micro_usd (0: none)")
opt = ap.parse_args()

hdr = open(opt.header).read()
part = lambda n: re.search(n + r' = R"lua\((.*?)\)lua"', hdr, re.S).group(1)
if "kState" in hdr:  # one state hash per key (since 2026-11-25, stop 20)
    admit_text = part("kClock") + part("kState") + part("kAdmitKey")
    reconcile_text = part("kClock") + part("kState") + part("kReconcile")
    admit_keys, reconcile_keys = ["rpm", "rpd", "lim", "par", "used"], ["lim", "par", "used"]
elif "kClock" in hdr:  # running totals in a tpm hash and a reservations hash
    admit_text = part("kClock") + part("kTokens") + part("kReservations") + part("kAdmitKey")
    reconcile_text = part("kClock") + part("kTokens") + part("kReservations") + part("kReconcile")
    admit_keys, reconcile_keys = ["rpm", "rpd", "tok", "par", "used", "rsv"], ["tok", "par", "used", "rsv"]
else:  # whole scripts, summing every bucket and reservation
    admit_text, reconcile_text = part("kAdmitKey"), part("kReconcile")
    admit_keys, reconcile_keys = ["rpm", "rpd", "tpm", "par", "used", "res"], ["tpm", "par", "used", "res"]

s0 = socket.socket()
s0.bind(("127.0.0.1", 0))
port = s0.getsockname()[1]
s0.close()
tmp = tempfile.mkdtemp()
redis = subprocess.Popen(opt.wrap.split() + ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", tmp], stdout=subprocess.DEVNULL)
try:
    for _ in range(600):
        try:
            sock = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.05)
    buf = b""

    def enc(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def parse(i):  # end of the reply starting at i, None if incomplete
        j = buf.find(b"\r\n", i)
        if j < 0:
            return None
        t, line = buf[i:i + 1], buf[i + 1:j]
        if t in (b"+", b"-", b":"):
            return j + 2
        if t == b"$":
            n = int(line)
            return j + 2 if n < 0 else (j + 4 + n if len(buf) >= j + 4 + n else None)
        k = j + 2
        for _ in range(max(int(line), 0)):
            k = parse(k)
            if k is None:
                return None
        return k

    def replies(n):
        global buf
        got = []
        while len(got) < n:
            end = parse(0) if buf else None
            if end is None:
                buf += sock.recv(1 << 20)
                continue
            got.append(buf[:end])
            buf = buf[end:]
        return got

    def call(*args):
        sock.sendall(enc(*args))
        return replies(1)[0]

    sha_a = call("SCRIPT", "LOAD", admit_text).split(b"\r\n")[1].decode()
    sha_r = call("SCRIPT", "LOAD", reconcile_text).split(b"\r\n")[1].decode()
    akeys = ["rl:{k:bench}:" + n for n in admit_keys]
    rkeys = ["rl:{k:bench}:" + n for n in reconcile_keys]
    lim = [int(x) for x in opt.limits.split(",")]
    tpm_on, budgets_on = int(lim[2] > 0), int(lim[4] > 0 or lim[5] > 0)
    admit = lambda i: enc("EVALSHA", sha_a, len(akeys), *akeys, 0, "adm-%d" % i, *lim, 300, 1, 60000)
    reconcile = lambda i: enc("EVALSHA", sha_r, len(rkeys), *rkeys, 0, "adm-%d" % i, 310, 1, tpm_on, budgets_on, 300,
                              int(time.time() * 1000))
    call("CONFIG", "RESETSTAT")
    started = time.time()
    batch = 50
    for i in range(0, opt.requests, batch):
        out = []
        for k in range(i, i + batch):
            out.append(admit(k))
            if k >= opt.inflight:
                out.append(reconcile(k - opt.inflight))
        sock.sendall(b"".join(out))
        replies(len(out))
    elapsed = time.time() - started
    stats = call("INFO", "commandstats").decode()
    per = {}
    for m in re.finditer(r"cmdstat_(\w+):calls=(\d+),usec=(\d+)", stats):
        per[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    calls, usec = per["evalsha"]
    inner = sum(c for name, (c, _) in per.items() if name not in ("evalsha", "config", "info", "script"))
    n = opt.requests
    print(f"header {opt.header}: {n} admissions, {n - opt.inflight} reconciles, {opt.inflight} in flight, {elapsed:.1f} s")
    print(f"script time per request (admission + reconcile): {2 * usec / calls:.1f} µs; "
          f"commands run by the scripts per request: {inner / n:.1f}")
    for name, (c, u) in sorted(per.items(), key=lambda x: -x[1][1]):
        if name not in ("evalsha", "config", "info", "script"):
            print(f"  {name:18} {c / n:6.2f} calls/request {u / n:6.2f} µs/request")
finally:
    redis.terminate()  # SIGTERM: Redis exits cleanly (and a --wrap tool writes its output)
    try:
        redis.wait(timeout=60)
    except subprocess.TimeoutExpired:
        redis.kill()
        redis.wait()

#!/usr/bin/env python3
"""Sequential chat completions over one keep-alive connection, timed.

    client.py sse   PORT KEY MODEL N [WARMUP]   streamed ("stream": true), for time to first byte
    client.py plain PORT KEY MODEL N [WARMUP]   the non-streamed body of bench/post.lua

Sends N sequential `POST /v1/chat/completions` to 127.0.0.1:PORT and prints one JSON line:
status counts and percentiles (microseconds) of
  headers_us  request sent -> response status line and headers received
  first_us    request sent -> first SSE `data:` bytes of the body received (plain: whole body)
  total_us    request sent -> end of the body (the terminating zero-length chunk)
The streamed body carries a "mock" object read by test/mock_upstream/server.mjs (the gateway and
nginx forward it untouched): a few chunks with a small gap, so the first frame arrives on its own.
run.sh uses "plain" under strace to count syscalls per request.
"""
import json
import socket
import sys
import time

CHUNKS = 6
GAP_MS = 2

# The same body as bench/post.lua.
PLAIN_BODY = ('{"model":"%s","messages":['
              '{"role":"system","content":"You are a concise assistant. Answer in one short sentence."},'
              '{"role":"user","content":"What is the capital of France, and what river flows through it? Keep it brief."}'
              '],"temperature":0.2,"max_tokens":64,"top_p":1,"n":1,"stream":false,"user":"bench-user-0001"}')


def request_bytes(mode, port, key, model):
    if mode == "plain":
        body = (PLAIN_BODY % model).encode()
        accept = "application/json"
    else:
        accept = "text/event-stream"
        body = json.dumps({
            "model": model,
            "messages": [{"role": "system", "content": "You are a concise assistant."},
                         {"role": "user", "content": "Stream a short answer, please."}],
            "stream": True,
            "mock": {"chunks": CHUNKS, "chunk_interval_ms": GAP_MS},
        }, separators=(",", ":")).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Accept: {accept}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


class Conn:
    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed mid-response")
        self.buf += data

    def _until(self, sep):
        while sep not in self.buf:
            self._more()
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def _exactly(self, n):
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def exchange(self, req):
        """-> (status, headers_s, first_data_s, total_s); times relative to the send."""
        t0 = time.perf_counter()
        self.sock.sendall(req)
        head = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        t_head = time.perf_counter()
        status = int(head[0].split()[1])
        hdrs = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        t_first = None
        if "content-length" in hdrs:
            body = self._exactly(int(hdrs["content-length"]))
            t_first = time.perf_counter()
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._until(b"\r\n")  # no trailers expected: the empty line
                    break
                data = self._exactly(size)
                self._exactly(2)
                if t_first is None and b"data:" in data:
                    t_first = time.perf_counter()
        else:
            raise RuntimeError(f"response without length or chunked framing: {head}")
        t_end = time.perf_counter()
        if t_first is None:
            t_first = t_end
        if hdrs.get("connection", "").lower() == "close":
            self.sock.close()
            self.__init__(self.port)
        return status, t_head - t0, t_first - t0, t_end - t0


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    mode, port, key, model, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    warmup = int(sys.argv[6]) if len(sys.argv) > 6 else 20
    if mode not in ("sse", "plain"):
        sys.exit(__doc__)
    req = request_bytes(mode, port, key, model)
    conn = Conn(port)
    statuses, heads, firsts, totals = {}, [], [], []
    for i in range(warmup + n):
        status, h, f, t = conn.exchange(req)
        if i < warmup:
            continue
        statuses[status] = statuses.get(status, 0) + 1
        heads.append(h * 1e6)
        firsts.append(f * 1e6)
        totals.append(t * 1e6)
    out = {"mode": mode, "n": n, "statuses": {str(k): v for k, v in statuses.items()}}
    for name, vals in (("headers", heads), ("first", firsts), ("total", totals)):
        for p in (50, 90, 99):
            out[f"{name}_p{p}_us"] = round(pct(vals, p), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

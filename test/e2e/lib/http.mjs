// Minimal raw HTTP/1.1 client over net.connect, for tests that need exact bytes or timing:
// send arbitrary (even malformed) bytes, see the response exactly as framed on the wire
// (status line, headers, chunk sizes), and measure when bytes arrive.
import net from 'node:net';
import { performance } from 'node:perf_hooks';

const CRLF2 = Buffer.from('\r\n\r\n');

export class RawConnection {
  constructor(socket) {
    this.socket = socket;
    this.received = Buffer.alloc(0);
    this.arrivals = []; // {t: ms since the first write (or connect), offset, length}
    this.t0 = performance.now();
    this.firstWriteAt = null;
    this.closed = false;
    this.error = null; // e.g. {code:'ECONNRESET'} when the peer reset the connection
    this._waiters = new Set();
    socket.on('data', (b) => {
      this.arrivals.push({ t: performance.now() - (this.firstWriteAt ?? this.t0), offset: this.received.length, length: b.length });
      this.received = Buffer.concat([this.received, b]);
      this._notify();
    });
    socket.on('error', (e) => { this.error = e; });
    socket.on('close', () => { this.closed = true; this._notify(); });
  }

  _notify() { for (const w of this._waiters) w(); }

  // Resolves once written to the kernel; never rejects (a peer that closed early is a legit outcome,
  // check `error`/`closed` instead).
  write(data) {
    if (this.firstWriteAt == null) this.firstWriteAt = performance.now();
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve(false);
      this.socket.write(data, (err) => resolve(!err));
    });
  }

  end() { this.socket.end(); }
  destroy() { this.socket.destroy(); }
  reset() { this.socket.resetAndDestroy(); } // abort with a TCP RST

  // Wait until pred(received) is true. pred may be a function, a string or a RegExp
  // (matched against the latin1 text so that byte offsets stay meaningful).
  waitFor(pred, timeoutMs = 10_000) {
    const test = typeof pred === 'function' ? pred
      : typeof pred === 'string' ? (b) => b.includes(pred)
      : (b) => pred.test(b.toString('latin1'));
    return new Promise((resolve, reject) => {
      const check = () => {
        if (test(this.received)) { done(); resolve(this.received); } else if (this.closed) {
          done(); reject(Object.assign(new Error(`connection closed before condition (${this.error?.code ?? 'EOF'}); got: ${preview(this.received)}`), { received: this.received }));
        }
      };
      const timer = setTimeout(() => { done(); reject(Object.assign(new Error(`raw waitFor timed out after ${timeoutMs} ms; got: ${preview(this.received)}`), { received: this.received })); }, timeoutMs);
      const done = () => { clearTimeout(timer); this._waiters.delete(check); };
      this._waiters.add(check);
      check();
    });
  }

  waitForClose(timeoutMs = 10_000) {
    return this.waitFor(() => this.closed, timeoutMs).catch((e) => {
      if (this.closed) return this.received;
      throw e;
    });
  }

  // Wait for one complete response (by its framing), or for the connection to close.
  // `head: true` for responses to HEAD requests, which have no body whatever the headers say.
  async waitForResponse({ timeoutMs = 10_000, head = false } = {}) {
    await this.waitFor((b) => this.closed || parseResponse(b, { head })?.complete, timeoutMs).catch((e) => {
      if (!this.closed) throw e;
    });
    const res = parseResponse(this.received, { head });
    if (!res) throw Object.assign(new Error(`no HTTP response (${this.error?.code ?? 'EOF'}); got: ${preview(this.received)}`), { received: this.received, error: this.error });
    return { ...res, ...this.timing(res.headBytes), error: this.error, closed: this.closed };
  }

  // Times (ms since the first write) of the first byte and of the first byte after the head.
  timing(headBytes) {
    const first = this.arrivals[0];
    const body = headBytes == null ? undefined : this.arrivals.find((a) => a.offset + a.length > headBytes);
    return { timeToFirstByte: first?.t, timeToFirstBodyByte: body?.t, arrivals: this.arrivals };
  }
}

function preview(buf) {
  const s = buf.toString('latin1');
  return JSON.stringify(s.length > 400 ? s.slice(0, 400) + '…' : s);
}

export function connect(port, host = '127.0.0.1', { timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host, noDelay: true });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect ${host}:${port} timed out`)); }, timeoutMs);
    socket.once('connect', () => { clearTimeout(timer); resolve(new RawConnection(socket)); });
    socket.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// Build request bytes. Adds Host, Content-Length (when a body is given) and Connection: close
// unless those headers are present (any case). body: string | Buffer | object (sent as JSON).
export function buildRequest(method, path, { headers = {}, body, host = '127.0.0.1' } = {}) {
  const h = { ...headers };
  const has = (name) => Object.keys(h).some((k) => k.toLowerCase() === name);
  if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) {
    body = JSON.stringify(body);
    if (!has('content-type')) h['Content-Type'] = 'application/json';
  }
  const bodyBuf = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
  if (!has('host')) h.Host = host;
  if (body !== undefined && !has('content-length') && !has('transfer-encoding')) h['Content-Length'] = String(bodyBuf.length);
  if (!has('connection')) h.Connection = 'close';
  const head = `${method} ${path} HTTP/1.1\r\n` + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), bodyBuf]);
}

// Decode a chunked body. Returns the chunk payloads as framed on the wire, the joined body,
// whether the terminating 0-chunk (and trailer section) was seen, and bytes consumed.
export function decodeChunked(buf) {
  const chunks = [];
  const sizes = [];
  let pos = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) break;
    const line = buf.subarray(pos, eol).toString('latin1');
    const size = parseInt(line.split(';')[0].trim(), 16);
    if (Number.isNaN(size)) return { chunks, sizes, body: Buffer.concat(chunks), complete: false, malformed: true, consumed: pos };
    if (size === 0) {
      // "0\r\n\r\n", or "0\r\n<trailers>\r\n\r\n": either way the first CRLFCRLF from here ends it.
      const end = buf.indexOf('\r\n\r\n', eol);
      sizes.push(0);
      return { chunks, sizes, body: Buffer.concat(chunks), complete: end >= 0, consumed: end >= 0 ? end + 4 : pos };
    }
    if (buf.length < eol + 2 + size + 2) break;
    chunks.push(buf.subarray(eol + 2, eol + 2 + size));
    sizes.push(size);
    pos = eol + 2 + size + 2;
  }
  return { chunks, sizes, body: Buffer.concat(chunks), complete: false, consumed: pos };
}

// Parse one HTTP/1.1 response from raw bytes (skipping interim 1xx responses).
// Returns null while the head is incomplete. headers: lower-cased names, repeated headers
// joined with ', '; rawHeaders keeps [name, value] pairs exactly as sent.
export function parseResponse(buf, { head = false } = {}) {
  let start = 0;
  for (;;) {
    const end = buf.indexOf(CRLF2, start);
    if (end < 0) return null;
    const lines = buf.subarray(start, end).toString('latin1').split('\r\n');
    const m = lines[0].match(/^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const statusCode = Number(m[2]);
    const rawHeaders = lines.slice(1).map((l) => { const i = l.indexOf(':'); return [l.slice(0, i), l.slice(i + 1).trim()]; });
    const headers = {};
    for (const [k, v] of rawHeaders) {
      const key = k.toLowerCase();
      headers[key] = key in headers ? `${headers[key]}, ${v}` : v;
    }
    const headBytes = end + 4;
    if (statusCode >= 100 && statusCode < 200 && statusCode !== 101) { start = headBytes; continue; }
    const rawBody = buf.subarray(headBytes);
    const res = { httpVersion: m[1], statusCode, statusMessage: m[3] ?? '', headers, rawHeaders, headBytes, rawBody, chunked: false };
    const noBody = head || statusCode === 204 || statusCode === 304;
    if (noBody) return { ...res, body: Buffer.alloc(0), text: '', complete: true };
    if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
      const d = decodeChunked(rawBody);
      return { ...res, chunked: true, chunks: d.chunks, chunkSizes: d.sizes, body: d.body, text: d.body.toString('utf8'), complete: d.complete };
    }
    if (headers['content-length'] !== undefined) {
      const len = Number(headers['content-length']);
      const body = rawBody.subarray(0, len);
      return { ...res, body, text: body.toString('utf8'), complete: rawBody.length >= len };
    }
    return { ...res, body: rawBody, text: rawBody.toString('utf8'), complete: false }; // ends at close
  }
}

// Connect, send `data` (Buffer/string, or an array of parts written with delayMs between),
// and wait for the response. Resolves with the parsed response plus timing, `raw`, `error`.
export async function rawRequest(port, data, { host = '127.0.0.1', timeoutMs = 10_000, delayMs = 0, head = false } = {}) {
  const conn = await connect(port, host);
  try {
    const parts = Array.isArray(data) ? data : [data];
    for (let i = 0; i < parts.length; i++) {
      if (i && delayMs) await new Promise((r) => setTimeout(r, delayMs));
      await conn.write(parts[i]);
    }
    const res = await conn.waitForResponse({ timeoutMs, head });
    return { ...res, raw: conn.received };
  } finally {
    conn.destroy();
  }
}

// Split an SSE body into events: [{event, data, id}] (data lines joined with '\n').
export function parseSSE(text) {
  const out = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (!block.trim()) continue;
    const ev = { event: 'message', data: [], id: undefined };
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'data') ev.data.push(value);
      else if (field === 'event') ev.event = value;
      else if (field === 'id') ev.id = value;
    }
    out.push({ ...ev, data: ev.data.join('\n') });
  }
  return out;
}

// A scriptable raw-TCP HTTP/1.1 upstream, for tests that need an upstream misbehaving at the byte
// level (interim responses, unsolicited bytes on idle connections, FIN or RST after a request,
// oversized heads and chunk lines, odd status lines).
//
//   const up = await startScriptedUpstream((req) => [act.write(httpResponse(200, 'OK', { body: 'hi' }))]);
//   up.onRequest = (req) => ...;   // may be replaced at any time (applies to requests handled later)
//
// For every accepted connection the server waits for complete requests (head + Content-Length or
// chunked body), records each one in up.requests as soon as it is complete, and runs the actions the
// handler returns for it, one request at a time per connection, in order. A handler gets the
// recorded request ({index, conn, seq, method, path, version, headers, rawHeaders, head, body, text,
// json, at}) and returns an array of actions (or a promise of one):
//   act.write(bytes)                    write and wait until flushed to the kernel
//   act.writeSlowly(bytes, ms, n = 1)   n bytes at a time, ms apart
//   act.fill(byte, total, piece = 1 MiB) `total` bytes of `byte`, written piece by piece with back-pressure
//   act.sleep(ms)
//   act.end()                           FIN, then close the socket (later bytes from the peer get an RST;
//                                       nothing more is read or recorded on this connection)
//   act.reset()                         TCP RST at once
//   act.hold()                          answer nothing more on this connection; keep it open (requests
//                                       that still arrive are recorded)
//   act.later(ms, ...actions)           run actions ms from now without blocking this connection: the
//                                       next request is served meanwhile (unsolicited bytes on an idle
//                                       pooled connection, closing it while idle, ...)
// An action sequence stops early when the connection is gone. With { parse: false } nothing is
// parsed: connections are only accepted and their bytes counted (e.g. a TLS handshake that never
// gets an answer).
import net from 'node:net';

const CRLF2 = Buffer.from('\r\n\r\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const act = {
  write: (data) => ({ type: 'write', data: Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1') }),
  writeSlowly: (data, intervalMs, pieceBytes = 1) => ({ type: 'writeSlowly', data: Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1'), intervalMs, pieceBytes }),
  fill: (byte, total, pieceBytes = 1 << 20) => ({ type: 'fill', byte, total, pieceBytes }),
  sleep: (ms) => ({ type: 'sleep', ms }),
  end: () => ({ type: 'end' }),
  reset: () => ({ type: 'reset' }),
  hold: () => ({ type: 'hold' }),
  later: (ms, ...actions) => ({ type: 'later', ms, actions }),
};

// Response bytes. headers: object or [[name, value], ...] (written exactly as given). body adds a
// Content-Length unless one (or Transfer-Encoding) is given, or contentLength: false.
export function httpResponse(status, reason, { headers = {}, body, contentLength = true, version = '1.1' } = {}) {
  const list = Array.isArray(headers) ? [...headers] : Object.entries(headers);
  const has = (n) => list.some(([k]) => k.toLowerCase() === n);
  const bodyBuf = body === undefined ? Buffer.alloc(0)
    : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  if (body !== undefined && contentLength && !has('content-length') && !has('transfer-encoding')) list.push(['Content-Length', String(bodyBuf.length)]);
  const statusLine = reason === null ? `HTTP/${version} ${status}` : `HTTP/${version} ${status} ${reason}`;
  const head = statusLine + '\r\n' + list.map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), bodyBuf]);
}

// A 200 JSON response whose body names the request it answers (its x-request-id, body tag, and
// global index), so a test can tell whose answer a client got.
export function echoBody(req) {
  return JSON.stringify({ object: 'echo', index: req.index, conn: req.conn, seq: req.seq, for: req.headers['x-request-id'] ?? null, tag: req.json?.tag ?? null });
}
export const echoResponse = (req, headers = {}) => httpResponse(200, 'OK', { headers: { 'Content-Type': 'application/json', ...headers }, body: echoBody(req) });
export const echo = (req) => [act.write(echoResponse(req))];

// One chunk of a chunked body, optionally with a chunk extension.
export const chunk = (data, ext = '') => {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}${ext}\r\n`, 'latin1'), b, Buffer.from('\r\n')]);
};

// Parses one request from buf. -> null (incomplete) | {consumed, ...fields} ; throws on garbage.
function parseRequest(buf) {
  const end = buf.indexOf(CRLF2);
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n');
  const m = /^(\S+) (\S+) HTTP\/(\d\.\d)$/.exec(lines[0]);
  if (!m) throw new Error(`bad request line ${JSON.stringify(lines[0])}`);
  const rawHeaders = lines.slice(1).map((l) => { const i = l.indexOf(':'); return [l.slice(0, i), l.slice(i + 1).trim()]; });
  const headers = {};
  for (const [k, v] of rawHeaders) { const key = k.toLowerCase(); headers[key] = key in headers ? `${headers[key]}, ${v}` : v; }
  let pos = end + 4;
  let body;
  if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
    const parts = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', pos);
      if (eol < 0) return null;
      const size = parseInt(buf.subarray(pos, eol).toString('latin1').split(';')[0].trim(), 16);
      if (Number.isNaN(size)) throw new Error('bad chunk size line');
      if (size === 0) {
        const tEnd = buf.indexOf(CRLF2, eol);  // "0\r\n\r\n" or "0\r\n<trailers>\r\n\r\n"
        if (tEnd < 0) return null;
        pos = tEnd + 4;
        break;
      }
      if (buf.length < eol + 2 + size + 2) return null;
      parts.push(buf.subarray(eol + 2, eol + 2 + size));
      pos = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else {
    const len = Number(headers['content-length'] ?? 0);
    if (buf.length < pos + len) return null;
    body = Buffer.from(buf.subarray(pos, pos + len));
    pos += len;
  }
  return { consumed: pos, method: m[1], path: m[2], version: m[3], head, headers, rawHeaders, body };
}

export async function startScriptedUpstream(handler = echo, { parse = true } = {}) {
  const requests = [];
  const connections = [];  // {index, socket, bytesReceived, requests, closed}
  const waiters = new Set();
  const timers = new Set();
  const notify = () => { for (const w of waiters) w(); };
  let closing = false;

  const up = {
    port: 0,
    url: '',
    requests,
    connections,
    onRequest: handler,
    get connectionCount() { return connections.length; },
    // Resolves with fn()'s first truthy value (re-checked on every request, connection and close).
    waitFor(fn, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => { const v = fn(); if (v) { cleanup(); resolve(v); } };
        const timer = setTimeout(() => { cleanup(); reject(new Error(`upstream.waitFor timed out after ${timeoutMs} ms (${requests.length} requests, ${connections.length} connections)`)); }, timeoutMs);
        const cleanup = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    // Requests whose x-request-id header or body tag is `id`.
    requestsFor: (id) => requests.filter((r) => r.headers['x-request-id'] === id || r.json?.tag === id),
    // Destroy every connection (without an answer) but keep listening.
    dropConnections() { for (const c of connections) c.socket.destroy(); },
    close() {
      closing = true;
      for (const t of timers) clearTimeout(t);
      for (const c of connections) c.socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };

  const server = net.createServer((socket) => {
    if (closing) { socket.destroy(); return; }
    socket.setNoDelay(true);
    const conn = { index: connections.length, socket, bytesReceived: 0, requests: [], closed: false, stopped: false, held: false };
    connections.push(conn);
    notify();
    socket.on('error', () => {});
    socket.on('close', () => { conn.closed = true; notify(); });
    let buf = Buffer.alloc(0);
    let chain = Promise.resolve();
    socket.on('data', (b) => {
      conn.bytesReceived += b.length;
      if (!parse || conn.stopped) { notify(); return; }
      buf = buf.length ? Buffer.concat([buf, b]) : b;
      for (;;) {
        let r;
        try { r = parseRequest(buf); } catch (e) { conn.parseError = e.message; conn.stopped = true; socket.destroy(); notify(); return; }
        if (!r) break;
        buf = buf.subarray(r.consumed);
        const { consumed, ...fields } = r;
        const req = { index: requests.length, conn: conn.index, seq: conn.requests.length, ...fields, at: Date.now() };
        req.text = req.body.toString('utf8');
        try { req.json = JSON.parse(req.text); } catch { req.json = undefined; }
        requests.push(req);
        conn.requests.push(req);
        chain = chain.then(() => serve(conn, req));
      }
      notify();
    });
  });

  async function serve(conn, req) {
    if (conn.closed || conn.stopped || conn.held) return;
    let actions;
    try { actions = await up.onRequest(req, conn); } catch (e) { actions = [act.write(httpResponse(500, 'Internal Server Error', { body: `handler threw: ${e.message}` }))]; }
    await run(conn, actions ?? []);
  }

  async function run(conn, actions) {
    const s = conn.socket;
    const write = (data) => new Promise((resolve) => {
      if (s.destroyed || !s.writable) return resolve(false);
      s.write(data, (err) => resolve(!err));
    });
    for (const a of actions) {
      if (conn.closed || s.destroyed || closing) return;
      switch (a.type) {
        case 'write': if (!(await write(a.data))) return; break;
        case 'writeSlowly':
          for (let i = 0; i < a.data.length; i += a.pieceBytes) {
            if (i) await sleep(a.intervalMs);
            if (!(await write(a.data.subarray(i, i + a.pieceBytes)))) return;
          }
          break;
        case 'fill': {
          const piece = Buffer.alloc(Math.min(a.pieceBytes, a.total), a.byte);
          for (let left = a.total; left > 0; left -= piece.length) {
            if (!(await write(left >= piece.length ? piece : piece.subarray(0, left)))) return;
          }
          break;
        }
        case 'sleep': await sleep(a.ms); break;
        case 'end':
          conn.stopped = true;
          s.end(() => s.destroy());
          return;
        case 'reset':
          conn.stopped = true;
          s.resetAndDestroy();
          return;
        case 'hold':
          conn.held = true;
          return;
        case 'later': {
          const t = setTimeout(() => { timers.delete(t); run(conn, a.actions); }, a.ms);
          timers.add(t);
          break;
        }
        default: throw new Error(`unknown action ${a.type}`);
      }
    }
  }

  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  up.port = server.address().port;
  up.url = `http://127.0.0.1:${up.port}/v1`;
  up.server = server;
  return up;
}

// Helpers for the /v1 hot-path tests (proxy.test.mjs, sdk.test.mjs): provisioning through the
// admin API, raw /v1 requests tagged with a request id so the matching upstream request can be
// found in mock.requests, keep-alive framing, and Redis inspection.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { sleep, freePort } from './harness.mjs';
import { connect, buildRequest, decodeChunked, rawRequest } from './http.mjs';

export const UPSTREAM_SECRET = 'sk-upstream-secret-1234';
export const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
export const newId = (tag = 'req') => `${tag}-${crypto.randomBytes(8).toString('hex')}`;

// Admin call that must succeed with `status`.
export async function adminOk(stack, method, path, body, status) {
  const r = await stack.admin(method, path, body);
  if (status !== undefined) assert.equal(r.status, status, `${method} ${path} -> ${r.status}: ${r.text}`);
  else assert.ok(r.status >= 200 && r.status < 300, `${method} ${path} -> ${r.status}: ${r.text}`);
  return r.json;
}

// Provider (pointing at the mock), model gpt-test -> mock-model-v1, and one user key.
export async function provision(stack, { model = 'gpt-test', upstreamModel = 'mock-model-v1', baseUrl } = {}) {
  const provider = await adminOk(stack, 'POST', '/admin/providers', {
    name: `mock-${crypto.randomBytes(4).toString('hex')}`, kind: 'openai', api_key: UPSTREAM_SECRET,
    base_url: baseUrl ?? stack.mock.url,
  }, 201);
  const m = await adminOk(stack, 'POST', '/admin/models', { name: model, provider_id: provider.id, provider_model_name: upstreamModel }, 201);
  const k = await createKey(stack);
  return { provider, model: m, key: k.key, keyId: k.id };
}

export async function createKey(stack, name = 't') {
  const k = await adminOk(stack, 'POST', '/admin/keys', { name }, 201);
  assert.match(k.key ?? '', /^sk-/, `POST /admin/keys returned no sk- key: ${JSON.stringify(k)}`);
  return k;
}

// A port nothing listens on (bound then released).
export const closedPort = freePort;

// One /v1 request over a fresh raw connection. body: object/string/Buffer. Returns the parsed
// response (see http.mjs parseResponse) plus `id` (the X-Request-Id sent) and `json` when parseable.
export async function v1(stack, method, path, { key, body, headers = {}, id = newId(), timeoutMs = 15_000 } = {}) {
  const h = { 'X-Request-Id': id, ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  const res = await rawRequest(stack.gateway.port, buildRequest(method, path, { headers: h, body }), { timeoutMs });
  return withJson({ ...res, id });
}

export function withJson(res) {
  let json;
  try { json = JSON.parse(res.text); } catch { /* not JSON */ }
  return { ...res, json };
}

// The upstream request the mock received for X-Request-Id `id` (waits briefly for it).
export async function upstreamRequest(mock, id, timeoutMs = 3000) {
  return mock.waitFor(() => mock.requests.find((r) => r.headers['x-request-id'] === id), timeoutMs)
    .catch(() => assert.fail(`the mock saw no request with x-request-id ${id}; it saw ${mock.requests.length} requests`));
}

export const sawRequest = (mock, id) => mock.requests.some((r) => r.headers['x-request-id'] === id);

// Status, error shape and code of a gateway-generated error.
export function assertError(res, status, code) {
  const where = `status ${res.statusCode ?? res.status}, body ${res.text}`;
  assert.equal(res.statusCode ?? res.status, status, where);
  const json = res.json ?? (() => { try { return JSON.parse(res.text); } catch { return undefined; } })();
  assert.ok(json && typeof json.error === 'object', `not an OpenAI error body: ${where}`);
  assert.equal(typeof json.error.message, 'string', where);
  assert.ok(json.error.message.length > 0, where);
  assert.equal(typeof json.error.type, 'string', where);
  if (code !== undefined) assert.equal(json.error.code, code, where);
  return json.error;
}

// A keep-alive connection that can carry several request/response exchanges in sequence.
export async function keepAliveConnection(port) {
  const conn = await connect(port);
  return {
    conn,
    async request(method, path, opts = {}) {
      const headers = { Connection: 'keep-alive', ...opts.headers };
      conn.received = Buffer.alloc(0);
      conn.arrivals.length = 0;
      await conn.write(buildRequest(method, path, { ...opts, headers }));
      const res = await conn.waitForResponse({ timeoutMs: opts.timeoutMs ?? 10_000 });
      // Leave bytes beyond this response (there should be none) for the next round.
      const end = res.headBytes + (res.chunked ? decodeChunked(res.rawBody).consumed : res.body.length);
      conn.received = conn.received.subarray(end);
      return withJson(res);
    },
    close: () => conn.destroy(),
  };
}

// TCP connections accepted by the mock upstream from now on.
export function countUpstreamConnections(mock) {
  const counter = { count: 0 };
  const onConn = () => { counter.count++; };
  mock.server.on('connection', onConn);
  counter.stop = () => mock.server.off('connection', onConn);
  return counter;
}

export function redisCli(port, ...args) {
  return new Promise((resolve, reject) => {
    const p = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { out += b; });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`redis-cli ${args.join(' ')}: exit ${code}: ${out}`))));
  });
}

// Poll fn() until it returns a truthy value; fails with `what` and the last value.
export async function eventually(fn, { timeoutMs = 10_000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { last = await fn(); } catch (e) { last = e; }
    if (last && !(last instanceof Error)) return last;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await sleep(intervalMs);
  }
}

// A scripted raw TCP upstream for responses Node's http server cannot produce (close-delimited
// bodies, garbage). respond(socket, requestHead) runs once per request, after its body arrived.
export async function startRawUpstream(respond) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    socket.on('data', (b) => {
      buf = Buffer.concat([buf, b]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      buf = buf.subarray(end + 4 + len);
      respond(socket, head);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

// SSE frames, as the mock would write them, for raw_chunks tests.
export const sseFrame = (obj) => `data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n\n`;


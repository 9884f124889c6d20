// The gateway's foundation: health endpoints, error shapes, limits, request ids, request logs,
// startup validation and graceful shutdown. Needs the gateway binary (LLMGW_BIN or
// build/gateway/llm-gateway).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sleep } from './lib/harness.mjs';
import { connect, rawRequest, buildRequest } from './lib/http.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.stop(); });

// Poll fn() until it returns a truthy value (e.g. a health state change).
async function eventually(fn, timeoutMs = 10_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last?.ok) return last.value;
    if (Date.now() > deadline) throw new Error(`${what} not reached in ${timeoutMs} ms; last: ${JSON.stringify(last?.value ?? last)}`);
    await sleep(100);
  }
}

function assertErrorShape(json, code) {
  assert.deepEqual(Object.keys(json), ['error']);
  assert.deepEqual(Object.keys(json.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof json.error.message, 'string');
  assert.ok(json.error.message.length > 0);
  assert.equal(typeof json.error.type, 'string');
  assert.equal(json.error.param, null);
  assert.equal(json.error.code, code);
}

test('GET /health/live -> 200', async () => {
  const r = await stack.request('GET', '/health/live');
  assert.equal(r.status, 200);
});

test('GET /health/ready -> 200 JSON', async () => {
  const r = await stack.request('GET', '/health/ready');
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(typeof r.json, 'object');
});

test('GET /health reports version, uptime_seconds, db, redis', async () => {
  const r = await stack.request('GET', '/health');
  assert.equal(r.status, 200, r.text);
  assert.equal(typeof r.json.version, 'string');
  assert.ok(r.json.version.length > 0);
  assert.equal(typeof r.json.uptime_seconds, 'number');
  assert.ok(r.json.uptime_seconds >= 0);
  assert.ok('db' in r.json, r.text);
  assert.ok('redis' in r.json, r.text);
});

test('unknown route -> 404 with the OpenAI error shape, code not_found', async () => {
  const r = await stack.request('POST', '/nope', { body: {} });
  assert.equal(r.status, 404);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  assertErrorShape(r.json, 'not_found');
});

test('wrong method -> 405 with Allow, code method_not_allowed', async () => {
  const r = await stack.request('DELETE', '/health/live');
  assert.equal(r.status, 405);
  assert.match(r.headers.get('allow') ?? '', /\bGET\b/);
  assertErrorShape(r.json, 'method_not_allowed');
});

test('20 MiB request body -> 413 request_too_large', async () => {
  const size = 20 * 1024 * 1024;
  const conn = await connect(stack.gateway.port);
  await conn.write(buildRequest('POST', '/v1/chat/completions', {
    headers: { 'Content-Type': 'application/json', 'Content-Length': String(size), Authorization: 'Bearer sk-test-413' },
  }));
  // Stream the body until the gateway answers (it may do so before reading it) or hangs up.
  const piece = Buffer.alloc(256 * 1024, 0x20);
  for (let sent = 0; sent < size && !conn.closed && !conn.received.length; sent += piece.length) {
    if (!(await conn.write(piece))) break;
  }
  const res = await conn.waitForResponse({ timeoutMs: 15_000 });
  conn.destroy();
  assert.equal(res.statusCode, 413, res.text);
  assertErrorShape(JSON.parse(res.text), 'request_too_large');
});

test('request headers over 64 KiB -> 431', async () => {
  const res = await rawRequest(stack.gateway.port, buildRequest('GET', '/health/live', {
    headers: { 'X-Big': 'a'.repeat(70 * 1024) },
  }));
  assert.equal(res.statusCode, 431, res.text);
});

test('X-Request-Id is echoed, and generated when absent', async () => {
  const r = await stack.request('GET', '/health/live', { headers: { 'X-Request-Id': 'abc-123' } });
  assert.equal(r.headers.get('x-request-id'), 'abc-123');
  const a = await stack.request('GET', '/health/live');
  const b = await stack.request('GET', '/health/live');
  assert.ok((a.headers.get('x-request-id') ?? '').length >= 8, 'generated id present');
  assert.notEqual(a.headers.get('x-request-id'), b.headers.get('x-request-id'));
});

test('request log line is JSON and never contains the admin key', async () => {
  const id = `log-check-${Date.now()}`;
  const r = await stack.request('GET', '/v1/models', {
    headers: { 'X-Request-Id': id, Authorization: `Bearer ${stack.gateway.adminKey}` },
  });
  const line = await stack.gateway.waitForLog((o) => o.request_id === id);
  assert.equal(line.method, 'GET');
  assert.equal(line.path, '/v1/models');
  assert.equal(line.status, r.status);
  assert.equal(typeof line.duration_ms, 'number');
  assert.ok(line.duration_ms >= 0);
  for (const l of stack.gateway.logs()) {
    assert.ok(!l.includes(stack.gateway.adminKey), `admin key leaked: ${l}`);
    assert.ok(!l.includes(stack.gateway.encryptionKey), `encryption key leaked: ${l}`);
  }
});

test('/health/ready -> 503 naming redis while redis is down, 200 again after', async () => {
  await stack.redis.stop();
  try {
    const down = await eventually(async () => {
      const r = await stack.request('GET', '/health/ready');
      return { ok: r.status === 503, value: r };
    }, 15_000, 'ready=503');
    assert.match(down.text, /redis/i);
  } finally {
    await stack.redis.start();
  }
  await eventually(async () => {
    const r = await stack.request('GET', '/health/ready');
    return { ok: r.status === 200, value: r.text };
  }, 15_000, 'ready=200 after redis restart');
});

test('startup without ADMIN_KEY or with a short one exits non-zero with a message', async () => {
  for (const key of [undefined, 'short-key-15chr']) {
    const r = await stack.runGatewayOnce({ ADMIN_KEY: key });
    assert.equal(r.timedOut, false, `gateway kept running with ADMIN_KEY=${key}`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ADMIN_KEY/, `stderr: ${r.stderr}`);
  }
});

// Last: it stops the gateway.
test('SIGTERM -> exit code 0 within the grace period', async () => {
  const t0 = Date.now();
  const e = await stack.gateway.stop('SIGTERM', { timeoutMs: 15_000 });
  assert.deepEqual(e, { code: 0, signal: null });
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
});

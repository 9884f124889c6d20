// Hardening: model names, caches and the load they put on PostgreSQL. Defects covered:
// I1 a body whose "model" key is written with an escape is re-serialized (0.7 -> 7E-1, big integers
//    change) instead of spliced; model names with control characters (\u0000 truncates to another
//    model's name) and over 256 bytes are looked up; GET /v1/models/%ff%fe reaches PostgreSQL as
//    invalid UTF-8 ("db error", 5xx).
// I2 caches bounded by entries, not bytes: every unknown model name is remembered whatever its size
//    (2 MiB names: +40 MiB per 20 requests); (20,000 short unknown names: keep).
// I3 a flood of random wrong keys goes to PostgreSQL once per request even while Redis is up and
//    warm (with PostgreSQL stopped they get 503 instead of 401); (Redis down: keep).
// I4 /health/ready runs SELECT 1 on PostgreSQL on every call; (Redis checked live: keep).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startStack, sleep } from './lib/harness.mjs';
import { buildRequest } from './lib/http.mjs';
import { provision, createKey, v1, upstreamRequest, sawRequest, assertError, eventually } from './lib/proxy_helpers.mjs';
import { restartGateway, SETTLE_MS, smallAsanQuarantine, exchange, show, rssKiB, psql, flood, tally, v1Post, jsonSince } from './lib/hardening_helpers.mjs';

let stack, key;
before(async () => {
  stack = await startStack({ env: smallAsanQuarantine() });
  await sleep(SETTLE_MS);
  ({ key } = await provision(stack));
});
after(async () => { await stack?.stop(); });

const post = (body, opts = {}) => v1(stack, 'POST', '/v1/chat/completions', { key, body, headers: { 'Content-Type': 'application/json' }, ...opts });

describe('I1 model names', () => {
  test('an escaped "model" key routes, and only the model value is replaced (every other byte kept)', async () => {
    const raw = '{"mod\\u0065l":"gpt-test","temperature":0.7,"seed":12345678901234567890,"x":1.0e2}';
    const expected = raw.replace('"gpt-test"', '"mock-model-v1"');
    const r = await post(raw);
    assert.equal(r.statusCode, 200, r.text);
    const up = await upstreamRequest(stack.mock, r.id);
    assert.equal(up.body, expected, 'the upstream body is not the client body with only the model value replaced');
  });

  for (const [what, esc] of [['\\u0000', '\\u0000'], ['\\u0001', '\\u0001'], ['\\n', '\\n'], ['\\u001f', '\\u001f']]) {
    test(`a model name containing ${what} -> 400 invalid_request, param model, upstream not called`, async () => {
      const r = await post(`{"model":"gpt-test${esc}x","messages":[]}`);
      const err = assertError(r, 400, 'invalid_request');
      assert.equal(err.param, 'model', r.text);
      assert.equal(sawRequest(stack.mock, r.id), false);
    });
  }

  test('a model name of 257 bytes -> 400; of 256 bytes -> an ordinary lookup (404 model_not_found)', async () => {
    const long = await post({ model: 'm'.repeat(257), messages: [] });
    assertError(long, 400);
    assert.equal(sawRequest(stack.mock, long.id), false);
    assertError(await post({ model: 'm'.repeat(256), messages: [] }), 404, 'model_not_found');
  });

  test('GET /v1/models/%ff%fe -> 404 or 400, never 5xx, and no "db error" log line', async () => {
    const mark = stack.gateway.logs().length;
    const r = await v1(stack, 'GET', '/v1/models/%ff%fe', { key });
    assert.ok([400, 404].includes(r.statusCode), `status ${r.statusCode}: ${r.text}`);
    assertError(r, r.statusCode);
    await sleep(200);
    const dbErrors = jsonSince(stack, mark).filter((l) => l.msg === 'db error');
    assert.equal(dbErrors.length, 0, `db error logged: ${JSON.stringify(dbErrors)}`);
  });
});

describe('I2 bounded caches', () => {
  before(async () => { await restartGateway(stack, { MAX_BODY_BYTES: String(8 << 20) }); });
  after(async () => { await restartGateway(stack); });
  const rss = () => rssKiB(stack.pids().gateway);

  test('30 distinct unknown model names of 2 MiB -> each 400, VmRSS afterwards +< 20 MiB', async () => {
    const big = (c, i) => JSON.stringify({ model: `${c}${i}`.padEnd(2 << 20, c), messages: [] });
    // Warm-up: bodies of the same size (padding elsewhere), so buffers of that size exist already.
    for (let i = 0; i < 3; i++) {
      const r = await exchange(stack.gateway.port, v1Post('/v1/chat/completions', { key, body: JSON.stringify({ model: 'warm-unknown', messages: [], pad: 'p'.repeat(2 << 20) }) }), { timeoutMs: 10_000 });
      assert.equal(r.res?.statusCode, 404, show(r));
    }
    await sleep(200);
    const before = rss();
    const statuses = [];
    for (let i = 0; i < 30; i++) {
      const r = await exchange(stack.gateway.port, v1Post('/v1/chat/completions', { key, body: big('n', i) }), { timeoutMs: 10_000 });
      statuses.push(r.res?.statusCode ?? null);
    }
    await sleep(200);
    const grew = rss() - before;
    assert.ok(statuses.every((s) => s === 400), `statuses: ${JSON.stringify(statuses)} (VmRSS +${grew} KiB)`);
    assert.ok(grew < 20 * 1024, `VmRSS grew by ${grew} KiB after 30 unknown 2 MiB model names`);
  });

  test('keep: 20,000 distinct unknown model names of 200 bytes -> all 404, VmRSS +< 30 MiB', async () => {
    const name = (i) => `unknown-${i}-`.padEnd(200, 'z');
    const req = (i) => v1Post('/v1/chat/completions', { key, keepAlive: true, body: `{"model":"${name(i)}","messages":[]}` });
    await flood(stack.gateway.port, 200, (i) => req(1_000_000 + i));  // warm-up: connections, buffers
    const before = rss();
    const results = await flood(stack.gateway.port, 20_000, req, { connections: 32 });
    await sleep(200);
    const grew = rss() - before;
    const t = tally(results);
    assert.deepEqual(t, { '404 model_not_found': 20_000 }, `results: ${JSON.stringify(t)} (VmRSS +${grew} KiB)`);
    assert.ok(grew < 30 * 1024, `VmRSS grew by ${grew} KiB after 20,000 unknown model names`);
  });
});

describe('I3 wrong keys and PostgreSQL', () => {
  const wrong = () => `sk-${crypto.randomBytes(24).toString('hex')}`;
  const chatReq = (k) => v1Post('/v1/chat/completions', { key: k, keepAlive: true, body: { model: 'gpt-test', messages: [] } });

  test('with Redis up and warm, 2,000 random wrong keys get 401 with PostgreSQL stopped; the valid key 200', async () => {
    const fresh = (await createKey(stack, 'flood-survivor')).key;
    const warm = await post({ model: 'gpt-test', messages: [] }, { key: fresh });
    assert.equal(warm.statusCode, 200, warm.text);
    await stack.pg.stop();
    try {
      const results = await flood(stack.gateway.port, 2000, () => chatReq(wrong()), { connections: 32 });
      assert.deepEqual(tally(results), { '401 invalid_api_key': 2000 }, 'wrong keys must be refused from Redis, without PostgreSQL');
      await sleep(1000);  // past the in-process "recently valid" window: the valid key is checked in Redis
      const ok = await post({ model: 'gpt-test', messages: [] }, { key: fresh });
      assert.equal(ok.statusCode, 200, ok.text);
    } finally {
      await stack.pg.start();
      await restartGateway(stack);  // a fresh database pool for the tests that follow
    }
  });

  test('keep: with Redis down and PostgreSQL up, wrong keys get 401 and the valid key 200', async () => {
    await stack.redis.stop();
    try {
      const results = await flood(stack.gateway.port, 50, () => chatReq(wrong()), { connections: 8 });
      assert.deepEqual(tally(results), { '401 invalid_api_key': 50 });
      const ok = await post({ model: 'gpt-test', messages: [] });
      assert.equal(ok.statusCode, 200, ok.text);
    } finally {
      await stack.redis.start();
    }
  });
});

describe('I4 /health/ready', () => {
  const pgLog = () => path.join(stack.dir, 'pg.log');
  // Logs a marker statement and waits until it shows in pg.log; -> the log's size after it.
  async function pgMark(tag) {
    const marker = `llmgw_mark_${tag}_${crypto.randomBytes(4).toString('hex')}`;
    await psql(stack, `SELECT '${marker}'`);
    await eventually(() => fs.readFileSync(pgLog(), 'utf8').includes(marker), { timeoutMs: 5000, intervalMs: 50, what: `marker ${marker} in pg.log` });
    return fs.statSync(pgLog()).size;
  }

  test('50 calls within ~1 s run SELECT 1 at most 3 times', async () => {
    // Redis was restarted by the previous tests: wait until the gateway is ready again.
    await eventually(async () => (await exchange(stack.gateway.port, buildRequest('GET', '/health/ready'), { timeoutMs: 3000 })).res?.statusCode === 200,
      { timeoutMs: 10_000, intervalMs: 200, what: '/health/ready 200' });
    await psql(stack, "ALTER SYSTEM SET log_statement = 'all'");
    await psql(stack, 'SELECT pg_reload_conf()');
    try {
      const from = await pgMark('start');
      const statuses = [];
      const t0 = Date.now();
      for (let i = 0; i < 50; i++) {
        statuses.push((await exchange(stack.gateway.port, buildRequest('GET', '/health/ready'), { timeoutMs: 3000 })).res?.statusCode);
        await sleep(Math.max(0, t0 + (i + 1) * 20 - Date.now()));
      }
      const to = await pgMark('end');
      const text = fs.readFileSync(pgLog()).subarray(from, to).toString('utf8');
      const selects = text.split('\n').filter((l) => /(statement|execute [^:]*): SELECT 1;?\s*$/i.test(l));
      assert.deepEqual(statuses, statuses.map(() => 200), `statuses ${JSON.stringify(statuses)}`);
      assert.ok(selects.length <= 3, `${selects.length} SELECT 1 statements for 50 /health/ready calls in ${Date.now() - t0} ms`);
    } finally {
      await psql(stack, 'ALTER SYSTEM RESET log_statement');
      await psql(stack, 'SELECT pg_reload_conf()');
    }
  });

  test('keep: Redis is checked live: the first /health/ready after Redis stops is 503 (within 1.2 s)', async () => {
    const ok = await exchange(stack.gateway.port, buildRequest('GET', '/health/ready'), { timeoutMs: 3000 });
    assert.equal(ok.res?.statusCode, 200, show(ok));
    await stack.redis.stop();
    try {
      const t0 = Date.now();
      const r = await exchange(stack.gateway.port, buildRequest('GET', '/health/ready'), { timeoutMs: 3000 });
      const took = Date.now() - t0;
      assert.equal(r.res?.statusCode, 503, show(r));
      assert.ok(took < 1200, `503 after ${took} ms`);
    } finally {
      await stack.redis.start();
    }
  });
});

// Per-key rate limits and budgets, per-provider limits, end to end against real PostgreSQL, Redis,
// the mock upstream and the gateway binary: rpm shared exactly by two gateway processes, the
// x-ratelimit-* headers (ours replace the provider's for limited keys only), max_parallel checked
// at the upstream, token budgets (sequential, 200 concurrent in waves, include_usage:false streams,
// cut streams charged their estimate), budget_usd from model and route prices, tpm corrected to
// real usage, leases of a SIGKILLed gateway expiring, rpd across midnight UTC (shifted clock),
// provider rpd/rpm skipping routes, the Anthropic error shape, metrics, and the per-process
// fallback while Redis is down. Every test has its own key (and model), so all but the Redis one
// run concurrently.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack, sleep } from './lib/harness.mjs';
import { startMockUpstream } from '../mock_upstream/server.mjs';
import { adminOk, eventually } from './lib/proxy_helpers.mjs';
import { startExtraGateway, redisRaw } from './lib/admin_helpers.mjs';
import { buildRequest, rawRequest } from './lib/http.mjs';

const T = { timeout: 60_000 };
const DAY_MS = 86_400_000;
const uniq = (p) => `${p}-${crypto.randomBytes(4).toString('hex')}`;

let stack, provider;
const extras = [];
const mocks = [];

// Gateways this file starts besides the stack's are killed even if the process dies early.
process.on('exit', () => { for (const g of extras) { try { g.proc.kill('SIGKILL'); } catch { /* gone */ } } });

before(async () => {
  stack = await startStack();
  provider = await adminOk(stack, 'POST', '/admin/providers', { name: uniq('lim'), kind: 'openai', api_key: 'sk-up', base_url: stack.mock.url }, 201);
});
after(async () => {
  for (const g of extras) await g.stop().catch(() => {});
  for (const m of mocks) await m.close().catch(() => {});
  await stack?.stop();
});

async function extraGateway(env = {}) {
  const g = await startExtraGateway(stack, { env });
  extras.push(g);
  return g;
}
async function mock(defaults = {}) {
  const m = await startMockUpstream({ defaults });
  mocks.push(m);
  return m;
}
async function newProvider(baseUrl, extra = {}, kind = 'openai') {
  return adminOk(stack, 'POST', '/admin/providers', { name: uniq('p'), kind, api_key: 'sk-up', base_url: baseUrl, ...extra }, 201);
}
// A model of its own, so a test can pick its upstream requests out of a shared mock by model name.
async function newModel({ providerId = provider.id, pricing } = {}) {
  const name = uniq('m');
  const m = await adminOk(stack, 'POST', '/admin/models', {
    name, provider_id: providerId, provider_model_name: `up-${name}`, ...(pricing ? { pricing } : {}),
  }, 201);
  return { name, id: m.id, upstream: `up-${name}` };
}
async function newKey(limits = {}) {
  const k = await adminOk(stack, 'POST', '/admin/keys', { name: uniq('k'), ...limits }, 201);
  for (const [f, v] of Object.entries(limits)) assert.equal(k[f], v, `POST /admin/keys echoes ${f}: ${JSON.stringify(k)}`);
  return { key: k.key, id: k.id };
}
const upstreamHits = (m, model) => m.requests.filter((r) => r.json?.model === model.upstream).length;

// One request through a gateway (fetch). body: object or exact string.
async function call(base, key, body, { path = '/v1/chat/completions', headers = {} } = {}) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, h: (n) => res.headers.get(n), text, json };
}
const chat = (model, extra = {}) => ({ model: model.name, messages: [{ role: 'user', content: 'hi' }], ...extra });

// What the gateway reserves for a request before its usage is known: body bytes / 4 (rounded
// up) plus max_tokens (256 when unset). `body` is the exact string sent.
const estimate = (body) => Math.floor((Buffer.byteLength(body) + 3) / 4) + (JSON.parse(body).max_tokens ?? 256);

// "20ms", "1s", "59.969s", "6m0s", "1h2m3s" -> ms (null when malformed).
function parseReset(s) {
  if (typeof s !== 'string') return null;
  let m = /^(\d+)ms$/.exec(s);
  if (m) return Number(m[1]);
  m = /^(?:(\d+)h)?(?:(\d+)m)?(\d+(?:\.\d{1,3})?)s$/.exec(s);
  if (!m) return null;
  return (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60) * 1000 + Math.round(Number(m[3]) * 1000);
}

// A 429 of ours, OpenAI shape: rate_limit_exceeded (type "requests", an integer Retry-After within
// [min, max]) or insufficient_quota (no Retry-After).
function assertRefused(r, code, { min = 1, max = 60 } = {}) {
  const where = `HTTP ${r.status} ${r.text}`;
  assert.equal(r.status, 429, where);
  assert.match(r.h('content-type') ?? '', /^application\/json/, where);
  assert.deepEqual(Object.keys(r.json ?? {}), ['error'], where);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type'], where);
  assert.equal(r.json.error.code, code, where);
  assert.equal(r.json.error.param, null, where);
  assert.ok(r.json.error.message.length > 0, where);
  if (code === 'rate_limit_exceeded') {
    assert.equal(r.json.error.type, 'requests', where);
    const ra = r.h('retry-after');
    assert.match(ra ?? '', /^\d+$/, `Retry-After ${ra}: ${where}`);
    assert.ok(Number(ra) >= min && Number(ra) <= max, `Retry-After ${ra} not in [${min}, ${max}]`);
    return Number(ra);
  }
  assert.equal(r.json.error.type, 'insufficient_quota', where);
  assert.equal(r.h('retry-after'), null, 'a spent budget does not refill: no Retry-After');
  return null;
}

// The x-ratelimit-*-requests trio: limit and remaining exactly, reset within [lo, hi] ms.
function assertRequestHeaders(r, limit, remaining, [lo, hi]) {
  assert.equal(r.h('x-ratelimit-limit-requests'), String(limit));
  assert.equal(r.h('x-ratelimit-remaining-requests'), String(remaining));
  const reset = parseReset(r.h('x-ratelimit-reset-requests'));
  assert.ok(reset !== null && reset >= lo && reset <= hi, `x-ratelimit-reset-requests ${r.h('x-ratelimit-reset-requests')} not in [${lo}, ${hi}] ms`);
}

async function budgetOf(keyId) {
  const k = await adminOk(stack, 'GET', `/admin/keys/${keyId}`, undefined, 200);
  return k.budget;
}

// Prometheus text -> value of one series (exact name and labels), or undefined.
async function metricsOf(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  return (series) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
}
const health = async (base, p = '/health') => { const r = await fetch(base + p); return { status: r.status, json: await r.json() }; };

// Redis keys of the limiter for a key id (KEYS on a test Redis is fine).
const rlKeys = (id, prefix = 'llmgw:') => redisRaw(stack, 'KEYS', `${prefix}rl:{k:${id}}:*`).split('\n').filter(Boolean).sort();

// Not within `ms` of a UTC midnight (tests that count per day would straddle two days).
async function awayFromMidnight(ms = 15_000) {
  const left = DAY_MS - (Date.now() % DAY_MS);
  if (left < ms) await sleep(left + 500);
}

describe('with Redis', { concurrency: true }, () => {
  test('1. rpm=50 shared by two gateway processes: of 200 concurrent requests exactly 50 pass', T, async () => {
    const g2 = await extraGateway();
    const model = await newModel();
    const k = await newKey({ rpm: 50 });
    const body = JSON.stringify(chat(model));
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => call(i % 2 ? g2.url : stack.gateway.url, k.key, body)));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    assert.equal(ok.length, 50, `statuses: ${JSON.stringify(results.map((r) => r.status))}`);
    assert.equal(refused.length, 150);
    // Each admission saw the count after it: across both processes, remaining 49..0 once each.
    assert.deepEqual(ok.map((r) => Number(r.h('x-ratelimit-remaining-requests'))).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
    for (const r of ok) assert.equal(r.h('x-ratelimit-limit-requests'), '50');
    for (const r of refused) {
      assertRefused(r, 'rate_limit_exceeded', { min: 55, max: 60 }); // the window's oldest request is a moment old
      assert.equal(r.h('x-ratelimit-remaining-requests'), '0');
    }
    assert.equal(upstreamHits(stack.mock, model), 50, 'refused requests never reach the upstream');
    await g2.stop();
  });

  test('2. rpm=5: five back-to-back pass with remaining 4..0, the sixth is 429 with Retry-After and the same headers', T, async () => {
    const model = await newModel();
    const k = await newKey({ rpm: 5 });
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) {
      const r = await call(stack.gateway.url, k.key, chat(model));
      assert.equal(r.status, 200, r.text);
      // The window is the oldest request + 60 s: "1m0s" for the first, then just under.
      assertRequestHeaders(r, 5, 4 - i, [60_000 - (Date.now() - t0) - 1000, 60_000]);
      assert.equal(r.h('x-ratelimit-limit-tokens'), null, 'no tpm: no tokens trio (the provider\'s is dropped)');
      assert.equal(r.h('x-llm-budget-remaining-tokens'), null);
      assert.equal(r.h('retry-after'), null);
    }
    const r = await call(stack.gateway.url, k.key, chat(model));
    const ra = assertRefused(r, 'rate_limit_exceeded', { min: 55, max: 60 });
    assert.match(r.json.error.message, /requests per minute \(rpm\): limit 5/);
    assertRequestHeaders(r, 5, 0, [(ra - 1) * 1000, ra * 1000]);
    assert.equal(upstreamHits(stack.mock, model), 5);
  });

  test('3. max_parallel=3 with a slow upstream: of 10 concurrent exactly 3 pass, never more than 3 in flight upstream; then new ones pass', T, async () => {
    const m = await mock({ first_byte_delay_ms: 1500 });
    let inFlight = 0;
    let maxInFlight = 0;
    m.server.on('request', (req, res) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      res.on('close', () => { inFlight--; });
    });
    const model = await newModel({ providerId: (await newProvider(m.url)).id });
    const k = await newKey({ max_parallel: 3 });
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 10 }, () => call(stack.gateway.url, k.key, chat(model)).then((r) => ({ ...r, ms: Date.now() - t0 }))));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    assert.equal(ok.length, 3, `statuses: ${results.map((r) => r.status)}`);
    for (const r of ok) assert.ok(r.ms >= 1500, `a passing request took ${r.ms} ms`);
    for (const r of refused) {
      assert.equal(assertRefused(r, 'rate_limit_exceeded', { min: 1, max: 1 }), 1);
      assert.match(r.json.error.message, /max_parallel 3/);
      assert.ok(r.ms < 1500, `refused at once, not after ${r.ms} ms`);
    }
    assert.equal(maxInFlight, 3, 'in flight at the upstream');
    assert.equal(inFlight, 0);
    // The slots are free again the moment the answers are complete.
    m.setDefault({ first_byte_delay_ms: 300 });
    const again = await Promise.all(Array.from({ length: 3 }, () => call(stack.gateway.url, k.key, chat(model))));
    assert.deepEqual(again.map((r) => r.status), [200, 200, 200]);
    assert.equal(maxInFlight, 3);
    assert.equal(m.requests.length, 6);
  });

  test('4. token_budget=30, 18 tokens per answer: two pass, the third is 429 insufficient_quota; reset_usage admits again', T, async () => {
    const m = await mock({ usage: { prompt_tokens: 10, completion_tokens: 8 } });
    const model = await newModel({ providerId: (await newProvider(m.url)).id });
    const k = await newKey({ token_budget: 30 });
    const body = JSON.stringify(chat(model, { max_tokens: 5 }));
    const est = estimate(body);
    // Admission reserves min(estimate, what is left); the header says what is left after that.
    const r1 = await call(stack.gateway.url, k.key, body);
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.json.usage.total_tokens, 18);
    assert.equal(r1.h('x-llm-budget-remaining-tokens'), String(Math.max(0, 30 - Math.min(est, 30))));
    assert.equal(r1.h('x-ratelimit-limit-requests'), null, 'a budget alone has no request trio');
    const r2 = await call(stack.gateway.url, k.key, body);
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.h('x-llm-budget-remaining-tokens'), String(Math.max(0, 12 - Math.min(est, 12))));
    const r3 = await call(stack.gateway.url, k.key, body);
    assertRefused(r3, 'insufficient_quota');
    assert.match(r3.json.error.message, /token budget \(30 tokens\)/);
    assert.equal(r3.h('x-llm-budget-remaining-tokens'), '0');
    assert.equal(m.requests.length, 2);
    assert.deepEqual(await budgetOf(k.id), { tokens_used: 36, usd_used: 0, tokens_left: 0 });

    const put = await adminOk(stack, 'PUT', `/admin/keys/${k.id}`, { reset_usage: true }, 200);
    assert.equal(put.token_budget, 30);
    assert.deepEqual(await budgetOf(k.id), { tokens_used: 0, usd_used: 0, tokens_left: 30 });
    const r4 = await call(stack.gateway.url, k.key, body);
    assert.equal(r4.status, 200, r4.text);
    assert.deepEqual(await budgetOf(k.id), { tokens_used: 18, usd_used: 0, tokens_left: 12 });
  });

  test('5. token budget under 200 concurrent requests, in waves: admissions follow the reservations exactly, the overrun is one request\'s excess', T, async () => {
    const USAGE = 30; // every answer: 20 + 10 tokens, never more than the estimate
    const BUDGET = 1000;
    const m = await mock({ first_byte_delay_ms: 2000, usage: { prompt_tokens: 20, completion_tokens: 10 } });
    const model = await newModel({ providerId: (await newProvider(m.url)).id });
    const k = await newKey({ token_budget: BUDGET });
    const body = JSON.stringify(chat(model, { max_tokens: 20, messages: [{ role: 'user', content: 'tell me something' }] }));
    const est = estimate(body);
    assert.ok(est >= USAGE && est * 10 < BUDGET, `estimate ${est}`);
    let used = 0;
    let lastReserve = 0;
    for (let wave = 1; ; wave++) {
      // Every admission of a wave happens before its first answer (2 s away): each reserves
      // min(estimate, what is left) while used + reserved < budget.
      let expected = 0;
      let reserved = 0;
      while (used + reserved < BUDGET && expected < 200) {
        lastReserve = Math.min(est, BUDGET - used - reserved);
        reserved += lastReserve;
        expected++;
      }
      const results = await Promise.all(Array.from({ length: 200 }, () => call(stack.gateway.url, k.key, body)));
      const ok = results.filter((r) => r.status === 200).length;
      assert.equal(ok, expected, `wave ${wave}: passed`);
      for (const r of results.filter((x) => x.status !== 200)) assertRefused(r, 'insufficient_quota');
      used += expected * USAGE;
      assert.equal((await budgetOf(k.id)).tokens_used, used, `wave ${wave}: tokens used`);
      if (expected === 0) break;
      assert.ok(wave < 10, 'the budget must run out');
    }
    // Reservations bound the overrun by the last admitted request's usage beyond its reservation.
    assert.ok(used > BUDGET, `the plan ends just past the budget (${used})`);
    assert.equal(used - BUDGET, USAGE - lastReserve);
    assert.deepEqual(await budgetOf(k.id), { tokens_used: used, usd_used: 0, tokens_left: 0 });
  });

  test('6. budget_usd with prices: $0.004 a request, budget $0.01 -> three pass (0, 0.004, 0.008), the fourth is insufficient_quota; a route\'s prices win over the model\'s', T, async () => {
    const m = await mock({ usage: { prompt_tokens: 1000, completion_tokens: 500 } });
    const p = await newProvider(m.url);
    const model = await newModel({ providerId: p.id, pricing: { input: 2, output: 4 } }); // 1000 x 2 + 500 x 4 per 1M = $0.004
    const k = await newKey({ budget_usd: 0.01 });
    const body = JSON.stringify(chat(model));
    const estMicro = estimate(body) * 4; // the dearer price
    let used = 0;
    for (let i = 0; i < 3; i++) {
      const r = await call(stack.gateway.url, k.key, body);
      assert.equal(r.status, 200, r.text);
      const left = 10_000 - used - Math.min(estMicro, 10_000 - used);
      assert.equal(r.h('x-llm-budget-remaining-usd'), `0.${String(left).padStart(6, '0')}`);
      assert.equal(r.h('x-llm-budget-remaining-tokens'), null);
      used += 4000;
    }
    const r4 = await call(stack.gateway.url, k.key, body);
    assertRefused(r4, 'insufficient_quota');
    assert.match(r4.json.error.message, /budget \(\$0\.01\)/);
    assert.equal(r4.h('x-llm-budget-remaining-usd'), '0.000000');
    assert.equal(m.requests.length, 3);
    const b = await budgetOf(k.id);
    assert.equal(b.tokens_used, 4500);
    assert.ok(Math.abs(b.usd_used - 0.012) < 1e-9, JSON.stringify(b));
    assert.equal(b.usd_left, 0);
    assert.equal(b.tokens_left, undefined);

    // The same model with the route priced at twice the model: $0.008 a request -> two pass.
    const got = await adminOk(stack, 'GET', `/admin/models/${model.id}`, undefined, 200);
    await adminOk(stack, 'PUT', `/admin/models/${model.id}/routes/${got.routes[0].id}`, { pricing: { input: 4, output: 8 } }, 200);
    const k2 = await newKey({ budget_usd: 0.01 });
    assert.equal((await call(stack.gateway.url, k2.key, body)).status, 200);
    assert.equal((await call(stack.gateway.url, k2.key, body)).status, 200);
    assertRefused(await call(stack.gateway.url, k2.key, body), 'insufficient_quota');
    const b2 = await budgetOf(k2.id);
    assert.ok(Math.abs(b2.usd_used - 0.016) < 1e-9, JSON.stringify(b2));
  });

  test('7. the parallel slot of a SIGKILLed gateway expires with its lease (LIMIT_LEASE_SECONDS=2), renewed while it lived', T, async () => {
    const m = await mock();
    const model = await newModel({ providerId: (await newProvider(m.url)).id });
    const k = await newKey({ max_parallel: 1 });
    const doomed = await extraGateway({ LIMIT_LEASE_SECONDS: '2' });
    const slow = call(doomed.url, k.key, chat(model, { mock: { first_byte_delay_ms: 30_000 } })).catch((e) => ({ error: e }));
    await m.waitFor(() => m.requests.length === 1, 5000);
    // Longer than one lease: the running gateway renews the slot (every lease / 3).
    await sleep(3000);
    assertRefused(await call(stack.gateway.url, k.key, chat(model)), 'rate_limit_exceeded', { min: 1, max: 1 });
    await doomed.kill('SIGKILL');
    const killedAt = Date.now();
    assert.ok((await slow).error, 'the client of the killed gateway loses its connection');
    assertRefused(await call(stack.gateway.url, k.key, chat(model)), 'rate_limit_exceeded', { min: 1, max: 1 });
    // Nobody renews it now: it is gone within one lease (2 s) of the last renewal.
    let passedAfter = null;
    while (Date.now() - killedAt < 4000) {
      const r = await call(stack.gateway.url, k.key, chat(model));
      if (r.status === 200) { passedAfter = Date.now() - killedAt; break; }
      assertRefused(r, 'rate_limit_exceeded', { min: 1, max: 1 });
      await sleep(100);
    }
    assert.ok(passedAfter !== null, 'the slot never came free');
    assert.ok(passedAfter >= 1000 && passedAfter <= 3000, `free ${passedAfter} ms after the kill (lease 2 s, renewed every ~0.67 s)`);
  });

  test('8. rpd counts per UTC day: 3 s before midnight (LIMIT_CLOCK_OFFSET_MS) two pass, the third waits <= 3 s, after midnight one passes', T, async () => {
    const model = await newModel();
    const k = await newKey({ rpd: 2 });
    // The gateway's clock reaches 00:00 UTC at wall time W.
    const W = Date.now() + 10_000;
    const midnight = Math.ceil(W / DAY_MS) * DAY_MS;
    const g = await extraGateway({ LIMIT_CLOCK_OFFSET_MS: String(midnight - W) });
    assert.ok(Date.now() < W - 3500, `the gateway took too long to start (${W - Date.now()} ms left)`);
    await sleep(W - 3000 - Date.now());
    for (let i = 0; i < 2; i++) {
      const r = await call(g.url, k.key, chat(model));
      assert.equal(r.status, 200, r.text);
      assertRequestHeaders(r, 2, 1 - i, [W - Date.now() - 500, W - Date.now() + 500]);
    }
    const r3 = await call(g.url, k.key, chat(model));
    assertRefused(r3, 'rate_limit_exceeded', { min: 1, max: 3 });
    assert.match(r3.json.error.message, /requests per day \(rpd\): limit 2/);
    await sleep(W + 300 - Date.now());
    const r4 = await call(g.url, k.key, chat(model));
    assert.equal(r4.status, 200, r4.text);
    assertRequestHeaders(r4, 2, 1, [DAY_MS - 2000, DAY_MS]);
    await g.stop();
  });

  test('9. include_usage:false does not evade a token budget: the client sees no usage chunk, the budget is still consumed', T, async () => {
    const sse = (o) => `data: ${JSON.stringify(o)}\n\n`;
    const chunk = (extra) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', ...extra });
    const CONTENT = [
      sse(chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' } }], usage: null })),
      sse(chunk({ choices: [{ index: 0, delta: { content: 'Hello' } }], usage: null })),
      sse(chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null })),
    ];
    const USAGE = sse(chunk({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 8, total_tokens: 18 } }));
    const DONE = 'data: [DONE]\n\n';
    const model = await newModel();
    const k = await newKey({ token_budget: 30 });
    const body = chat(model, { stream: true, stream_options: { include_usage: false }, mock: { raw_chunks: [...CONTENT, USAGE, DONE] } });
    for (let i = 0; i < 2; i++) {
      const id = uniq('iu');
      const r = await call(stack.gateway.url, k.key, body, { headers: { 'x-request-id': id } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, CONTENT.join('') + DONE, 'exactly the stream minus its usage chunk');
      const up = stack.mock.requests.find((x) => x.headers['x-request-id'] === id);
      assert.deepEqual(up.json.stream_options, { include_usage: true }, 'the upstream was asked for usage');
    }
    assertRefused(await call(stack.gateway.url, k.key, body), 'insufficient_quota');
    assert.equal(upstreamHits(stack.mock, model), 2);
    assert.equal((await budgetOf(k.id)).tokens_used, 36);
  });

  test('10. provider rpd=3 on the first route: requests 1-3 go to it, the 4th to the next route; alone, its 4th is 429 with Retry-After to midnight; provider rpm via PUT', T, async () => {
    await awayFromMidnight();
    const limited = await newProvider(stack.mock.url, { rpd: 3 });
    assert.equal(limited.rpd, 3);
    assert.equal(limited.rpm, null);
    const spare = await newProvider(stack.mock.url);
    const model = await newModel({ providerId: limited.id });
    await adminOk(stack, 'POST', `/admin/models/${model.id}/routes`, { provider_id: spare.id, provider_model_name: model.upstream, priority: 1 }, 201);
    const k = await newKey(); // no key limits: provider limits alone
    const served = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(stack.gateway.url, k.key, chat(model));
      assert.equal(r.status, 200, r.text);
      served.push(r.h('x-llm-provider'));
      assert.equal(r.h('x-ratelimit-limit-requests'), '10000', 'a key without limits gets the provider\'s headers');
    }
    assert.deepEqual(served, [limited.name, limited.name, limited.name, spare.name, spare.name]);

    const only = await newProvider(stack.mock.url, { rpd: 3 });
    const solo = await newModel({ providerId: only.id });
    for (let i = 0; i < 3; i++) assert.equal((await call(stack.gateway.url, k.key, chat(solo))).status, 200);
    const r = await call(stack.gateway.url, k.key, chat(solo));
    const toMidnight = Math.ceil((DAY_MS - (Date.now() % DAY_MS)) / 1000);
    const ra = assertRefused(r, 'rate_limit_exceeded', { min: toMidnight - 3, max: toMidnight + 1 });
    assert.match(r.json.error.message, /Every provider serving this model is at its rate limit/);
    assert.equal(upstreamHits(stack.mock, solo), 3);

    // rpm set later through PUT: two pass, the third waits about a minute.
    const later = await newProvider(stack.mock.url);
    const lm = await newModel({ providerId: later.id });
    assert.equal((await call(stack.gateway.url, k.key, chat(lm))).status, 200);
    const put = await adminOk(stack, 'PUT', `/admin/providers/${later.id}`, { rpm: 2 }, 200);
    assert.equal(put.rpm, 2);
    assert.equal((await call(stack.gateway.url, k.key, chat(lm))).status, 200);
    assert.equal((await call(stack.gateway.url, k.key, chat(lm))).status, 200);
    assertRefused(await call(stack.gateway.url, k.key, chat(lm)), 'rate_limit_exceeded', { min: 55, max: 60 });
  });

  test('11. /v1/messages refusals are Anthropic-shaped: rate_limit_error with Retry-After (rpm), and for a spent budget', T, async () => {
    const anth = await newProvider(`${stack.mock.origin}/v1`, {}, 'anthropic');
    const model = await newModel({ providerId: anth.id });
    const msg = { model: model.name, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] };
    const headers = { 'anthropic-version': '2023-06-01' };
    const assertAnthropic429 = (r) => {
      assert.equal(r.status, 429, r.text);
      assert.deepEqual(Object.keys(r.json ?? {}).sort(), ['error', 'type'], r.text);
      assert.equal(r.json.type, 'error');
      assert.deepEqual(Object.keys(r.json.error).sort(), ['message', 'type'], r.text);
      assert.equal(r.json.error.type, 'rate_limit_error');
      assert.ok(r.json.error.message.length > 0);
    };
    const k = await newKey({ rpm: 1 });
    const ok = await call(stack.gateway.url, k.key, msg, { path: '/v1/messages', headers });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.type, 'message');
    assert.equal(ok.h('x-ratelimit-limit-requests'), '1');
    assert.equal(ok.h('x-ratelimit-remaining-requests'), '0');
    const r = await call(stack.gateway.url, k.key, msg, { path: '/v1/messages', headers });
    assertAnthropic429(r);
    assert.match(r.h('retry-after') ?? '', /^\d+$/);
    assert.ok(Number(r.h('retry-after')) >= 55 && Number(r.h('retry-after')) <= 60);
    assert.match(r.json.error.message, /rpm/);

    const kb = await newKey({ token_budget: 5 });
    assert.equal((await call(stack.gateway.url, kb.key, msg, { path: '/v1/messages', headers })).status, 200);
    const rb = await call(stack.gateway.url, kb.key, msg, { path: '/v1/messages', headers });
    assertAnthropic429(rb);
    assert.equal(rb.h('retry-after'), null);
    assert.match(rb.json.error.message, /token budget/);
  });

  test('12. a key without limits gets the provider\'s x-ratelimit-* unchanged and costs no Redis keys; a limited key gets ours instead', T, async () => {
    const model = await newModel();
    const theirs = {
      'x-ratelimit-limit-requests': '777', 'x-ratelimit-remaining-requests': '776', 'x-ratelimit-reset-requests': '1s',
      'x-ratelimit-limit-tokens': '5000', 'x-ratelimit-remaining-tokens': '4321', 'x-ratelimit-reset-tokens': '12ms',
    };
    const free = await newKey();
    for (const stream of [false, true]) {
      const r = await call(stack.gateway.url, free.key, chat(model, { stream, mock: { headers: theirs } }));
      assert.equal(r.status, 200, r.text);
      for (const [n, v] of Object.entries(theirs)) assert.equal(r.h(n), v, `${n} (stream ${stream})`);
      assert.equal(r.h('x-llm-budget-remaining-tokens'), null);
    }
    const upstream429 = await call(stack.gateway.url, free.key, chat(model, { mock: { status: 429, headers: theirs } }));
    assert.equal(upstream429.status, 429);
    assert.equal(upstream429.h('x-ratelimit-limit-requests'), '777');
    assert.deepEqual(rlKeys(free.id), [], 'no limiter state for a key without limits');

    const limited = await newKey({ rpm: 100 });
    for (const [i, stream] of [false, true].entries()) {
      const r = await call(stack.gateway.url, limited.key, chat(model, { stream, mock: { headers: theirs } }));
      assert.equal(r.status, 200, r.text);
      assertRequestHeaders(r, 100, 99 - i, [50_000, 60_000]);
      for (const n of ['x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-ratelimit-reset-tokens']) assert.equal(r.h(n), null, n);
    }
    // The provider's own 429 passed through (single route): its rate headers replaced too.
    const r = await call(stack.gateway.url, limited.key, chat(model, { mock: { status: 429, headers: theirs } }));
    assert.equal(r.status, 429);
    assert.equal(r.json.error.message, 'Mock error 429');
    assertRequestHeaders(r, 100, 97, [50_000, 60_000]);
    assert.equal(r.h('x-ratelimit-limit-tokens'), null);
    assert.deepEqual(rlKeys(limited.id), [`llmgw:rl:{k:${limited.id}}:rpm`]);
  });

  test('14. /metrics counts refusals by reason: llmgw_rate_limited_total{reason="rpm"}', T, async () => {
    const g = await extraGateway();
    const model = await newModel();
    const k = await newKey({ rpm: 1 });
    let m = await metricsOf(g.url);
    assert.equal(m('llmgw_rate_limited_total{reason="rpm"}') ?? 0, 0);
    assert.equal(m('llmgw_rate_limiter_fallback'), 0);
    assert.equal((await call(g.url, k.key, chat(model))).status, 200);
    assertRefused(await call(g.url, k.key, chat(model)), 'rate_limit_exceeded', { min: 55, max: 60 });
    assertRefused(await call(g.url, k.key, chat(model)), 'rate_limit_exceeded', { min: 55, max: 60 });
    m = await metricsOf(g.url);
    assert.equal(m('llmgw_rate_limited_total{reason="rpm"}'), 2);
    assert.equal(m('llmgw_rate_limited_total{reason="max_parallel"}'), undefined);
    assert.equal(m('llmgw_rate_limiter_fallback'), 0);
    assert.equal(m('llmgw_rate_limiter_local_admissions_total'), 0);
    // Its first heartbeat may land after "listening": then it sees the main gateway too.
    await eventually(async () => (await metricsOf(g.url))('llmgw_live_replicas') >= 2, { timeoutMs: 3000, what: 'two live replicas' });
    await g.stop();
  });

  test('15. tpm: estimates count at admission and are corrected to the real usage; at the limit 429 with the tokens trio', T, async () => {
    const m = await mock({ usage: { prompt_tokens: 300, completion_tokens: 100 } }); // 400 real tokens each
    const model = await newModel({ providerId: (await newProvider(m.url)).id });
    const k = await newKey({ tpm: 1000 });
    const body = JSON.stringify(chat(model, { max_tokens: 50 }));
    const est = estimate(body);
    assert.notEqual(est, 400);
    const r1 = await call(stack.gateway.url, k.key, body);
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.h('x-ratelimit-limit-tokens'), '1000');
    assert.equal(r1.h('x-ratelimit-remaining-tokens'), String(1000 - est));
    assert.equal(parseReset(r1.h('x-ratelimit-reset-tokens')) <= 60_000, true);
    assert.equal(r1.h('x-ratelimit-limit-requests'), null, 'no rpm / rpd: no requests trio');
    const r2 = await call(stack.gateway.url, k.key, body);
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.h('x-ratelimit-remaining-tokens'), String(1000 - 400 - est), 'the first request counts its real 400 tokens now');
    const r3 = await call(stack.gateway.url, k.key, body);
    assert.equal(r3.status, 200, r3.text);
    assert.equal(r3.h('x-ratelimit-remaining-tokens'), String(Math.max(0, 1000 - 800 - est)));
    const r4 = await call(stack.gateway.url, k.key, body);
    assertRefused(r4, 'rate_limit_exceeded', { min: 55, max: 60 });
    assert.match(r4.json.error.message, /tokens per minute \(tpm\): limit 1000/);
    assert.equal(r4.h('x-ratelimit-remaining-tokens'), '0');
    assert.equal(m.requests.length, 3);
  });

  test('16. a successful stream cut before its usage is charged its estimate; an error answer costs nothing', T, async () => {
    const m = await mock();
    const model = await newModel({ providerId: (await newProvider(m.url)).id });
    const k = await newKey({ token_budget: 100_000 });
    const cut = JSON.stringify(chat(model, { stream: true, mock: { chunks: 5, chunk_interval_ms: 20, reset_after_chunks: 2 } }));
    const res = await rawRequest(stack.gateway.port, buildRequest('POST', '/v1/chat/completions', {
      headers: { authorization: `Bearer ${k.key}` }, body: cut,
    }), { timeoutMs: 10_000 });
    assert.equal(res.statusCode, 200);
    assert.equal(res.complete, false, 'the client sees the cut');
    await eventually(async () => (await budgetOf(k.id)).tokens_used === estimate(cut), { timeoutMs: 3000, what: 'the cut stream charged its estimate' });
    const failed = await call(stack.gateway.url, k.key, chat(model, { mock: { status: 500 } }));
    assert.equal(failed.status, 500);
    const ok = await call(stack.gateway.url, k.key, chat(model, { mock: { usage: { prompt_tokens: 7, completion_tokens: 3 } } }));
    assert.equal(ok.status, 200);
    assert.deepEqual(await budgetOf(k.id), { tokens_used: estimate(cut) + 10, usd_used: 0, tokens_left: 100_000 - estimate(cut) - 10 });
  });
});

describe('Redis down', () => {
  test('13. each process falls back to its own limiter (limit / live replicas), says so in /health, /metrics and the log; shared again once Redis is back', T, async () => {
    const model = await newModel();
    const k = await newKey({ rpm: 4 });
    // A key prefix of its own, so that the replicas it counts are itself and one more that we
    // announce (a heartbeat as a replica writes it), and one worker: the fallback shares rpm 4
    // over 2 limiters.
    redisRaw(stack, 'ZADD', 'lim13:replicas', Date.now(), 'another-replica');
    const g = await extraGateway({ REDIS_PREFIX: 'lim13:', WORKERS: '1' });
    await eventually(async () => (await metricsOf(g.url))('llmgw_live_replicas') === 2, { timeoutMs: 3000, what: 'two live replicas' });
    assert.equal((await health(g.url)).json.limits, 'shared');
    const first = await call(g.url, k.key, chat(model));
    assert.equal(first.status, 200, first.text);
    assertRequestHeaders(first, 4, 3, [59_000, 60_000]);
    assert.deepEqual(rlKeys(k.id, 'lim13:'), [`lim13:rl:{k:${k.id}}:rpm`]);
    assert.equal((await metricsOf(g.url))('llmgw_rate_limiter_fallback'), 0);

    await stack.redis.stop();
    try {
      // The local limiter knows nothing of the shared count: its own share, 4 / 2, in a minute.
      for (let i = 0; i < 2; i++) {
        const r = await call(g.url, k.key, chat(model));
        assert.equal(r.status, 200, `request ${i + 1} while Redis is down: ${r.text}`);
        assertRequestHeaders(r, 2, 1 - i, [59_000, 60_000]);
      }
      const refused = await call(g.url, k.key, chat(model));
      assertRefused(refused, 'rate_limit_exceeded', { min: 59, max: 60 });
      // (Unlike a refusal decided in Redis, a local refusal carries no x-ratelimit-* headers:
      // core::LocalLimiter::admit fills them only for admissions. Not asserted either way.)
      const h = await health(g.url);
      assert.equal(h.json.limits, 'local');
      assert.equal(h.json.redis, 'unavailable');
      const ready = await health(g.url, '/health/ready');
      assert.equal(ready.status, 503);
      assert.equal(ready.json.limits, 'local');
      const m = await metricsOf(g.url);
      assert.equal(m('llmgw_rate_limiter_fallback'), 1);
      assert.equal(m('llmgw_rate_limiter_local_admissions_total'), 3);
      assert.equal(m('llmgw_live_replicas'), 2);
      assert.equal(m('llmgw_rate_limited_total{reason="rpm"}'), 1);
      const unreachable = () => g.jsonLogs().filter((l) => l.msg?.includes('rate limits: Redis unreachable'));
      await eventually(() => unreachable().length > 0, { timeoutMs: 2000, what: 'the fallback\'s warning' });
      const warn = unreachable();
      assert.equal(warn.length, 1, 'one warning when the fallback starts');
      assert.equal(warn[0].level, 'warn', JSON.stringify(warn[0]));
      assert.equal(warn[0].share, 2, JSON.stringify(warn[0]));
    } finally {
      await stack.redis.start();
    }
    await eventually(async () => (await health(g.url, '/health/ready')).status === 200, { timeoutMs: 15_000, what: 'ready again' });
    // Until a limited request reaches Redis again, the process keeps deciding alone.
    assert.equal((await health(g.url)).json.limits, 'local');
    const back = await eventually(async () => {
      const r = await call(g.url, k.key, chat(model));
      return r.status === 200 && (await health(g.url)).json.limits === 'shared' ? r : null;
    }, { timeoutMs: 10_000, what: 'limits shared again' });
    // Redis restarted empty: the shared window starts anew.
    assertRequestHeaders(back, 4, 3, [59_000, 60_000]);
    assert.equal((await metricsOf(g.url))('llmgw_rate_limiter_fallback'), 0);
    await eventually(() => g.jsonLogs().some((l) => l.msg?.includes('rate limits: Redis reachable again')), { timeoutMs: 2000, what: 'the log says so' });
    await g.stop();
  });
});

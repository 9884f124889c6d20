// Several routes per model: priority failover (500, 529, 429, refused connection, slow head), no
// failover once the client has bytes, the last answer passed through unchanged, weighted round
// robin, cooldown of a failing route (also from Retry-After), routes managed through the admin
// API and visible on every replica within 1 s; per-key model access (allowlist, wildcard,
// default model, filtered /v1/models).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack, sleep } from './lib/harness.mjs';
import { startMockUpstream } from '../mock_upstream/server.mjs';
import { adminOk, closedPort, eventually, createKey } from './lib/proxy_helpers.mjs';
import { startExtraGateway } from './lib/admin_helpers.mjs';

let stack;
const mocks = [];
const extras = [];
const uniq = (p) => `${p}-${crypto.randomBytes(4).toString('hex')}`;

before(async () => {
  // One worker: cooldowns are per worker, and these tests count what one route's failures cause.
  stack = await startStack({
    env: { WORKERS: '1', ROUTE_COOLDOWN_FAILURES: '2', ROUTE_COOLDOWN_WINDOW: '30', ROUTE_COOLDOWN_SECONDS: '2', UPSTREAM_FIRST_BYTE_TIMEOUT: '0.5' },
  });
});
after(async () => {
  for (const g of extras) await g.stop().catch(() => {});
  for (const m of mocks) await m.close().catch(() => {});
  await stack?.stop();
});

async function mock(defaults = {}) {
  const m = await startMockUpstream({ defaults });
  mocks.push(m);
  return m;
}

async function provider(name, baseUrl) {
  return adminOk(stack, 'POST', '/admin/providers', { name: uniq(name), kind: 'openai', api_key: 'sk-up', base_url: baseUrl }, 201);
}

// A model whose routes are [{base, priority, weight, upstream}] in creation order; -> {model, providers}.
async function modelWith(routes, strategy = 'priority') {
  const providers = [];
  for (const r of routes) providers.push(await provider(r.name ?? 'p', r.base));
  const name = uniq('m');
  const m = await adminOk(stack, 'POST', '/admin/models', {
    name, provider_id: providers[0].id, provider_model_name: routes[0].upstream ?? 'up-0', strategy,
  }, 201);
  for (let i = 1; i < routes.length; i++) {
    await adminOk(stack, 'POST', `/admin/models/${m.id}/routes`, {
      provider_id: providers[i].id, provider_model_name: routes[i].upstream ?? `up-${i}`,
      priority: routes[i].priority ?? i, weight: routes[i].weight ?? 1,
    }, 201);
  }
  if (routes[0].weight && routes[0].weight !== 1) {
    const got = await adminOk(stack, 'GET', `/admin/models/${m.id}`);
    await adminOk(stack, 'PUT', `/admin/models/${m.id}/routes/${got.routes.find((r) => r.provider_id === providers[0].id).id}`,
      { weight: routes[0].weight }, 200);
  }
  return { name, id: m.id, providers };
}

let userKey;
async function key() {
  userKey ??= (await createKey(stack)).key;
  return userKey;
}

async function chat(model, { stream = false, extra = {}, k } = {}) {
  const res = await fetch(`${stack.gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${k ?? await key()}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });
  const text = await res.text().catch((e) => `<<${e.message}>>`);
  return { status: res.status, headers: res.headers, text, json: (() => { try { return JSON.parse(text); } catch { return undefined; } })() };
}

const hits = (m) => m.requests.filter((r) => r.endpoint === 'chat.completions').length;

describe('priority failover', () => {
  for (const [what, defaults] of [['500', { status: 500 }], ['529', { status: 529 }], ['429', { status: 429 }]]) {
    test(`a ${what} from the first route -> the second route answers; both attempts logged`, async () => {
      const bad = await mock(defaults);
      const good = await mock();
      const m = await modelWith([{ name: 'bad', base: bad.url }, { name: 'good', base: good.url, upstream: 'good-model' }]);
      const r = await chat(m.name);
      assert.equal(r.status, 200, r.text);
      assert.equal(hits(bad), 1);
      assert.equal(hits(good), 1);
      assert.equal(good.requests.at(-1).json.model, 'good-model');
      assert.equal(r.headers.get('x-llm-provider'), m.providers[1].name);
      assert.equal(r.headers.get('x-llm-model'), 'good-model');
      assert.equal(r.headers.get('x-llm-attempts'), '2');
      assert.match(r.headers.get('x-llm-latency-ms') ?? '', /^\d+$/);
      const line = await stack.gateway.waitForLog((l) => l.msg === 'request' && l.model === m.name);
      assert.deepEqual(line.attempts.map((a) => [a.provider, a.status]), [[m.providers[0].name, Number(what)], [m.providers[1].name, 200]]);
      assert.equal(line.provider, m.providers[1].name);
    });
  }

  test('a refused connection -> the next route answers', async () => {
    const good = await mock();
    const m = await modelWith([{ base: `http://127.0.0.1:${await closedPort()}/v1` }, { base: good.url }]);
    const r = await chat(m.name);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-llm-attempts'), '2');
  });

  test('no response head within UPSTREAM_FIRST_BYTE_TIMEOUT -> the next route answers', async () => {
    const slow = await mock({ first_byte_delay_ms: 3000 });
    const good = await mock();
    const m = await modelWith([{ base: slow.url }, { base: good.url }]);
    const t0 = Date.now();
    const r = await chat(m.name);
    assert.equal(r.status, 200, r.text);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    assert.equal(hits(good), 1);
  });

  test('other 4xx are the client\'s: passed through, no failover', async () => {
    const first = await mock({ status: 400 });
    const second = await mock();
    const m = await modelWith([{ base: first.url }, { base: second.url }]);
    const r = await chat(m.name);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.message, 'Mock error 400');
    assert.equal(hits(second), 0);
  });

  test('no failover after the first byte: a stream cut mid-way reaches the client as a cut', async () => {
    const cutting = await mock({ reset_after_chunks: 2, chunk_interval_ms: 20 });
    const second = await mock();
    const m = await modelWith([{ base: cutting.url }, { base: second.url }]);
    const res = await fetch(`${stack.gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await key()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: m.name, stream: true, messages: [] }),
    });
    assert.equal(res.status, 200);
    await assert.rejects(res.text(), 'the client must see the stream break, not a clean end');
    assert.equal(hits(second), 0);
  });

  test('every route fails with an answer: the last answer reaches the client unchanged (429 keeps Retry-After)', async () => {
    const first = await mock({ status: 500 });
    const last = await mock({ status: 429, error_message: 'slow down, please' });
    const m = await modelWith([{ base: first.url }, { base: last.url }]);
    const r = await chat(m.name);
    assert.equal(r.status, 429, r.text);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.equal(r.json.error.message, 'slow down, please');
    assert.equal(r.headers.get('x-llm-attempts'), '2');
  });

  test('a declined answer is replayed unchanged when the later routes do not answer at all', async () => {
    const overloaded = await mock({ status: 529, error_message: 'Overloaded' });
    const m = await modelWith([{ base: overloaded.url }, { base: `http://127.0.0.1:${await closedPort()}/v1` }]);
    const r = await chat(m.name);
    assert.equal(r.status, 529, r.text);
    assert.equal(r.json.error.message, 'Overloaded');
    assert.equal(r.headers.get('x-llm-provider'), m.providers[0].name);
  });

  test('no route answers at all -> 502 upstream_unavailable', async () => {
    const m = await modelWith([{ base: `http://127.0.0.1:${await closedPort()}/v1` }, { base: `http://127.0.0.1:${await closedPort()}/v1` }]);
    const r = await chat(m.name);
    assert.equal(r.status, 502, r.text);
    assert.equal(r.json.error.code, 'upstream_unavailable');
    assert.equal(r.headers.get('x-llm-attempts'), '2');
  });
});

describe('round robin and cooldown', () => {
  test('round_robin spreads by weight (3:1 over 100 requests, within tolerance)', async () => {
    const a = await mock();
    const b = await mock();
    const m = await modelWith([{ base: a.url, weight: 3 }, { base: b.url, priority: 0, weight: 1 }], 'round_robin');
    for (let i = 0; i < 100; i++) assert.equal((await chat(m.name)).status, 200);
    assert.ok(Math.abs(hits(a) - 75) <= 5, `a got ${hits(a)}, b got ${hits(b)}`);
    assert.equal(hits(a) + hits(b), 100);
  });

  test('a failing route cools down (2 failures in 30 s -> 2 s out): the dead upstream sees nothing meanwhile', async () => {
    const dead = await mock({ status: 500 });
    const good = await mock();
    const m = await modelWith([{ base: dead.url }, { base: good.url }]);
    for (let i = 0; i < 2; i++) assert.equal((await chat(m.name)).status, 200);
    assert.equal(hits(dead), 2);
    for (let i = 0; i < 5; i++) {
      const r = await chat(m.name);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-llm-attempts'), '1', 'a cooling route adds no attempt');
    }
    assert.equal(hits(dead), 2, 'the cooling route received requests');
    await sleep(2100);
    assert.equal((await chat(m.name)).status, 200);
    assert.equal(hits(dead), 3, 'after the cooldown the route is tried again');
  });

  test('an upstream Retry-After cools the route at once', async () => {
    const limited = await mock({ status: 429, headers: { 'retry-after': '2' } });
    const good = await mock();
    const m = await modelWith([{ base: limited.url }, { base: good.url }]);
    assert.equal((await chat(m.name)).status, 200);
    assert.equal(hits(limited), 1);
    assert.equal((await chat(m.name)).status, 200);
    assert.equal(hits(limited), 1, 'tried again within its Retry-After');
  });

  test('when every route is cooling, the request is still tried (least recently failed first), not refused', async () => {
    const a = await mock({ status: 500 });
    const b = await mock({ status: 500 });
    const m = await modelWith([{ base: a.url }, { base: b.url }]);
    for (let i = 0; i < 2; i++) assert.equal((await chat(m.name)).status, 500);
    const before = [hits(a), hits(b)];
    a.setDefault();
    const r = await chat(m.name);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([hits(a) - before[0], hits(b) - before[1]], [1, 0], 'a failed first, so it is tried first');
  });
});

describe('routes through the admin API', () => {
  test('POST/GET/PUT/DELETE /admin/models/{id}/routes, strategy, last route kept, model fields follow the first route', async () => {
    const a = await mock();
    const b = await mock();
    const pa = await provider('a', a.url);
    const pb = await provider('b', b.url);
    const m = await adminOk(stack, 'POST', '/admin/models', { name: uniq('m'), provider_id: pa.id, provider_model_name: 'ua' }, 201);
    assert.equal(m.strategy, 'priority');
    assert.equal(m.routes.length, 1);
    const two = await adminOk(stack, 'POST', `/admin/models/${m.id}/routes`, { provider_id: pb.id, provider_model_name: 'ub', priority: 5, weight: 2 }, 201);
    assert.deepEqual(two.routes.map((r) => [r.provider_id, r.provider_model_name, r.priority, r.weight]), [[pa.id, 'ua', 0, 1], [pb.id, 'ub', 5, 2]]);
    const listed = await adminOk(stack, 'GET', `/admin/models/${m.id}/routes`);
    assert.equal(listed.length, 2);
    const bRoute = two.routes[1];
    const moved = await adminOk(stack, 'PUT', `/admin/models/${m.id}/routes/${bRoute.id}`, { priority: -1 }, 200);
    assert.equal(moved.provider_id, pb.id, 'the model\'s provider_id is its first route\'s');
    assert.equal(moved.provider_model_name, 'ub');
    assert.equal((await chat(m.name)).headers.get('x-llm-model'), 'ub');
    const rr = await adminOk(stack, 'PUT', `/admin/models/${m.id}`, { strategy: 'round_robin' }, 200);
    assert.equal(rr.strategy, 'round_robin');
    const bad = await stack.admin('PUT', `/admin/models/${m.id}`, { strategy: 'random' });
    assert.equal(bad.status, 400);
    for (const [body, field] of [[{ provider_id: pb.id, weight: 0 }, 'weight'], [{ provider_id: 'x' }, 'provider_id'], [{}, 'provider_id'], [{ provider_id: pb.id, priority: 'high' }, 'priority'], [{ provider_id: pb.id, extra: 1 }, 'extra']]) {
      const r = await stack.admin('POST', `/admin/models/${m.id}/routes`, body);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.param, field);
    }
    const left = await adminOk(stack, 'DELETE', `/admin/models/${m.id}/routes/${bRoute.id}`, undefined, 200);
    assert.equal(left.routes.length, 1);
    const last = await stack.admin('DELETE', `/admin/models/${m.id}/routes/${left.routes[0].id}`);
    assert.equal(last.status, 409, last.text);
    const missing = await stack.admin('DELETE', `/admin/models/${m.id}/routes/00000000-0000-4000-8000-000000000000`);
    assert.equal(missing.status, 404);
    assert.equal((await chat(m.name)).headers.get('x-llm-model'), 'ua');
  });

  test('a route change on one replica is seen by another within 1 s', async () => {
    const a = await mock();
    const b = await mock();
    const m = await modelWith([{ base: a.url }, { base: b.url }]);
    const other = await startExtraGateway(stack);
    extras.push(other);
    const viaOther = async () => (await fetch(`${other.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${await key()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: m.name, messages: [] }),
    })).headers.get('x-llm-provider');
    assert.equal(await viaOther(), m.providers[0].name);
    const got = await adminOk(stack, 'GET', `/admin/models/${m.id}`);
    await adminOk(stack, 'PUT', `/admin/models/${m.id}/routes/${got.routes[1].id}`, { priority: -10 }, 200);
    const t0 = Date.now();
    await eventually(async () => (await viaOther()) === m.providers[1].name, { timeoutMs: 1000, intervalMs: 50, what: 'the other replica follows the new priority' });
    assert.ok(Date.now() - t0 <= 1000);
  });
});

describe('per-key model access', () => {
  let open, m1, m2, claude;
  before(async () => {
    const up = await mock();
    m1 = await modelWith([{ base: up.url, upstream: 'u1' }]);
    m2 = await modelWith([{ base: up.url, upstream: 'u2' }]);
    claude = await adminOk(stack, 'POST', '/admin/models', { name: `claude-${uniq('x')}`, provider_id: m1.providers[0].id }, 201);
    open = (await createKey(stack)).key;
  });

  test('allowed_models: a listed model works, another -> 403 model_not_allowed; wildcard prefixes', async () => {
    const k = await adminOk(stack, 'POST', '/admin/keys', { name: 'limited', allowed_models: [m1.name, 'claude-*'] }, 201);
    assert.deepEqual(k.allowed_models, [m1.name, 'claude-*']);
    assert.equal((await chat(m1.name, { k: k.key })).status, 200);
    assert.equal((await chat(claude.name, { k: k.key })).status, 200);
    const denied = await chat(m2.name, { k: k.key });
    assert.equal(denied.status, 403, denied.text);
    assert.equal(denied.json.error.code, 'model_not_allowed');
    assert.equal((await chat(m2.name, { k: open })).status, 200, 'a key without a list may use every model');
  });

  test('GET /v1/models and /v1/models/{model} show only what the key may use', async () => {
    const k = await adminOk(stack, 'POST', '/admin/keys', { name: 'limited', allowed_models: [m1.name] }, 201);
    const list = await (await fetch(`${stack.gateway.url}/v1/models`, { headers: { authorization: `Bearer ${k.key}` } })).json();
    assert.deepEqual(list.data.map((x) => x.id), [m1.name]);
    const hidden = await fetch(`${stack.gateway.url}/v1/models/${m2.name}`, { headers: { authorization: `Bearer ${k.key}` } });
    assert.equal(hidden.status, 404);
    const all = await (await fetch(`${stack.gateway.url}/v1/models`, { headers: { authorization: `Bearer ${open}` } })).json();
    assert.ok(all.data.length >= 3);
  });

  test('default_model is used when the request names no model; PUT changes and clears access', async () => {
    const k = await adminOk(stack, 'POST', '/admin/keys', { name: 'dflt', default_model: m2.name }, 201);
    const up = mocks.at(-1);
    const res = await fetch(`${stack.gateway.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${k.key}`, 'content-type': 'application/json' },
      body: '{"messages":[{"role":"user","content":"hi"}],"temperature":0.7}',
    });
    assert.equal(res.status, 200, await res.text());
    assert.equal(up.requests.at(-1).body, '{"model":"u2","messages":[{"role":"user","content":"hi"}],"temperature":0.7}');
    const noDefault = await chat(undefined, { k: open });
    assert.equal(noDefault.status, 400);
    assert.equal(noDefault.json.error.param, 'model');

    await adminOk(stack, 'PUT', `/admin/keys/${k.id}`, { allowed_models: [m1.name] }, 200);
    await eventually(async () => (await chat(m2.name, { k: k.key })).status === 403, { timeoutMs: 1000, intervalMs: 50, what: 'the new allowlist applies' });
    const cleared = await adminOk(stack, 'PUT', `/admin/keys/${k.id}`, { allowed_models: null, default_model: null }, 200);
    assert.deepEqual(cleared.allowed_models, []);
    assert.equal(cleared.default_model, null);
    await eventually(async () => (await chat(m2.name, { k: k.key })).status === 200, { timeoutMs: 1000, intervalMs: 50, what: 'the cleared allowlist applies' });
    for (const body of [{ name: 'x', allowed_models: 'gpt' }, { name: 'x', allowed_models: ['a*b'] }, { name: 'x', allowed_models: [''] }, { name: 'x', default_model: 'a\nb' }]) {
      const r = await stack.admin('POST', '/admin/keys', body);
      assert.equal(r.status, 400, JSON.stringify(body));
    }
  });
});

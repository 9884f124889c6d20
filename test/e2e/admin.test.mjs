// Admin API, storage and cache, end to end: providers / models / user keys CRUD and validation,
// PostgreSQL as the truth (rows, soft deletes, no plaintext secrets), the Redis key SET and route
// HASH, re-warming after restarts and Redis loss, and a second gateway seeing revocations.
// Needs the gateway binary (LLMGW_BIN or build/gateway/llm-gateway).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack } from './lib/harness.mjs';
import {
  sha256, redisCli, redisRaw, inKeySet, routeOf, keySetSize, routeCount, sql, rowCounts, pgDumpData,
  assertError, eventually, startExtraGateway, listModels,
} from './lib/admin_helpers.mjs';

let stack;
const extra = []; // extra gateway processes started by tests
before(async () => { stack = await startStack(); });
after(async () => {
  for (const g of extra) await g.stop().catch(() => {});
  await stack?.stop();
});

const RUN = crypto.randomBytes(3).toString('hex');
const uniq = (s) => `${s}-${RUN}-${crypto.randomBytes(3).toString('hex')}`;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const USER_KEY_RE = /^sk-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MISSING_ID = '00000000-0000-4000-8000-000000000000';

// Every secret handed to or minted by the gateway, and every admin response body, for the leak checks.
const providerSecrets = [];
const userKeys = [];
const adminBodies = [];
async function admin(method, path, body) {
  const r = await stack.admin(method, path, body);
  adminBodies.push(`${method} ${path} -> ${r.status} ${r.text}`);
  return r;
}
const newProviderSecret = () => {
  const k = `sk-proj-${crypto.randomBytes(24).toString('hex')}`;
  providerSecrets.push(k);
  return k;
};

async function createProvider(fields = {}) {
  const r = await admin('POST', '/admin/providers', { name: uniq('prov'), kind: 'openai', ...fields });
  assert.equal(r.status, 201, `create provider: ${r.text}`);
  return r.json;
}
async function createModel(providerId, fields = {}) {
  const r = await admin('POST', '/admin/models', { name: uniq('model'), provider_id: providerId, ...fields });
  assert.equal(r.status, 201, `create model: ${r.text}`);
  return r.json;
}
async function createKey(name = uniq('key')) {
  const r = await admin('POST', '/admin/keys', { name });
  assert.equal(r.status, 201, `create key: ${r.text}`);
  userKeys.push(r.json.key);
  return r.json;
}
const v1Models = (key) => listModels(stack.gateway.url, key);
async function assertKeyWorks(key, what) {
  const r = await v1Models(key);
  assert.equal(r.status, 200, `${what}: GET /v1/models with the key -> ${r.status} ${r.text}`);
}
async function assertKeyRejected(key, what) {
  const r = await v1Models(key);
  assertError(r, 401, 'invalid_api_key', `${what}: GET /v1/models`);
}

function assertTimestamp(v, what) {
  assert.equal(typeof v, 'string', what);
  assert.ok(!Number.isNaN(Date.parse(v)), `${what} is not a timestamp: ${v}`);
}
function assertProviderShape(p) {
  assert.deepEqual(Object.keys(p).sort(),
    ['api_key_preview', 'api_version', 'base_url', 'created_at', 'extra_headers', 'id', 'is_active', 'kind', 'name',
      'rpd', 'rpm', 'updated_at'], JSON.stringify(p));
  for (const f of ['rpm', 'rpd']) assert.ok(p[f] === null || Number.isInteger(p[f]), `${f}: null or an integer`);
  assert.ok(Array.isArray(p.extra_headers), 'extra_headers lists header names');
  assert.match(p.id, UUID_RE);
  assert.equal(typeof p.is_active, 'boolean');
  assertTimestamp(p.created_at, 'created_at');
  assertTimestamp(p.updated_at, 'updated_at');
}
function assertModelShape(m) {
  assert.deepEqual(Object.keys(m).sort(),
    ['created_at', 'id', 'is_active', 'name', 'pricing', 'provider_id', 'provider_model_name', 'routes', 'strategy', 'updated_at'],
    JSON.stringify(m));
  assert.ok(['priority', 'round_robin'].includes(m.strategy), m.strategy);
  assert.ok(Array.isArray(m.routes) && m.routes.length >= 1, 'a model has at least one route');
  // The single-route fields are the first route's.
  assert.equal(m.routes[0].provider_id, m.provider_id);
  assert.equal(m.routes[0].provider_model_name, m.provider_model_name);
  assert.match(m.id, UUID_RE);
  assertTimestamp(m.created_at, 'created_at');
  assertTimestamp(m.updated_at, 'updated_at');
}

// Sends each bad request, expects its error, and checks that no table changed.
async function expectRejected(cases) {
  const before = rowCounts(stack);
  for (const [method, path, body, status, code] of cases) {
    const r = await admin(method, path, body);
    assertError(r, status, code, `${method} ${path} ${typeof body === 'string' ? body : JSON.stringify(body)}`);
  }
  assert.deepEqual(rowCounts(stack), before, 'a rejected request changed a table');
}

// ---------------------------------------------------------------------------------------------
// Admin authentication

test('admin API: missing or wrong admin key -> 401 OpenAI-shape error, nothing written', async () => {
  const before = rowCounts(stack);
  const url = stack.gateway.url;
  const send = async (method, path, headers, body) => {
    const res = await fetch(url + path, {
      method, headers: { 'content-type': 'application/json', ...headers }, body: body && JSON.stringify(body),
    });
    const text = await res.text();
    let json; try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, text, json };
  };
  const wrong = [
    {},
    { authorization: 'Bearer wrong-admin-key-xxxxxxxxxxxx' },
    { authorization: `Bearer ${stack.gateway.adminKey}x` },
    { authorization: `Basic ${stack.gateway.adminKey}` },
    { authorization: stack.gateway.adminKey },
  ];
  for (const headers of wrong) {
    for (const [method, path, body] of [
      ['GET', '/admin/providers'],
      ['POST', '/admin/providers', { name: uniq('unauth'), kind: 'openai' }],
      ['POST', '/admin/keys', { name: 'unauth' }],
      ['DELETE', `/admin/keys/${MISSING_ID}`],
      ['GET', '/admin/does-not-exist'],
    ]) {
      const r = await send(method, path, headers, body);
      assertError(r, 401, undefined, `${method} ${path} with ${JSON.stringify(headers).replace(stack.gateway.adminKey, 'ADMIN')}`);
    }
  }
  // A user key is not an admin key.
  const k = await createKey();
  const r = await send('GET', '/admin/keys', { authorization: `Bearer ${k.key}` });
  assertError(r, 401, undefined, 'user key on /admin');
  const after = rowCounts(stack);
  assert.deepEqual(after, { ...before, user_keys: before.user_keys + 1 }, 'unauthenticated requests wrote rows');
});

// ---------------------------------------------------------------------------------------------
// Providers

test('POST /admin/providers: each kind gets its default base_url; key only as a masked preview', async () => {
  const defaults = {
    openai: 'https://api.openai.com/v1',
    openrouter: 'https://openrouter.ai/api/v1',
    dashscope: 'https://dashscope.aliyuncs.com/compatible-mode/v1',
    ark: 'https://ark.cn-beijing.volces.com/api/v3',
    anthropic: 'https://api.anthropic.com/v1',
    gemini: 'https://generativelanguage.googleapis.com/v1beta/openai',
    mistral: 'https://api.mistral.ai/v1',
    groq: 'https://api.groq.com/openai/v1',
    together: 'https://api.together.xyz/v1',
    fireworks: 'https://api.fireworks.ai/inference/v1',
    deepseek: 'https://api.deepseek.com/v1',
    xai: 'https://api.x.ai/v1',
    ollama: 'http://localhost:11434/v1',
  };
  for (const [kind, baseUrl] of Object.entries(defaults)) {
    const secret = newProviderSecret();
    const name = uniq(kind);
    const r = await admin('POST', '/admin/providers', { name, kind, api_key: secret });
    assert.equal(r.status, 201, r.text);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    const p = r.json;
    assertProviderShape(p);
    assert.equal(p.name, name);
    assert.equal(p.kind, kind);
    assert.equal(p.base_url, baseUrl, `default base_url of ${kind}`);
    assert.equal(p.is_active, true);
    assert.equal(p.api_key_preview, `${secret.slice(0, 4)}...${secret.slice(-4)}`);
    assert.ok(!r.text.includes(secret), 'response contains the API key');
    const enc = sql(stack, `SELECT api_key_enc FROM providers WHERE id = '${p.id}'`);
    assert.ok(enc.length > 0, 'api_key_enc stored');
    assert.ok(!enc.includes(secret) && !enc.includes(secret.slice(8)), 'api_key_enc holds the plaintext');
    assert.equal(sql(stack, `SELECT api_key_preview FROM providers WHERE id = '${p.id}'`), p.api_key_preview);
  }
});

test('POST /admin/providers: base_url override (http or https), no api_key -> preview null', async () => {
  const a = await createProvider({ kind: 'openrouter', base_url: 'http://127.0.0.1:9/custom/v1' });
  assert.equal(a.base_url, 'http://127.0.0.1:9/custom/v1');
  assert.equal(a.kind, 'openrouter');
  assert.equal(a.api_key_preview, null);
  assert.equal(sql(stack, `SELECT api_key_enc IS NULL FROM providers WHERE id = '${a.id}'`), 't');
  const b = await createProvider({ kind: 'dashscope', base_url: 'https://proxy.example.com:8443/v1' });
  assert.equal(b.base_url, 'https://proxy.example.com:8443/v1');
});

test('POST /admin/providers: a short api_key is masked too', async () => {
  const secret = 'sk-shrt99';
  providerSecrets.push(secret);
  const p = await createProvider({ api_key: secret });
  assert.equal(typeof p.api_key_preview, 'string');
  assert.ok(!p.api_key_preview.includes(secret), `preview shows the key: ${p.api_key_preview}`);
});

test('concurrent creates with one name: exactly one 201, the rest 409, one row', async () => {
  const name = uniq('race');
  const before = rowCounts(stack);
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => admin('POST', '/admin/providers', { name, kind: 'openai', base_url: `http://127.0.0.1:${1000 + i}/v1` })));
  assert.deepEqual(rs.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409, 409, 409], rs.map((r) => r.text).join('\n'));
  for (const r of rs.filter((x) => x.status === 409)) assertError(r, 409, 'conflict');
  assert.equal(rowCounts(stack).providers, before.providers + 1);
  const p = rs.find((r) => r.status === 201).json;
  const ms = await Promise.all(Array.from({ length: 8 }, () => admin('POST', '/admin/models', { name, provider_id: p.id })));
  assert.deepEqual(ms.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409, 409, 409], ms.map((r) => r.text).join('\n'));
  assert.equal(rowCounts(stack).models, before.models + 1);
});

test('POST /admin/providers: duplicate name -> 409, bad kind / URL / body -> 400, nothing written', async () => {
  const existing = await createProvider();
  const ok = { name: uniq('p'), kind: 'openai' };
  await expectRejected([
    ['POST', '/admin/providers', { name: existing.name, kind: 'ark' }, 409, 'conflict'],
    ['POST', '/admin/providers', { ...ok, kind: 'no-such-kind' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, kind: 'openai_compatible', base_url: undefined }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, kind: 'azure' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, extra_headers: { Host: 'x' } }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, extra_headers: { 'X-A': 'a\r\nInjected: 1' } }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, extra_headers: { 'bad name': 'x' } }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, extra_headers: ['X-A', 'b'] }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, api_version: 'a b' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, api_key: 'sk-\r\nX: y' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, kind: '' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, base_url: 'ftp://example.com/v1' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, base_url: 'not a url' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, base_url: '/relative/v1' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, base_url: 'https://user:pw@example.com/v1' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, base_url: '' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, base_url: 42 }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { kind: 'openai' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { name: uniq('p') }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { name: 123, kind: 'openai' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { name: '', kind: 'openai' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { name: null, kind: 'openai' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { name: 'x'.repeat(201), kind: 'openai' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { name: 'bad\nname', kind: 'openai' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, api_key: 12345 }, 400, 'invalid_request'],
    ['POST', '/admin/providers', { ...ok, api_key: '' }, 400, 'invalid_request'],
    ['POST', '/admin/providers', '{"name": "x", "kind": "openai"', 400, 'invalid_json'],
    ['POST', '/admin/providers', 'not json', 400, 'invalid_json'],
    ['POST', '/admin/providers', '', 400, 'invalid_json'],
    ['POST', '/admin/providers', [ok], 400, 'invalid_request'],
    ['POST', '/admin/providers', '"just a string"', 400, 'invalid_request'],
  ]);
});

test('GET /admin/providers and /admin/providers/{id}; 404 for unknown, 400 for non-UUID ids', async () => {
  const secret = newProviderSecret();
  const p = await createProvider({ kind: 'ark', api_key: secret });
  const one = await admin('GET', `/admin/providers/${p.id}`);
  assert.equal(one.status, 200, one.text);
  assert.deepEqual(one.json, p);
  const all = await admin('GET', '/admin/providers');
  assert.equal(all.status, 200, all.text);
  assert.ok(Array.isArray(all.json), all.text);
  all.json.forEach(assertProviderShape);
  assert.deepEqual(all.json.find((x) => x.id === p.id), p);
  assert.equal(Number(sql(stack, 'SELECT count(*) FROM providers WHERE deleted_at IS NULL')), all.json.length);
  assert.ok(!all.text.includes(secret));
  assertError(await admin('GET', `/admin/providers/${MISSING_ID}`), 404, 'not_found');
  assertError(await admin('GET', '/admin/providers/not-a-uuid'), 400, 'invalid_request');
  assertError(await admin('GET', `/admin/providers/${p.id}x`), 400, 'invalid_request');
  assertError(await admin('GET', "/admin/providers/'%20OR%201=1"), 400, 'invalid_request');
});

test('PUT /admin/providers/{id}: partial update of every field, is_active included', async () => {
  const p = await createProvider({ kind: 'openai', api_key: newProviderSecret() });
  const steps = [
    [{ name: uniq('renamed') }, (x, body) => x.name === body.name],
    [{ kind: 'openrouter' }, (x) => x.kind === 'openrouter'],
    [{ base_url: 'http://127.0.0.1:1/v9' }, (x) => x.base_url === 'http://127.0.0.1:1/v9'],
    [{ is_active: false }, (x) => x.is_active === false],
    [{ is_active: true }, (x) => x.is_active === true],
  ];
  let prev = p;
  for (const [body, check] of steps) {
    const r = await admin('PUT', `/admin/providers/${p.id}`, body);
    assert.equal(r.status, 200, `PUT ${JSON.stringify(body)}: ${r.text}`);
    assertProviderShape(r.json);
    assert.ok(check(r.json, body), `PUT ${JSON.stringify(body)} not applied: ${r.text}`);
    // Fields not in the body keep their value.
    for (const f of ['name', 'kind', 'base_url', 'api_key_preview', 'is_active'])
      if (!(f in body)) assert.deepEqual(r.json[f], prev[f], `PUT ${JSON.stringify(body)} changed ${f}`);
    assert.equal(r.json.id, p.id);
    assert.equal(r.json.created_at, p.created_at);
    assert.ok(Date.parse(r.json.updated_at) >= Date.parse(prev.updated_at), 'updated_at went back');
    assert.deepEqual((await admin('GET', `/admin/providers/${p.id}`)).json, r.json, 'GET after PUT');
    prev = r.json;
  }
  // A new API key: new preview, old ciphertext replaced, plaintext nowhere.
  const encBefore = sql(stack, `SELECT api_key_enc FROM providers WHERE id = '${p.id}'`);
  const secret2 = newProviderSecret();
  const r = await admin('PUT', `/admin/providers/${p.id}`, { api_key: secret2 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.api_key_preview, `${secret2.slice(0, 4)}...${secret2.slice(-4)}`);
  assert.ok(!r.text.includes(secret2));
  const encAfter = sql(stack, `SELECT api_key_enc FROM providers WHERE id = '${p.id}'`);
  assert.notEqual(encAfter, encBefore);
  assert.ok(!encAfter.includes(secret2));
  assert.ok(Date.parse(r.json.updated_at) > Date.parse(p.updated_at), 'updated_at not bumped');
});

test('PUT /admin/providers/{id}: bad input -> 400/404/409 and the row is unchanged', async () => {
  const other = await createProvider();
  const p = await createProvider({ api_key: newProviderSecret() });
  const row = () => sql(stack, `SELECT name, kind, base_url, api_key_enc, is_active, updated_at FROM providers WHERE id = '${p.id}'`);
  const before = row();
  await expectRejected([
    ['PUT', `/admin/providers/${p.id}`, { name: other.name }, 409, 'conflict'],
    ['PUT', `/admin/providers/${p.id}`, { kind: 'nope' }, 400, 'invalid_request'],
    ['PUT', `/admin/providers/${p.id}`, { base_url: 'gopher://x' }, 400, 'invalid_request'],
    ['PUT', `/admin/providers/${p.id}`, { is_active: 'false' }, 400, 'invalid_request'],
    ['PUT', `/admin/providers/${p.id}`, { is_active: 0 }, 400, 'invalid_request'],
    ['PUT', `/admin/providers/${p.id}`, { name: 7 }, 400, 'invalid_request'],
    ['PUT', `/admin/providers/${p.id}`, { name: '' }, 400, 'invalid_request'],
    ['PUT', `/admin/providers/${p.id}`, { name: uniq('ok'), kind: 'bogus' }, 400, 'invalid_request'],
    ['PUT', `/admin/providers/${p.id}`, '{', 400, 'invalid_json'],
    ['PUT', `/admin/providers/${p.id}`, '[]', 400, 'invalid_request'],
    ['PUT', `/admin/providers/${MISSING_ID}`, { name: uniq('x') }, 404, 'not_found'],
    ['PUT', '/admin/providers/123', { name: uniq('x') }, 400, 'invalid_request'],
  ]);
  assert.equal(row(), before, 'a rejected PUT changed the provider row');
});

test('DELETE /admin/providers/{id}: 204, then 404; name reusable; non-UUID -> 400', async () => {
  const p = await createProvider();
  const before = rowCounts(stack);
  const r = await admin('DELETE', `/admin/providers/${p.id}`);
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '');
  assertError(await admin('GET', `/admin/providers/${p.id}`), 404, 'not_found');
  assertError(await admin('DELETE', `/admin/providers/${p.id}`), 404, 'not_found');
  assertError(await admin('PUT', `/admin/providers/${p.id}`, { is_active: true }), 404, 'not_found');
  assert.ok(!(await admin('GET', '/admin/providers')).json.some((x) => x.id === p.id), 'deleted provider listed');
  assert.deepEqual(rowCounts(stack), before, 'delete is soft: the row stays');
  assert.equal(sql(stack, `SELECT deleted_at IS NOT NULL, is_active FROM providers WHERE id = '${p.id}'`), 't|f');
  const again = await createProvider({ name: p.name });
  assert.notEqual(again.id, p.id);
  assertError(await admin('DELETE', `/admin/providers/${MISSING_ID}`), 404, 'not_found');
  assertError(await admin('DELETE', '/admin/providers/nope'), 400, 'invalid_request');
});

// ---------------------------------------------------------------------------------------------
// Models

test('POST /admin/models: 201 with the full shape; provider_model_name optional', async () => {
  const p = await createProvider();
  const name = uniq('m');
  const r = await admin('POST', '/admin/models', { name, provider_id: p.id, provider_model_name: 'gpt-4o-mini' });
  assert.equal(r.status, 201, r.text);
  assertModelShape(r.json);
  assert.equal(r.json.name, name);
  assert.equal(r.json.provider_id, p.id);
  assert.equal(r.json.provider_model_name, 'gpt-4o-mini');
  assert.equal(r.json.is_active, true);
  const bare = await createModel(p.id);
  assert.equal(bare.provider_model_name, null);
  assert.equal((await admin('GET', `/admin/models/${r.json.id}`)).json.name, name);
});

test('POST /admin/models: unknown provider -> 400, duplicate -> 409, bad bodies -> 400, nothing written', async () => {
  const p = await createProvider();
  const m = await createModel(p.id);
  const gone = await createProvider();
  assert.equal((await admin('DELETE', `/admin/providers/${gone.id}`)).status, 204);
  const ok = { name: uniq('m'), provider_id: p.id };
  await expectRejected([
    ['POST', '/admin/models', { ...ok, provider_id: MISSING_ID }, 400, 'invalid_request'],
    ['POST', '/admin/models', { ...ok, provider_id: gone.id }, 400, 'invalid_request'],
    ['POST', '/admin/models', { ...ok, provider_id: 'not-a-uuid' }, 400, 'invalid_request'],
    ['POST', '/admin/models', { ...ok, provider_id: 17 }, 400, 'invalid_request'],
    ['POST', '/admin/models', { name: m.name, provider_id: p.id }, 409, 'conflict'],
    ['POST', '/admin/models', { provider_id: p.id }, 400, 'invalid_request'],
    ['POST', '/admin/models', { name: uniq('m') }, 400, 'invalid_request'],
    ['POST', '/admin/models', { ...ok, name: ['x'] }, 400, 'invalid_request'],
    ['POST', '/admin/models', { ...ok, provider_model_name: 5 }, 400, 'invalid_request'],
    ['POST', '/admin/models', '{"name":', 400, 'invalid_json'],
    ['POST', '/admin/models', 'null', 400, 'invalid_request'],
  ]);
});

test('GET / PUT / DELETE /admin/models/{id}', async () => {
  const p1 = await createProvider();
  const p2 = await createProvider();
  const m = await createModel(p1.id, { provider_model_name: 'up-1' });
  const list = await admin('GET', '/admin/models');
  assert.equal(list.status, 200, list.text);
  assert.ok(Array.isArray(list.json));
  list.json.forEach(assertModelShape);
  assert.deepEqual(list.json.find((x) => x.id === m.id), m);
  assert.deepEqual((await admin('GET', `/admin/models/${m.id}`)).json, m);

  let prev = m;
  for (const body of [{ name: uniq('renamed') }, { provider_id: p2.id }, { provider_model_name: 'up-2' },
    { provider_model_name: null }, { is_active: false }, { is_active: true }]) {
    const r = await admin('PUT', `/admin/models/${m.id}`, body);
    assert.equal(r.status, 200, `PUT ${JSON.stringify(body)}: ${r.text}`);
    assertModelShape(r.json);
    for (const [k, v] of Object.entries(body)) assert.deepEqual(r.json[k], v, `PUT ${JSON.stringify(body)}`);
    for (const f of ['name', 'provider_id', 'provider_model_name', 'is_active'])
      if (!(f in body)) assert.deepEqual(r.json[f], prev[f], `PUT ${JSON.stringify(body)} changed ${f}`);
    assert.deepEqual((await admin('GET', `/admin/models/${m.id}`)).json, r.json);
    prev = r.json;
  }

  const other = await createModel(p1.id);
  const gone = await createProvider();
  assert.equal((await admin('DELETE', `/admin/providers/${gone.id}`)).status, 204);
  const row = () => sql(stack, `SELECT name, provider_id, provider_model_name, is_active, updated_at FROM models WHERE id = '${m.id}'`);
  const before = row();
  await expectRejected([
    ['PUT', `/admin/models/${m.id}`, { name: other.name }, 409, 'conflict'],
    ['PUT', `/admin/models/${m.id}`, { provider_id: MISSING_ID }, 400, 'invalid_request'],
    ['PUT', `/admin/models/${m.id}`, { provider_id: 'xyz' }, 400, 'invalid_request'],
    ['PUT', `/admin/models/${m.id}`, { provider_id: gone.id }, 400, 'invalid_request'],
    ['PUT', `/admin/models/${m.id}`, { is_active: 'yes' }, 400, 'invalid_request'],
    ['PUT', `/admin/models/${m.id}`, 'nope', 400, 'invalid_json'],
    ['PUT', `/admin/models/${MISSING_ID}`, { is_active: false }, 404, 'not_found'],
    ['PUT', '/admin/models/1', { is_active: false }, 400, 'invalid_request'],
    ['GET', `/admin/models/${MISSING_ID}`, undefined, 404, 'not_found'],
    ['GET', '/admin/models/abc', undefined, 400, 'invalid_request'],
    ['DELETE', `/admin/models/${MISSING_ID}`, undefined, 404, 'not_found'],
    ['DELETE', '/admin/models/abc', undefined, 400, 'invalid_request'],
  ]);
  assert.equal(row(), before, 'a rejected PUT changed the model row');

  const counts = rowCounts(stack);
  const del = await admin('DELETE', `/admin/models/${m.id}`);
  assert.equal(del.status, 204, del.text);
  assert.equal(del.text, '');
  assertError(await admin('GET', `/admin/models/${m.id}`), 404, 'not_found');
  assertError(await admin('DELETE', `/admin/models/${m.id}`), 404, 'not_found');
  assert.ok(!(await admin('GET', '/admin/models')).json.some((x) => x.id === m.id));
  assert.deepEqual(rowCounts(stack), counts, 'model delete is soft');
  // Its name is free again.
  await createModel(p1.id, { name: prev.name });
});

// ---------------------------------------------------------------------------------------------
// User keys

test('POST /admin/keys: sk-<uuid4> shown once, only its SHA-256 stored; list/get never show it', async () => {
  const name = uniq('k');
  const r = await admin('POST', '/admin/keys', { name });
  assert.equal(r.status, 201, r.text);
  userKeys.push(r.json.key);
  const k = r.json;
  for (const f of ['id', 'name', 'key', 'key_prefix', 'created_at']) assert.ok(f in k, `missing ${f}: ${r.text}`);
  assert.match(k.id, UUID_RE);
  assert.equal(k.name, name);
  assert.match(k.key, USER_KEY_RE);
  assert.equal(typeof k.key_prefix, 'string');
  assert.ok(k.key_prefix.length >= 4 && k.key_prefix.length < k.key.length, `key_prefix ${k.key_prefix}`);
  assert.ok(k.key.startsWith(k.key_prefix));
  assertTimestamp(k.created_at, 'created_at');
  if ('is_active' in k) assert.equal(k.is_active, true);
  assert.ok(!('key_hash' in k) && !r.text.includes(sha256(k.key)), 'create response shows the hash');

  const db = sql(stack, `SELECT key_hash, key_prefix, is_active FROM user_keys WHERE id = '${k.id}'`);
  assert.equal(db, `${sha256(k.key)}|${k.key_prefix}|t`);
  assert.equal(sql(stack, `SELECT count(*) FROM user_keys WHERE key_hash = '${sha256(k.key)}'`), '1');

  const one = await admin('GET', `/admin/keys/${k.id}`);
  assert.equal(one.status, 200, one.text);
  assert.equal(one.json.id, k.id);
  assert.equal(one.json.name, name);
  assert.equal(one.json.key_prefix, k.key_prefix);
  const list = await admin('GET', '/admin/keys');
  assert.equal(list.status, 200, list.text);
  assert.ok(Array.isArray(list.json));
  assert.ok(list.json.some((x) => x.id === k.id));
  for (const body of [one, list]) {
    assert.ok(!body.text.includes(k.key), 'GET shows the key');
    assert.ok(!body.text.includes(sha256(k.key)), 'GET shows the key hash');
    for (const x of [].concat(body.json)) assert.ok(!('key' in x) && !('key_hash' in x), JSON.stringify(x));
  }
  // Two keys never collide.
  const k2 = await createKey(name);
  assert.notEqual(k2.key, k.key);
});

test('user keys: bad bodies and ids -> clear errors, nothing written', async () => {
  const k = await createKey();
  const row = () => sql(stack, `SELECT name, key_hash, is_active, updated_at FROM user_keys WHERE id = '${k.id}'`);
  const before = row();
  await expectRejected([
    ['POST', '/admin/keys', {}, 400, 'invalid_request'],
    ['POST', '/admin/keys', { name: '' }, 400, 'invalid_request'],
    ['POST', '/admin/keys', { name: 1 }, 400, 'invalid_request'],
    ['POST', '/admin/keys', { name: 'x'.repeat(10_000) }, 400, 'invalid_request'],
    ['POST', '/admin/keys', '{"name": "a",}', 400, 'invalid_json'],
    ['POST', '/admin/keys', '', 400, 'invalid_json'],
    ['PUT', `/admin/keys/${k.id}`, { is_active: 'no' }, 400, 'invalid_request'],
    ['PUT', `/admin/keys/${k.id}`, { name: false }, 400, 'invalid_request'],
    ['PUT', `/admin/keys/${k.id}`, 'x', 400, 'invalid_json'],
    ['PUT', `/admin/keys/${MISSING_ID}`, { name: 'x' }, 404, 'not_found'],
    ['PUT', '/admin/keys/not-a-uuid', { name: 'x' }, 400, 'invalid_request'],
    ['GET', `/admin/keys/${MISSING_ID}`, undefined, 404, 'not_found'],
    ['GET', '/admin/keys/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz', undefined, 400, 'invalid_request'],
    ['POST', `/admin/keys/${MISSING_ID}/rotate`, undefined, 404, 'not_found'],
    ['POST', '/admin/keys/nope/rotate', undefined, 400, 'invalid_request'],
    ['DELETE', `/admin/keys/${MISSING_ID}`, undefined, 404, 'not_found'],
    ['DELETE', '/admin/keys/nope', undefined, 400, 'invalid_request'],
  ]);
  assert.equal(row(), before, 'a rejected request changed the key row');
  assert.ok(inKeySet(stack, k.key), 'the key left the Redis SET after rejected requests');
});

test('user key lifecycle: works at once, PUT is_active, rotate, delete -> Redis SET and 401 at once', async () => {
  const k = await createKey();
  assert.ok(inKeySet(stack, k.key), 'new key is not in llmgw:key_records');
  await assertKeyWorks(k.key, 'new key');

  // Unknown / missing keys.
  await assertKeyRejected(`sk-${crypto.randomUUID()}`, 'unknown key');
  assertError(await v1Models(undefined), 401, undefined, 'no Authorization');

  // Rename keeps it working.
  const renamed = await admin('PUT', `/admin/keys/${k.id}`, { name: 'renamed' });
  assert.equal(renamed.status, 200, renamed.text);
  assert.equal(renamed.json.name, 'renamed');
  assert.ok(!renamed.text.includes(k.key));
  assert.ok(inKeySet(stack, k.key));

  // Deactivate / reactivate.
  const off = await admin('PUT', `/admin/keys/${k.id}`, { is_active: false });
  assert.equal(off.status, 200, off.text);
  assert.equal(off.json.is_active, false);
  assert.ok(!inKeySet(stack, k.key), 'deactivated key still in llmgw:key_records');
  await assertKeyRejected(k.key, 'deactivated key');
  const on = await admin('PUT', `/admin/keys/${k.id}`, { is_active: true });
  assert.equal(on.status, 200, on.text);
  assert.equal(on.json.is_active, true);
  assert.ok(inKeySet(stack, k.key), 'reactivated key not in llmgw:key_records');
  await assertKeyWorks(k.key, 'reactivated key');

  // Rotate: old key dead at once, new key works at once.
  const rot = await admin('POST', `/admin/keys/${k.id}/rotate`);
  assert.equal(rot.status, 200, rot.text);
  userKeys.push(rot.json.key);
  assert.equal(rot.json.id, k.id);
  assert.match(rot.json.key, USER_KEY_RE);
  assert.notEqual(rot.json.key, k.key);
  assert.ok(rot.json.key.startsWith(rot.json.key_prefix));
  assert.ok(!inKeySet(stack, k.key), 'rotated-out key still in llmgw:key_records');
  assert.ok(inKeySet(stack, rot.json.key), 'rotated-in key not in llmgw:key_records');
  await assertKeyRejected(k.key, 'old key after rotate');
  await assertKeyWorks(rot.json.key, 'new key after rotate');
  assert.equal(sql(stack, `SELECT key_hash FROM user_keys WHERE id = '${k.id}'`), sha256(rot.json.key));
  assert.ok(!(await admin('GET', `/admin/keys/${k.id}`)).text.includes(rot.json.key));

  // Delete: soft (row stays, inactive), gone from Redis, 401.
  const counts = rowCounts(stack);
  const del = await admin('DELETE', `/admin/keys/${k.id}`);
  assert.equal(del.status, 204, del.text);
  assert.equal(del.text, '');
  assert.ok(!inKeySet(stack, rot.json.key), 'deleted key still in llmgw:key_records');
  await assertKeyRejected(rot.json.key, 'deleted key');
  assert.deepEqual(rowCounts(stack), counts, 'key delete must be soft');
  assert.equal(sql(stack, `SELECT is_active FROM user_keys WHERE id = '${k.id}'`), 'f');
  assert.ok(!(await admin('GET', '/admin/keys')).json.some((x) => x.id === k.id && x.is_active), 'deleted key listed as active');

  // A deleted key cannot be brought back by PUT or rotate.
  const revive = await admin('PUT', `/admin/keys/${k.id}`, { is_active: true });
  assert.notEqual(revive.status, 200, `PUT is_active:true revived a deleted key: ${revive.text}`);
  const rerot = await admin('POST', `/admin/keys/${k.id}/rotate`);
  assert.notEqual(rerot.status, 200, `rotate revived a deleted key: ${rerot.text}`);
  if (rerot.json?.key) userKeys.push(rerot.json.key);
  assert.ok(!inKeySet(stack, rot.json.key));
  await assertKeyRejected(rot.json.key, 'deleted key after revive attempts');
  assert.equal(sql(stack, `SELECT is_active FROM user_keys WHERE id = '${k.id}'`), 'f');
});

test('rotating an inactive key keeps it inactive (new key does not work, not in Redis)', async () => {
  const k = await createKey();
  assert.equal((await admin('PUT', `/admin/keys/${k.id}`, { is_active: false })).status, 200);
  const rot = await admin('POST', `/admin/keys/${k.id}/rotate`);
  assert.equal(rot.status, 200, rot.text);
  userKeys.push(rot.json.key);
  assert.equal(rot.json.is_active, false);
  assert.ok(!inKeySet(stack, rot.json.key));
  await assertKeyRejected(rot.json.key, 'rotated inactive key');
  await assertKeyRejected(k.key, 'old inactive key');
});

// ---------------------------------------------------------------------------------------------
// Routes in Redis

test('routes: HASH entry per active model (no secret), follows model/provider changes, force delete', async () => {
  const secret = newProviderSecret();
  const p = await createProvider({ kind: 'openai', base_url: stack.mock.url, api_key: secret });
  const m = await createModel(p.id, { provider_model_name: 'gpt-4o-mini' });
  const raw = redisCli(stack, 'HGET', 'llmgw:routes', m.name);
  let route = routeOf(stack, m.name);
  assert.ok(route, `no llmgw:routes entry for ${m.name}`);
  assert.equal(route.provider_id, p.id);
  assert.equal(route.upstream_model, 'gpt-4o-mini');
  assert.equal(route.base_url, stack.mock.url);
  for (const s of [secret, secret.slice(4, -4), p.api_key_preview, sql(stack, `SELECT api_key_enc FROM providers WHERE id = '${p.id}'`)])
    assert.ok(!raw.includes(s), `route JSON carries a secret: ${raw}`);
  assert.ok(!/api_key|secret|authorization/i.test(raw), `route JSON has a secret-like field: ${raw}`);

  // The route is usable: the mock sees the decrypted provider key and the upstream model name.
  const user = await createKey();
  stack.mock.reset();
  const chat = await stack.request('POST', '/v1/chat/completions', {
    headers: { authorization: `Bearer ${user.key}` },
    body: { model: m.name, messages: [{ role: 'user', content: 'hi' }] },
  });
  assert.equal(chat.status, 200, chat.text);
  const seen = stack.mock.requests.at(-1);
  assert.equal(seen?.headers.authorization, `Bearer ${secret}`, 'upstream did not get the provider key');
  assert.equal(seen?.json?.model, 'gpt-4o-mini');
  const listed = await v1Models(user.key);
  assert.ok(listed.json?.data?.some((x) => x.id === m.name), `/v1/models lacks ${m.name}: ${listed.text}`);

  // Model changes.
  assert.equal((await admin('PUT', `/admin/models/${m.id}`, { provider_model_name: 'gpt-4o' })).status, 200);
  assert.equal(routeOf(stack, m.name)?.upstream_model, 'gpt-4o');
  assert.equal((await admin('PUT', `/admin/models/${m.id}`, { provider_model_name: null })).status, 200);
  assert.equal(routeOf(stack, m.name)?.upstream_model, m.name, 'null provider_model_name -> public name');
  assert.equal((await admin('PUT', `/admin/models/${m.id}`, { is_active: false })).status, 200);
  assert.equal(routeOf(stack, m.name), null, 'inactive model still routed');
  assertError(await stack.request('GET', `/v1/models/${m.name}`, { headers: { authorization: `Bearer ${user.key}` } }),
    404, 'model_not_found', 'inactive model via /v1/models/{model}');
  assert.equal((await admin('PUT', `/admin/models/${m.id}`, { is_active: true })).status, 200);
  assert.ok(routeOf(stack, m.name), 'reactivated model not routed');
  const newName = uniq('renamed-model');
  assert.equal((await admin('PUT', `/admin/models/${m.id}`, { name: newName })).status, 200);
  assert.equal(routeOf(stack, m.name), null, 'old model name still routed after rename');
  assert.equal(routeOf(stack, newName)?.provider_id, p.id);

  // Provider changes.
  const moved = 'http://127.0.0.1:9/elsewhere/v1';
  assert.equal((await admin('PUT', `/admin/providers/${p.id}`, { base_url: moved })).status, 200);
  assert.equal(routeOf(stack, newName)?.base_url, moved);
  assert.equal((await admin('PUT', `/admin/providers/${p.id}`, { base_url: stack.mock.url })).status, 200);
  assert.equal((await admin('PUT', `/admin/providers/${p.id}`, { is_active: false })).status, 200);
  assert.equal(routeOf(stack, newName), null, 'model of an inactive provider still routed');
  assert.equal((await admin('PUT', `/admin/providers/${p.id}`, { is_active: true })).status, 200);
  assert.equal(routeOf(stack, newName)?.base_url, stack.mock.url);

  // Delete the provider: 409 while used, nothing changed; force deactivates the model.
  const before = rowCounts(stack);
  assertError(await admin('DELETE', `/admin/providers/${p.id}`), 409, 'conflict', 'delete provider in use');
  assert.deepEqual(rowCounts(stack), before);
  assert.equal((await admin('GET', `/admin/providers/${p.id}`)).status, 200, 'provider gone after a 409');
  assert.equal((await admin('GET', `/admin/models/${m.id}`)).json.is_active, true, 'model changed after a 409');
  assert.ok(routeOf(stack, newName), 'route dropped after a 409');
  const forced = await admin('DELETE', `/admin/providers/${p.id}?force=true`);
  assert.equal(forced.status, 204, forced.text);
  assertError(await admin('GET', `/admin/providers/${p.id}`), 404, 'not_found');
  const after = await admin('GET', `/admin/models/${m.id}`);
  assert.equal(after.status, 200, after.text);
  assert.equal(after.json.is_active, false, 'force delete did not deactivate the model');
  assert.equal(routeOf(stack, newName), null, 'model of a deleted provider still routed');
  assertError(await stack.request('POST', '/v1/chat/completions', {
    headers: { authorization: `Bearer ${user.key}` },
    body: { model: newName, messages: [{ role: 'user', content: 'hi' }] },
  }), 404, 'model_not_found', 'chat with a model of a deleted provider');
});

test('routes: deleting a model removes its route; force=false is not force', async () => {
  const p = await createProvider({ base_url: stack.mock.url });
  const m = await createModel(p.id);
  assert.ok(routeOf(stack, m.name));
  assertError(await admin('DELETE', `/admin/providers/${p.id}?force=false`), 409, 'conflict');
  assert.equal((await admin('DELETE', `/admin/models/${m.id}`)).status, 204);
  assert.equal(routeOf(stack, m.name), null, 'deleted model still routed');
  // With its only model deleted, the provider can go without force.
  assert.equal((await admin('DELETE', `/admin/providers/${p.id}`)).status, 204);
});

// ---------------------------------------------------------------------------------------------
// PostgreSQL is the truth: restarts and Redis loss

async function snapshot() {
  const [providers, models, keys] = await Promise.all(['providers', 'models', 'keys'].map((x) => admin('GET', `/admin/${x}`)));
  return { providers: providers.json, models: models.json, keys: keys.json };
}
const activeRoutes = () => Number(sql(stack, `SELECT count(*) FROM models m JOIN providers p ON p.id = m.provider_id
  WHERE m.deleted_at IS NULL AND m.is_active AND p.deleted_at IS NULL AND p.is_active`));
const activeKeys = () => Number(sql(stack, 'SELECT count(*) FROM user_keys WHERE is_active AND revoked_at IS NULL'));

async function fixtureForWarmup() {
  const p = await createProvider({ base_url: stack.mock.url, api_key: newProviderSecret() });
  const m = await createModel(p.id, { provider_model_name: 'gpt-4o-mini' });
  const live = await createKey();
  const dead = await createKey();
  assert.equal((await admin('DELETE', `/admin/keys/${dead.id}`)).status, 204);
  return { p, m, live, dead };
}
async function assertWarm(f, what) {
  await eventually(() => inKeySet(stack, f.live.key) && routeOf(stack, f.m.name) !== null, 5000,
    `${what}: llmgw:key_records / llmgw:routes re-warmed`);
  assert.equal(keySetSize(stack), activeKeys(), `${what}: llmgw:key_records size != active keys in PG`);
  assert.equal(routeCount(stack), activeRoutes(), `${what}: llmgw:routes size != active routes in PG`);
  assert.ok(!inKeySet(stack, f.dead.key), `${what}: a deleted key came back into llmgw:key_records`);
  assert.equal(routeOf(stack, f.m.name).provider_id, f.p.id);
}

test('gateway restart keeps everything and re-warms a flushed Redis', async () => {
  const f = await fixtureForWarmup();
  const before = await snapshot();
  assert.equal(redisCli(stack, 'FLUSHALL'), 'OK');
  assert.equal(keySetSize(stack), 0);
  await stack.gateway.restart();
  assert.deepEqual(await snapshot(), before, 'admin lists changed across a restart');
  await assertWarm(f, 'after restart');
  await assertKeyWorks(f.live.key, 'live key after restart');
  await assertKeyRejected(f.dead.key, 'deleted key after restart');
  const listed = await v1Models(f.live.key);
  assert.ok(listed.json?.data?.some((x) => x.id === f.m.name), `/v1/models after restart: ${listed.text}`);
});

test('Redis stop + start (empty): keys SET and routes HASH come back within seconds, unprompted', async () => {
  const f = await fixtureForWarmup();
  await stack.redis.stop();
  await stack.redis.start();
  // The restarted Redis starts empty (no persistence); the gateway may re-warm it within
  // milliseconds, so check the configuration rather than race it for an empty keyspace.
  assert.match(redisRaw(stack, 'CONFIG', 'GET', 'appendonly'), /\bno\b/, 'restarted Redis has AOF on');
  assert.doesNotMatch(redisRaw(stack, 'CONFIG', 'GET', 'save'), /\d/, 'restarted Redis has RDB snapshots on');
  await assertWarm(f, 'after Redis restart');
  await assertKeyWorks(f.live.key, 'live key after Redis restart');
  await assertKeyRejected(f.dead.key, 'deleted key after Redis restart');
});

test('FLUSHALL without reconnect: keys still authenticate from PG and /v1/models still lists routes', async () => {
  const f = await fixtureForWarmup();
  assert.equal(redisCli(stack, 'FLUSHALL'), 'OK');
  await assertKeyWorks(f.live.key, 'live key after FLUSHALL');
  assert.ok(inKeySet(stack, f.live.key), 'key not re-added to llmgw:key_records after a PG fallback');
  await assertKeyRejected(f.dead.key, 'deleted key after FLUSHALL');
  const listed = await v1Models(f.live.key);
  assert.equal(listed.status, 200, listed.text);
  assert.ok(listed.json?.data?.some((x) => x.id === f.m.name),
    `/v1/models lost active model ${f.m.name} after FLUSHALL (Redis is only a cache): ${listed.text}`);
});

test('admin writes while Redis is down land in PG, work at once, and Redis is right once it is back', async () => {
  const f = await fixtureForWarmup();
  await stack.redis.stop();
  let created, p, m;
  try {
    created = await admin('POST', '/admin/keys', { name: uniq('during-outage') });
    assert.equal(created.status, 201, `create key with Redis down: ${created.text}`);
    userKeys.push(created.json.key);
    assert.equal((await admin('DELETE', `/admin/keys/${f.live.id}`)).status, 204, 'revoke with Redis down');
    const pr = await admin('POST', '/admin/providers', { name: uniq('outage'), kind: 'openai', base_url: stack.mock.url });
    assert.equal(pr.status, 201, pr.text);
    p = pr.json;
    const mr = await admin('POST', '/admin/models', { name: uniq('outage'), provider_id: p.id });
    assert.equal(mr.status, 201, mr.text);
    m = mr.json;
    await assertKeyWorks(created.json.key, 'key created during the outage, Redis down');
    await assertKeyRejected(f.live.key, 'key revoked during the outage, Redis down');
  } finally {
    await stack.redis.start();
  }
  await eventually(() => inKeySet(stack, created.json.key) && routeOf(stack, m.name) !== null, 5000,
    'key / route written during the outage reach Redis');
  assert.ok(!inKeySet(stack, f.live.key), 'key revoked during the outage is in llmgw:key_records');
  assert.equal(keySetSize(stack), activeKeys());
  assert.equal(routeCount(stack), activeRoutes());
  await assertKeyWorks(created.json.key, 'key created during the outage, Redis back');
  await assertKeyRejected(f.live.key, 'key revoked during the outage, Redis back');
});

// ---------------------------------------------------------------------------------------------
// Two gateways on one PostgreSQL + Redis

test('two gateways: revoke / deactivate / rotate through A is seen by B within 1 s', async () => {
  const b = await startExtraGateway(stack);
  extra.push(b);
  const a = stack.gateway.url;
  const p = await createProvider({ base_url: stack.mock.url });
  const m = await createModel(p.id);
  const k = await createKey();
  for (const url of [a, b.url]) assert.equal((await listModels(url, k.key)).status, 200, `key on ${url}`);
  const getModel = (url) => fetch(`${url}/v1/models/${m.name}`, { headers: { authorization: `Bearer ${k.key}` } }).then((r) => r.status);
  assert.equal(await getModel(b.url), 200, 'B resolves the model (and caches the route)');

  // Deactivating the model through A: B answers 404 within 1 s (its in-process route cache is invalidated).
  assert.equal((await admin('PUT', `/admin/models/${m.id}`, { is_active: false })).status, 200);
  await eventually(async () => (await getModel(b.url)) === 404, 1000, 'B drops the deactivated model');

  // Deactivate then reactivate the key through A.
  assert.equal((await admin('PUT', `/admin/keys/${k.id}`, { is_active: false })).status, 200);
  await eventually(async () => (await listModels(b.url, k.key)).status === 401, 1000, 'B rejects the deactivated key');
  assert.equal((await admin('PUT', `/admin/keys/${k.id}`, { is_active: true })).status, 200);
  await eventually(async () => (await listModels(b.url, k.key)).status === 200, 1000, 'B accepts the reactivated key');

  // Rotate through A: B rejects the old key and accepts the new one.
  const rot = await admin('POST', `/admin/keys/${k.id}/rotate`);
  assert.equal(rot.status, 200, rot.text);
  userKeys.push(rot.json.key);
  await eventually(async () => (await listModels(b.url, k.key)).status === 401, 1000, 'B rejects the rotated-out key');
  assert.equal((await listModels(b.url, rot.json.key)).status, 200, 'B accepts the rotated-in key at once');

  // Revoke through A.
  const t0 = Date.now();
  assert.equal((await admin('DELETE', `/admin/keys/${k.id}`)).status, 204);
  await eventually(async () => {
    const r = await listModels(b.url, rot.json.key);
    return r.status === 401 && r.json?.error?.code === 'invalid_api_key';
  }, 1000, 'B rejects the revoked key');
  assert.ok(Date.now() - t0 <= 1500);
  for (const l of b.lines) for (const s of [...userKeys, ...providerSecrets]) assert.ok(!l.includes(s), `gateway B logged a secret: ${l}`);
  await b.stop();
});

// ---------------------------------------------------------------------------------------------
// Secrets never leak (runs last: covers everything the tests above created)

test('no plaintext provider key or user key in any table, admin response or gateway log', async () => {
  assert.ok(providerSecrets.length >= 5 && userKeys.length >= 5, 'the tests above should have created secrets');
  const enc = sql(stack, 'SELECT coalesce(api_key_enc, \'\') FROM providers').split('\n');
  const dump = pgDumpData(stack);
  const logs = stack.gateway.logs().join('\n') + '\n' + stack.gateway.stderr();
  for (const s of providerSecrets) {
    for (const e of enc) assert.ok(!e.includes(s), 'api_key_enc contains a plaintext provider key');
    assert.ok(!dump.includes(s), 'pg_dump --data-only contains a plaintext provider key');
    const middle = s.length > 24 ? s.slice(8, -4) : s; // the part the preview never shows
    assert.ok(!dump.includes(middle), 'pg_dump contains the middle of a provider key');
    assert.ok(!logs.includes(s) && !logs.includes(middle), 'gateway logs contain a provider key');
    for (const b of adminBodies) assert.ok(!b.includes(s), `admin response contains a provider key: ${b}`);
  }
  for (const k of userKeys) {
    assert.ok(!dump.includes(k), 'pg_dump contains a plaintext user key');
    assert.ok(!dump.includes(k.slice(12)), 'pg_dump contains the secret part of a user key');
    assert.ok(!logs.includes(k) && !logs.includes(k.slice(12)), 'gateway logs contain a user key');
    const creating = adminBodies.filter((b) => b.includes(k));
    assert.ok(creating.length <= 1, `user key shown by more than its creating response: ${creating.join('\n')}`);
    assert.ok(creating.every((b) => /^POST \/admin\/keys(\/[^ ]+\/rotate)? -> 20[01] /.test(b)), `user key shown outside create/rotate: ${creating}`);
  }
  const redisDump = redisRaw(stack, 'HGETALL', 'llmgw:routes') + redisRaw(stack, 'HGETALL', 'llmgw:key_records');
  for (const s of [...providerSecrets, ...userKeys]) assert.ok(!redisDump.includes(s), 'Redis holds a plaintext secret');
});

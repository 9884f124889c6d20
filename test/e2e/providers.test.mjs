// Provider kinds end to end: for every kind a provider pointing at the mock upstream (under the
// path prefix the real API uses), one chat completion through the gateway, and what the mock saw:
// the exact upstream path (base_url path + the suffix after /v1, query kept), the auth scheme and
// value, the upstream model name in an otherwise byte-identical body, X-Request-Id; and the
// X-LLM-* headers the client got back. Azure both ways (v1 base, {model} deployment URL with
// api_version), keyless Ollama, extra_headers (sent, names only in the admin API, never logged),
// and the default base URL of each kind (no traffic is sent there).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack } from './lib/harness.mjs';
import { startMockUpstream } from '../mock_upstream/server.mjs';
import { adminOk, createKey, newId, upstreamRequest, v1 } from './lib/proxy_helpers.mjs';

const T = { timeout: 20_000 };
const tag = crypto.randomBytes(3).toString('hex');
const secret = (what) => `sk-${what}-${crypto.randomBytes(8).toString('hex')}`;

// kind -> the path prefix of its real base URL (used under the mock's origin).
const KINDS = [
  ['openai', '/v1'],
  ['gemini', '/v1beta/openai'],
  ['mistral', '/v1'],
  ['groq', '/openai/v1'],
  ['together', '/v1'],
  ['fireworks', '/inference/v1'],
  ['deepseek', '/v1'],
  ['xai', '/v1'],
  ['dashscope', '/compatible-mode/v1'],
  ['ark', '/api/v3'],
  ['openrouter', '/api/v1'],
  ['vllm', '/v1'],
  ['openai_compatible', '/custom/llm/v1'],
  ['anthropic', '/v1'], // its OpenAI-compatible endpoint: Bearer, not x-api-key
];

const DEFAULT_BASE_URLS = {
  openai: 'https://api.openai.com/v1',
  anthropic: 'https://api.anthropic.com/v1',
  gemini: 'https://generativelanguage.googleapis.com/v1beta/openai',
  mistral: 'https://api.mistral.ai/v1',
  groq: 'https://api.groq.com/openai/v1',
  together: 'https://api.together.xyz/v1',
  fireworks: 'https://api.fireworks.ai/inference/v1',
  deepseek: 'https://api.deepseek.com/v1',
  xai: 'https://api.x.ai/v1',
  dashscope: 'https://dashscope.aliyuncs.com/compatible-mode/v1',
  ark: 'https://ark.cn-beijing.volces.com/api/v3',
  openrouter: 'https://openrouter.ai/api/v1',
  ollama: 'http://localhost:11434/v1',
  vllm: 'http://localhost:8000/v1',
};

const PROVIDER_FIELDS = ['id', 'name', 'kind', 'base_url', 'api_key_preview', 'api_version', 'extra_headers', 'is_active', 'created_at', 'updated_at'];

let stack, open, key, keyId;
const routes = {}; // label -> {provider, model, upstream, apiKey, mock, prefix}

// Provider + model; returns the route description.
async function addRoute(label, { kind, apiKey, baseUrl, mock, prefix, apiVersion, extraHeaders, upstream }) {
  const body = { name: `${label}-${tag}`, kind };
  if (apiKey !== undefined) body.api_key = apiKey;
  if (baseUrl !== undefined) body.base_url = baseUrl;
  if (apiVersion !== undefined) body.api_version = apiVersion;
  if (extraHeaders !== undefined) body.extra_headers = extraHeaders;
  const provider = await adminOk(stack, 'POST', '/admin/providers', body, 201);
  const model = `m-${label}`;
  upstream ??= `up-${label}-model`;
  await adminOk(stack, 'POST', '/admin/models', { name: model, provider_id: provider.id, provider_model_name: upstream }, 201);
  routes[label] = { provider, model, upstream, apiKey, mock, prefix };
  return routes[label];
}

before(async () => {
  stack = await startStack({ env: { LOG_LEVEL: 'debug' } });
  open = await startMockUpstream({ requireAuth: false });
  const origin = stack.mock.origin;
  for (const [kind, prefix] of KINDS) {
    await addRoute(kind, { kind, apiKey: secret(kind), baseUrl: origin + prefix, mock: stack.mock, prefix });
  }
  await addRoute('azure-v1', { kind: 'azure', apiKey: secret('azure'), baseUrl: `${origin}/openai/v1`, mock: stack.mock, prefix: '/openai/v1' });
  await addRoute('azure-dep', {
    kind: 'azure', apiKey: secret('azuredep'), baseUrl: `${origin}/openai/deployments/{model}`, apiVersion: '2024-10-21',
    mock: stack.mock, upstream: 'gpt-4o-deploy-1',
  });
  await addRoute('ollama', { kind: 'ollama', baseUrl: open.url, mock: open, prefix: '/v1' });
  await addRoute('nokey-compat', { kind: 'openai_compatible', baseUrl: `${open.origin}/compat/v1`, mock: open, prefix: '/compat/v1' });
  ({ key, id: keyId } = await createKey(stack, 'providers'));
});
after(async () => {
  await open?.close();
  await stack?.stop();
});

const messages = [{ role: 'user', content: 'Grüße aus Köln — "quoted" \\ 🌍' }];

// One chat completion for a route's model; returns {res, up, sent} after the common assertions.
async function chatThrough(label, { body, query = '' } = {}) {
  const r = routes[label];
  const sent = body ?? JSON.stringify({ model: r.model, messages, temperature: 0.25, user: 'u-1' });
  const res = await v1(stack, 'POST', `/v1/chat/completions${query}`, { key, body: sent, headers: { 'Content-Type': 'application/json' } });
  assert.equal(res.statusCode, 200, `${label}: ${res.statusCode} ${res.text}`);
  assert.equal(res.json?.object, 'chat.completion', `${label}: ${res.text}`);
  assert.equal(res.json.model, r.upstream, `${label}: the mock echoes the model it was sent`);
  const up = await upstreamRequest(r.mock, res.id);
  assert.equal(up.method, 'POST');
  assert.equal(up.endpoint, 'chat.completions', `${label}: ${up.path}`);
  assert.equal(up.json.model, r.upstream, `${label}: upstream model name in the body`);
  // Only the model changes: every other byte of the body is the client's.
  assert.equal(up.body, sent.replace(`"${r.model}"`, `"${r.upstream}"`), `${label}: body bytes`);
  assert.equal(up.headers['x-request-id'], res.id, `${label}: X-Request-Id upstream`);
  // X-LLM-* response headers
  assert.equal(res.headers['x-llm-provider'], r.provider.name, `${label}: X-LLM-Provider`);
  assert.equal(res.headers['x-llm-model'], r.upstream, `${label}: X-LLM-Model`);
  assert.equal(res.headers['x-llm-key-id'], keyId, `${label}: X-LLM-Key-ID`);
  assert.equal(res.headers['x-llm-attempts'], '1', `${label}: X-LLM-Attempts`);
  assert.match(res.headers['x-llm-latency-ms'] ?? '', /^\d+$/, `${label}: X-LLM-Latency-Ms`);
  return { res, up, sent };
}

for (const [kind, prefix] of KINDS) {
  test(`${kind}: POST ${prefix}/chat/completions upstream, Bearer with the provider key, model rewritten, X-LLM-*`, T, async () => {
    const r = routes[kind];
    assert.equal(r.provider.kind, kind);
    assert.equal(r.provider.base_url, stack.mock.origin + prefix);
    const { up } = await chatThrough(kind);
    assert.equal(up.path, `${prefix}/chat/completions`);
    assert.deepEqual(up.auth, { scheme: 'bearer', value: r.apiKey });
    assert.equal(up.headers.authorization, `Bearer ${r.apiKey}`);
    assert.equal(up.headers['x-api-key'], undefined, 'no x-api-key on an OpenAI-format request');
    assert.equal(up.headers['api-key'], undefined);
    assert.ok(!JSON.stringify(up.headers).includes(key), 'the gateway key does not reach the upstream');
  });
}

test('the query string is kept; whitespace and key order of the body are untouched', T, async () => {
  const r = routes.openai_compatible;
  const body = `{ "messages" :[ {"role":"user","content":"x"} ] ,\n  "model"  :  "${r.model}" , "n": 1 , "z": {"model":"inner"} }`;
  const { up } = await chatThrough('openai_compatible', { body, query: '?trace=abc%20def&x=1' });
  assert.equal(up.path, `${r.prefix}/chat/completions?trace=abc%20def&x=1`);
  assert.equal(up.json.z.model, 'inner', 'only the top-level model is rewritten');
});

test('azure with a v1 base URL: api-key header, no Authorization, no api-version', T, async () => {
  const r = routes['azure-v1'];
  const { up } = await chatThrough('azure-v1');
  assert.equal(up.path, '/openai/v1/chat/completions');
  assert.deepEqual(up.auth, { scheme: 'api-key', value: r.apiKey });
  assert.equal(up.headers.authorization, undefined, 'azure sends no Authorization header');
});

test('azure deployment URL: {model} -> upstream model, ?api-version=<api_version>, api-key header', T, async () => {
  const r = routes['azure-dep'];
  assert.equal(r.provider.api_version, '2024-10-21');
  assert.equal(r.provider.base_url, `${stack.mock.origin}/openai/deployments/{model}`);
  const { up } = await chatThrough('azure-dep');
  assert.equal(up.path, '/openai/deployments/gpt-4o-deploy-1/chat/completions?api-version=2024-10-21');
  assert.deepEqual(up.auth, { scheme: 'api-key', value: r.apiKey });
  assert.equal(up.headers.authorization, undefined);
  // A client query string and the api-version both arrive.
  const again = await chatThrough('azure-dep', { query: '?foo=bar' });
  const q = new URL(again.up.path, 'http://x').searchParams;
  assert.equal(again.up.path.split('?')[0], '/openai/deployments/gpt-4o-deploy-1/chat/completions');
  assert.equal(q.get('api-version'), '2024-10-21', again.up.path);
  assert.equal(q.get('foo'), 'bar', again.up.path);
});

test('ollama without api_key (default needs none): no Authorization header upstream', T, async () => {
  const r = routes.ollama;
  assert.equal(r.provider.api_key_preview, null);
  const { up } = await chatThrough('ollama');
  assert.equal(up.path, '/v1/chat/completions');
  assert.deepEqual(up.auth, { scheme: 'none', value: null });
  assert.equal(up.headers.authorization, undefined);
  assert.ok(!JSON.stringify(up.headers).includes(key), 'the gateway key does not reach the upstream');
  // same for any kind created without a key
  const n = await chatThrough('nokey-compat');
  assert.equal(n.up.path, '/compat/v1/chat/completions');
  assert.deepEqual(n.up.auth, { scheme: 'none', value: null });
});

test('admin provider JSON: fields, api_key never shown whole', T, async () => {
  for (const r of Object.values(routes)) {
    const got = await adminOk(stack, 'GET', `/admin/providers/${r.provider.id}`, undefined, 200);
    for (const f of PROVIDER_FIELDS) assert.ok(f in got, `${r.provider.name}: field ${f} missing in ${JSON.stringify(got)}`);
    assert.deepEqual(got.extra_headers, []);
    assert.equal(got.is_active, true);
    if (r.apiKey) {
      assert.equal(typeof got.api_key_preview, 'string');
      assert.ok(!JSON.stringify(got).includes(r.apiKey), `${r.provider.name}: the api key is shown: ${JSON.stringify(got)}`);
    }
  }
});

test('extra_headers reach the upstream on every request, are shown by name only, and never logged', T, async () => {
  const values = {
    referer: `https://app.example.test/${crypto.randomBytes(6).toString('hex')}`,
    title: `Secret Title ${crypto.randomBytes(6).toString('hex')}`,
    org: `org-${crypto.randomBytes(9).toString('hex')}`,
    proj: `proj_${crypto.randomBytes(9).toString('hex')}`,
  };
  const or = await addRoute('openrouter-x', {
    kind: 'openrouter', apiKey: secret('or'), baseUrl: `${stack.mock.origin}/api/v1`, mock: stack.mock, prefix: '/api/v1',
    extraHeaders: { 'HTTP-Referer': values.referer, 'X-Title': values.title },
  });
  const oa = await addRoute('openai-x', {
    kind: 'openai', apiKey: secret('oa'), baseUrl: stack.mock.url, mock: stack.mock, prefix: '/v1',
    extraHeaders: { 'OpenAI-Organization': values.org, 'OpenAI-Project': values.proj },
  });

  // admin API: names only, on create, get and list
  const names = (p) => [...p.extra_headers].map((n) => n.toLowerCase()).sort();
  assert.deepEqual(names(or.provider), ['http-referer', 'x-title']);
  assert.deepEqual(names(oa.provider), ['openai-organization', 'openai-project']);
  const list = await stack.admin('GET', '/admin/providers');
  assert.equal(list.status, 200);
  for (const p of [or.provider, oa.provider]) {
    const got = await stack.admin('GET', `/admin/providers/${p.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(names(got.json), names(p));
  }
  for (const [what, text] of [['create', JSON.stringify([or.provider, oa.provider])], ['list', list.text]]) {
    for (const v of Object.values(values)) assert.ok(!text.includes(v), `admin ${what} shows the header value ${v}`);
  }

  // upstream: every request of the provider carries them
  const a = await chatThrough('openrouter-x');
  assert.equal(a.up.headers['http-referer'], values.referer);
  assert.equal(a.up.headers['x-title'], values.title);
  assert.deepEqual(a.up.auth, { scheme: 'bearer', value: or.apiKey });
  const b = await chatThrough('openai-x');
  assert.equal(b.up.headers['openai-organization'], values.org);
  assert.equal(b.up.headers['openai-project'], values.proj);
  assert.equal(b.up.headers['http-referer'], undefined, 'another provider\'s extra headers stay with it');

  const emb = await v1(stack, 'POST', '/v1/embeddings', { key, body: { model: or.model, input: 'hello' } });
  assert.equal(emb.statusCode, 200, emb.text);
  const upEmb = await upstreamRequest(stack.mock, emb.id);
  assert.equal(upEmb.path, '/api/v1/embeddings');
  assert.equal(upEmb.headers['http-referer'], values.referer);
  assert.equal(upEmb.headers['x-title'], values.title);

  const created = await v1(stack, 'POST', '/v1/responses', { key, body: { model: oa.model, input: 'hi' } });
  assert.equal(created.statusCode, 200, created.text);
  const upResp = await upstreamRequest(stack.mock, created.id);
  assert.equal(upResp.path, '/v1/responses');
  assert.equal(upResp.headers['openai-organization'], values.org);
  // GET /v1/responses/{id} goes to the same provider, with its headers (the id is remembered
  // asynchronously: retry briefly).
  const deadline = Date.now() + 1000;
  let got;
  for (;;) {
    got = await v1(stack, 'GET', `/v1/responses/${created.json.id}`, { key, id: newId('get') });
    if (got.statusCode !== 404 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(got.statusCode, 200, got.text);
  const upGet = await upstreamRequest(stack.mock, got.id);
  assert.equal(upGet.method, 'GET');
  assert.equal(upGet.headers['openai-organization'], values.org);
  assert.equal(upGet.headers['openai-project'], values.proj);

  // never logged (LOG_LEVEL=debug for this stack), on stdout or stderr
  await new Promise((r) => setTimeout(r, 100)); // let the last access log lines arrive
  const logs = stack.gateway.logs().join('\n') + '\n' + stack.gateway.stderr();
  assert.ok(logs.length > 0);
  for (const v of Object.values(values)) {
    const line = logs.split('\n').find((l) => l.includes(v));
    assert.equal(line, undefined, `a gateway log line holds the extra header value ${v}: ${line}`);
  }
});

test('default base URL per kind when base_url is omitted (no traffic sent)', T, async () => {
  for (const [kind, url] of Object.entries(DEFAULT_BASE_URLS)) {
    const body = { name: `default-${kind}-${tag}`, kind };
    if (kind !== 'ollama') body.api_key = secret(kind);
    const r = await stack.admin('POST', '/admin/providers', body);
    assert.equal(r.status, 201, `${kind}: ${r.status} ${r.text}`);
    assert.equal(r.json.kind, kind);
    assert.equal(r.json.base_url, url, `${kind}: default base_url`);
    if (kind === 'ollama') assert.equal(r.json.api_key_preview, null);
  }
  // base_url is required for openai_compatible and azure
  for (const kind of ['openai_compatible', 'azure']) {
    const r = await stack.admin('POST', '/admin/providers', { name: `nourl-${kind}-${tag}`, kind, api_key: secret(kind) });
    assert.equal(r.status, 400, `${kind} without base_url: ${r.status} ${r.text}`);
  }
  const bad = await stack.admin('POST', '/admin/providers', { name: `bad-kind-${tag}`, kind: 'no-such-kind', api_key: 'k' });
  assert.equal(bad.status, 400, bad.text);
});

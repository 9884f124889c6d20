// Anthropic's Messages API through the gateway: /v1/messages and /v1/messages/count_tokens for
// models routed to an `anthropic` provider. The unmodified @anthropic-ai/sdk (which sends
// `Authorization: Bearer <gateway key>` and its own anthropic-version) talks to the gateway as if
// it were api.anthropic.com; raw requests check the header rewriting (x-api-key, anthropic-version,
// anthropic-beta), the passthrough of SSE bytes and of Anthropic response headers, and the
// Anthropic error shape of the gateway's own errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import { startStack } from './lib/harness.mjs';
import { startMockUpstream } from '../mock_upstream/server.mjs';
import { adminOk, createKey, newId, upstreamRequest, v1 } from './lib/proxy_helpers.mjs';
import { buildRequest, rawRequest } from './lib/http.mjs';

const T = { timeout: 15_000 };
const tag = crypto.randomBytes(3).toString('hex');
const ANTH_KEY = `sk-ant-api03-${crypto.randomBytes(12).toString('hex')}`;
const OAI_KEY = `sk-openai-${crypto.randomBytes(12).toString('hex')}`;
const BUSY_KEY = `sk-ant-busy-${crypto.randomBytes(12).toString('hex')}`;
const UPSTREAM = 'claude-sonnet-4-6';
const SDK_VERSION = '2026-10-21'; // the anthropic-version @anthropic-ai/sdk 1.x sends

let stack, m429, m529, key, keyId, claude;
const names = {};

async function provider(name, kind, apiKey, baseUrl) {
  const p = await adminOk(stack, 'POST', '/admin/providers', { name: `${name}-${tag}`, kind, api_key: apiKey, base_url: baseUrl }, 201);
  names[name] = p.name;
  return p;
}
const model = (name, p, upstream) => adminOk(stack, 'POST', '/admin/models', { name, provider_id: p.id, provider_model_name: upstream }, 201);

before(async () => {
  stack = await startStack();
  // Dedicated upstreams that always fail, so that the cooldown of a failing route never touches
  // the routes of the other tests.
  m429 = await startMockUpstream({ defaults: { status: 429 } });
  m529 = await startMockUpstream({ defaults: { status: 529 } });
  const anth = await provider('anth', 'anthropic', ANTH_KEY, `${stack.mock.origin}/v1`);
  const oai = await provider('oai', 'openai', OAI_KEY, stack.mock.url);
  await model('claude-gw', anth, UPSTREAM);
  await model('gpt-only', oai, 'gpt-4o-mini');
  await model('claude-429', await provider('busy429', 'anthropic', BUSY_KEY, `${m429.origin}/v1`), UPSTREAM);
  await model('claude-529', await provider('busy529', 'anthropic', BUSY_KEY, `${m529.origin}/v1`), UPSTREAM);
  ({ key, id: keyId } = await createKey(stack, 'anthropic'));
  claude = sdk(key);
});
after(async () => {
  await Promise.all([m429?.close(), m529?.close()]);
  await stack?.stop();
});

const sdk = (apiKey, opts = {}) => new Anthropic({ apiKey, baseURL: stack.gateway.url, maxRetries: 0, timeout: 10_000, ...opts });
const msgBody = (extra = {}) => ({ model: 'claude-gw', max_tokens: 64, messages: [{ role: 'user', content: 'Say hi' }], ...extra });
const withId = (id) => ({ headers: { 'X-Request-Id': id } });

// A raw /v1/messages request with an x-api-key (not Authorization) gateway key.
function rawMessages(body, { headers = {}, path = '/v1/messages', id = newId('msg') } = {}) {
  const h = { 'X-Request-Id': id, 'x-api-key': key, 'content-type': 'application/json', ...headers };
  for (const k of Object.keys(h)) if (h[k] === null) delete h[k];
  return v1(stack, 'POST', path, { body, headers: h, id });
}

// Anthropic error body of the gateway: exactly {"type":"error","error":{"type","message"}}.
function assertAnthropicError(res, status, type) {
  const where = `HTTP ${res.statusCode} ${res.text}`;
  assert.equal(res.statusCode, status, where);
  assert.match(res.headers['content-type'] ?? '', /^application\/json/, where);
  assert.equal(res.json?.type, 'error', where);
  assert.equal(typeof res.json.error, 'object', where);
  assert.equal(res.json.error.type, type, where);
  assert.equal(typeof res.json.error.message, 'string', where);
  assert.ok(res.json.error.message.length > 0, where);
  return res.json.error;
}

async function expectError(fn, cls, status, type) {
  let err;
  try { await fn(); } catch (e) { err = e; }
  assert.ok(err, `expected ${cls.name}, but the call succeeded`);
  assert.ok(err instanceof cls, `expected ${cls.name}, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, status, err.message);
  if (type) assert.equal(err.type, type, `error type; body ${JSON.stringify(err.error)}`);
  return err;
}

// ---- the SDK -------------------------------------------------------------------------------

test('SDK messages.create: content, usage, model; upstream saw x-api-key, the SDK\'s version, the upstream model', T, async () => {
  const id = newId('sdk');
  const { data: msg, response } = await claude.messages.create(
    msgBody({ system: 'You are terse.', mock: { content: 'Hello from the mock!', chunks: 2 } }), withId(id)).withResponse();
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.model, UPSTREAM);
  assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello from the mock!' }]);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.usage.input_tokens, Math.ceil('Say hi'.length / 4) + 3 + Math.ceil('You are terse.'.length / 4));
  assert.equal(msg.usage.output_tokens, 2);
  assert.match(msg._request_id ?? '', /^req_011C/, 'request-id from the upstream reached the SDK');
  assert.equal(response.headers.get('x-llm-provider'), names.anth);
  assert.equal(response.headers.get('x-llm-model'), UPSTREAM);
  assert.equal(response.headers.get('x-llm-key-id'), keyId);

  const up = await upstreamRequest(stack.mock, id);
  assert.equal(up.path, '/v1/messages');
  assert.equal(up.endpoint, 'messages');
  assert.deepEqual(up.auth, { scheme: 'x-api-key', value: ANTH_KEY });
  assert.equal(up.headers.authorization, undefined, 'no Authorization header on a native Anthropic call');
  assert.equal(up.headers['anthropic-version'], SDK_VERSION, 'the client\'s anthropic-version is forwarded');
  assert.equal(up.json.model, UPSTREAM);
  assert.equal(up.json.system, 'You are terse.');
  assert.ok(!JSON.stringify(up.headers).includes(key), 'the gateway key does not reach the upstream');
});

test('SDK messages.stream(...).finalText() and finalMessage()', T, async () => {
  const id = newId('sdkstream');
  const s = claude.messages.stream(msgBody({ mock: { content: 'Streaming through the gateway — ✓', chunks: 5, usage: { output_tokens: 9 } } }), withId(id));
  const deltas = [];
  s.on('text', (t) => deltas.push(t));
  assert.equal(await s.finalText(), 'Streaming through the gateway — ✓');
  assert.equal(deltas.length, 5);
  const final = await s.finalMessage();
  assert.equal(final.model, UPSTREAM);
  assert.equal(final.usage.output_tokens, 9);
  assert.equal(final.stop_reason, 'end_turn');
  const up = await upstreamRequest(stack.mock, id);
  assert.equal(up.json.stream, true);
  assert.deepEqual(up.auth, { scheme: 'x-api-key', value: ANTH_KEY });
});

test('SDK messages.countTokens: /v1/messages/count_tokens upstream, model rewritten', T, async () => {
  const id = newId('count');
  const n = await claude.messages.countTokens({ model: 'claude-gw', messages: [{ role: 'user', content: 'Count these tokens please' }] }, withId(id));
  assert.deepEqual(n, { input_tokens: Math.ceil('Count these tokens please'.length / 4) + 3 });
  const up = await upstreamRequest(stack.mock, id);
  assert.equal(up.path, '/v1/messages/count_tokens');
  assert.equal(up.endpoint, 'messages.count_tokens');
  assert.equal(up.json.model, UPSTREAM);
  assert.deepEqual(up.auth, { scheme: 'x-api-key', value: ANTH_KEY });
  assert.equal(up.headers.authorization, undefined);
});

// ---- raw requests: bytes and headers --------------------------------------------------------

test('raw SSE bytes from the gateway equal the mock\'s bytes for the same request (event: lines included)', T, async () => {
  // (a) a generated stream: identical but for the message id, which is random per call
  const mockOpts = { content: 'Zwölf Boxkämpfer jagen Viktor 🥊 quer über den großen Sylter Deich.', chunks: 7 };
  const viaGateway = await rawMessages(msgBody({ stream: true, mock: mockOpts }), { headers: { 'anthropic-version': '2023-06-01' } });
  assert.equal(viaGateway.statusCode, 200, viaGateway.text);
  assert.match(viaGateway.headers['content-type'], /^text\/event-stream/);
  const direct = await rawRequest(stack.mock.port, buildRequest('POST', '/v1/messages', {
    headers: { 'x-api-key': 'sk-direct', 'anthropic-version': '2023-06-01' },
    body: { ...msgBody({ stream: true, mock: mockOpts }), model: UPSTREAM },
  }));
  assert.equal(direct.statusCode, 200, direct.text);
  const norm = (b) => b.toString('utf8').replace(/"id":"msg_01[1-9A-HJ-NP-Za-km-z]{22}"/g, '"id":"msg_X"');
  assert.equal(norm(viaGateway.body), norm(direct.body));
  assert.ok(viaGateway.text.includes('event: message_start\ndata: {"type":"message_start"'));
  assert.ok(viaGateway.text.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n'));

  // (b) fixed bytes, a multi-byte character split across two upstream writes: byte for byte
  const ev = (name, obj) => `event: ${name}\ndata: ${JSON.stringify(obj)}\n\n`;
  const full = Buffer.from([
    ev('message_start', { type: 'message_start', message: { id: 'msg_01FixedFixedFixedFixedFix', type: 'message', role: 'assistant', model: UPSTREAM, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 5, output_tokens: 1 } } }),
    ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    ev('ping', { type: 'ping' }),
    ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Ça va? 🌍' } }),
    ev('content_block_stop', { type: 'content_block_stop', index: 0 }),
    ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }),
    ev('message_stop', { type: 'message_stop' }),
  ].join(''));
  const cut = full.indexOf(Buffer.from('🌍')) + 2; // inside the 4-byte emoji
  const raw_chunks_b64 = [full.subarray(0, cut), full.subarray(cut)].map((b) => b.toString('base64'));
  const fixed = await rawMessages(msgBody({ stream: true, mock: { raw_chunks_b64 } }));
  assert.equal(fixed.statusCode, 200, fixed.text);
  assert.ok(fixed.body.equals(full), `bytes differ:\n${JSON.stringify(fixed.body.toString('latin1'))}\nvs\n${JSON.stringify(full.toString('latin1'))}`);
});

test('anthropic-version: 2023-06-01 when absent, the client\'s when sent; anthropic-beta forwarded; Bearer or x-api-key gateway key', T, async () => {
  const none = await rawMessages(msgBody(), { headers: { 'anthropic-version': null } });
  assert.equal(none.statusCode, 200, none.text);
  const upNone = await upstreamRequest(stack.mock, none.id);
  assert.equal(upNone.headers['anthropic-version'], '2023-06-01');
  assert.deepEqual(upNone.auth, { scheme: 'x-api-key', value: ANTH_KEY });
  assert.equal(upNone.headers.authorization, undefined);

  const beta = 'prompt-caching-2024-07-31,token-efficient-tools-2025-02-19';
  const mine = await rawMessages(msgBody(), { headers: { 'anthropic-version': '2024-02-29', 'anthropic-beta': beta } });
  assert.equal(mine.statusCode, 200, mine.text);
  const upMine = await upstreamRequest(stack.mock, mine.id);
  assert.equal(upMine.headers['anthropic-version'], '2024-02-29');
  assert.equal(upMine.headers['anthropic-beta'], beta);

  // the gateway key as Authorization: Bearer (what the SDK does) is accepted too, and replaced
  const bearer = await rawMessages(msgBody(), { headers: { 'x-api-key': null, Authorization: `Bearer ${key}`, 'anthropic-version': '2023-06-01' } });
  assert.equal(bearer.statusCode, 200, bearer.text);
  const upBearer = await upstreamRequest(stack.mock, bearer.id);
  assert.deepEqual(upBearer.auth, { scheme: 'x-api-key', value: ANTH_KEY });
  assert.equal(upBearer.headers.authorization, undefined);
  assert.ok(!JSON.stringify(upBearer.headers).includes(key));

  // count_tokens gets the same treatment
  const count = await rawMessages({ model: 'claude-gw', messages: [{ role: 'user', content: 'x' }] }, { path: '/v1/messages/count_tokens', headers: { 'anthropic-version': null, 'anthropic-beta': beta } });
  assert.equal(count.statusCode, 200, count.text);
  const upCount = await upstreamRequest(stack.mock, count.id);
  assert.equal(upCount.path, '/v1/messages/count_tokens');
  assert.equal(upCount.headers['anthropic-version'], '2023-06-01');
  assert.equal(upCount.headers['anthropic-beta'], beta);
  assert.deepEqual(upCount.auth, { scheme: 'x-api-key', value: ANTH_KEY });
});

test('anthropic-ratelimit-* and request-id response headers come back to the client', T, async () => {
  for (const stream of [false, true]) {
    const res = await rawMessages(msgBody({ stream }));
    assert.equal(res.statusCode, 200, res.text);
    assert.match(res.headers['request-id'] ?? '', /^req_011C[1-9A-HJ-NP-Za-km-z]{20}$/, `stream ${stream}: request-id`);
    for (const k of ['requests', 'tokens', 'input-tokens', 'output-tokens']) {
      assert.match(res.headers[`anthropic-ratelimit-${k}-limit`] ?? '', /^\d+$/, `stream ${stream}: anthropic-ratelimit-${k}-limit`);
      assert.match(res.headers[`anthropic-ratelimit-${k}-remaining`] ?? '', /^\d+$/, `stream ${stream}: anthropic-ratelimit-${k}-remaining`);
      assert.match(res.headers[`anthropic-ratelimit-${k}-reset`] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, `stream ${stream}: anthropic-ratelimit-${k}-reset`);
    }
    assert.equal(res.headers['x-llm-provider'], names.anth);
  }
});

// ---- errors ---------------------------------------------------------------------------------

test('401 for a wrong gateway key: AuthenticationError, Anthropic error shape', T, async () => {
  const err = await expectError(() => sdk('sk-not-a-gateway-key-000000000000').messages.create(msgBody()), Anthropic.AuthenticationError, 401, 'authentication_error');
  assert.equal(err.error?.type, 'error', JSON.stringify(err.error));
  const before = stack.mock.requests.length;
  assertAnthropicError(await rawMessages(msgBody(), { headers: { 'x-api-key': 'sk-wrong-wrong-wrong' } }), 401, 'authentication_error');
  assertAnthropicError(await rawMessages(msgBody(), { headers: { 'x-api-key': null } }), 401, 'authentication_error');
  assertAnthropicError(await rawMessages({ model: 'claude-gw', messages: [] }, { path: '/v1/messages/count_tokens', headers: { 'x-api-key': 'sk-wrong' } }), 401, 'authentication_error');
  assert.equal(stack.mock.requests.length, before, 'nothing reached the upstream');
});

test('404 for an unknown model: NotFoundError, not_found_error', T, async () => {
  await expectError(() => claude.messages.create(msgBody({ model: 'claude-no-such-model' })), Anthropic.NotFoundError, 404, 'not_found_error');
  const res = await rawMessages(msgBody({ model: 'claude-no-such-model' }));
  const e = assertAnthropicError(res, 404, 'not_found_error');
  assert.ok(e.message.includes('claude-no-such-model'), e.message);
  await expectError(() => claude.messages.countTokens({ model: 'claude-no-such-model', messages: [{ role: 'user', content: 'x' }] }), Anthropic.NotFoundError, 404, 'not_found_error');
});

test('a model no anthropic provider serves: 400 invalid_request_error with a clear message', T, async () => {
  const before = stack.mock.requests.length;
  const err = await expectError(() => claude.messages.create(msgBody({ model: 'gpt-only' })), Anthropic.BadRequestError, 400, 'invalid_request_error');
  assert.match(err.apiMessage ?? '', /gpt-only/, err.apiMessage);
  assert.match(err.apiMessage ?? '', /anthropic/i, err.apiMessage);
  assertAnthropicError(await rawMessages(msgBody({ model: 'gpt-only' })), 400, 'invalid_request_error');
  assert.equal(stack.mock.requests.length, before, 'nothing reached the upstream');
});

test('a key that may not use the model: 403 permission_error', T, async () => {
  const limited = await adminOk(stack, 'POST', '/admin/keys', { name: 'limited', allowed_models: ['gpt-only'] }, 201);
  await expectError(() => sdk(limited.key).messages.create(msgBody()), Anthropic.PermissionDeniedError, 403, 'permission_error');
});

test('upstream 429 passes through unchanged: RateLimitError, retry-after, body', T, async () => {
  const err = await expectError(() => claude.messages.create(msgBody({ model: 'claude-429' })), Anthropic.RateLimitError, 429, 'rate_limit_error');
  assert.equal(err.headers.get('retry-after'), '1');
  assert.match(err.requestID ?? '', /^req_011C/);
  const res = await rawMessages(msgBody({ model: 'claude-429' }));
  assert.equal(res.statusCode, 429, res.text);
  assert.equal(res.headers['retry-after'], '1');
  const rid = res.headers['request-id'];
  assert.match(rid ?? '', /^req_011C/);
  assert.equal(res.text, `{"type":"error","error":{"type":"rate_limit_error","message":"Mock error 429"},"request_id":"${rid}"}`);
  assert.equal(res.headers['anthropic-ratelimit-requests-remaining'], '0');
  assert.deepEqual(m429.requests.at(-1).auth, { scheme: 'x-api-key', value: BUSY_KEY });
});

test('upstream 529 passes through unchanged: OverloadedError (an InternalServerError), body', T, async () => {
  const err = await expectError(() => claude.messages.create(msgBody({ model: 'claude-529' })), Anthropic.InternalServerError, 529, 'overloaded_error');
  assert.equal(err.constructor.name, 'OverloadedError');
  const res = await rawMessages(msgBody({ model: 'claude-529' }));
  assert.equal(res.statusCode, 529, res.text);
  const rid = res.headers['request-id'];
  assert.equal(res.text, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"${rid}"}`);
});

test('a mid-stream `event: error` reaches the client: the SDK stream throws', T, async () => {
  const s = claude.messages.stream(msgBody({ mock: { chunks: 5, stream_error_after: 2 } }));
  const deltas = [];
  s.on('text', (t) => deltas.push(t));
  await assert.rejects(s.finalText(), (e) => e instanceof Anthropic.APIError && e.type === 'overloaded_error' && e.message.includes('Overloaded'));
  assert.deepEqual(deltas, ['word1', ' word2']);
  const raw = await rawMessages(msgBody({ stream: true, mock: { stream_error_after: 1 } }));
  assert.equal(raw.statusCode, 200);
  assert.ok(raw.text.endsWith('event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'), raw.text);
});

test('an anthropic provider through /v1/chat/completions sends Bearer, not x-api-key', T, async () => {
  const res = await v1(stack, 'POST', '/v1/chat/completions', { key, body: { model: 'claude-gw', messages: [{ role: 'user', content: 'hi' }] } });
  assert.equal(res.statusCode, 200, res.text);
  assert.equal(res.json.object, 'chat.completion');
  const up = await upstreamRequest(stack.mock, res.id);
  assert.equal(up.path, '/v1/chat/completions');
  assert.deepEqual(up.auth, { scheme: 'bearer', value: ANTH_KEY });
  assert.equal(up.headers['x-api-key'], undefined);
  assert.equal(up.json.model, UPSTREAM);
  assert.equal(res.headers['x-llm-provider'], names.anth);
});

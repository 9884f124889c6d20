// The OpenAI Responses API through the gateway with the real openai SDK: POST /v1/responses is
// routed by model (stream and not); the gateway remembers which provider created each response
// (and for which key), so GET/DELETE /v1/responses/{id}, POST .../cancel and GET .../input_items
// reach that provider, for that key only. Two providers on two mock instances prove the routing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import OpenAI from 'openai';
import { startStack, sleep } from './lib/harness.mjs';
import { startMockUpstream } from '../mock_upstream/server.mjs';
import { adminOk, assertError, createKey, newId, v1 } from './lib/proxy_helpers.mjs';

const T = { timeout: 15_000 };
const tag = crypto.randomBytes(3).toString('hex');
const KEY_A = `sk-prov-a-${crypto.randomBytes(8).toString('hex')}`;
const KEY_B = `sk-prov-b-${crypto.randomBytes(8).toString('hex')}`;

let stack, mock1, mock2, pA, pB, key, keyId, other, client, otherClient;

before(async () => {
  stack = await startStack();
  mock1 = stack.mock;
  mock2 = await startMockUpstream();
  pA = await adminOk(stack, 'POST', '/admin/providers', { name: `resp-a-${tag}`, kind: 'openai', api_key: KEY_A, base_url: mock1.url }, 201);
  pB = await adminOk(stack, 'POST', '/admin/providers', { name: `resp-b-${tag}`, kind: 'openai_compatible', api_key: KEY_B, base_url: `${mock2.origin}/b/v1` }, 201);
  await adminOk(stack, 'POST', '/admin/models', { name: 'model-a', provider_id: pA.id, provider_model_name: 'gpt-4o' }, 201);
  await adminOk(stack, 'POST', '/admin/models', { name: 'model-b', provider_id: pB.id, provider_model_name: 'gpt-4o-mini' }, 201);
  ({ key, id: keyId } = await createKey(stack, 'responses'));
  other = await createKey(stack, 'other');
  client = new OpenAI({ apiKey: key, baseURL: `${stack.gateway.url}/v1`, maxRetries: 0, timeout: 10_000 });
  otherClient = new OpenAI({ apiKey: other.key, baseURL: `${stack.gateway.url}/v1`, maxRetries: 0, timeout: 10_000 });
});
after(async () => {
  await mock2?.close();
  await stack?.stop();
});

// The id -> provider mapping is written asynchronously after the create: retry a 404 for < 1 s.
async function soon(fn) {
  const deadline = Date.now() + 900;
  for (;;) {
    try { return await fn(); } catch (e) {
      if (!(e instanceof OpenAI.NotFoundError) || Date.now() > deadline) throw e;
    }
    await sleep(50);
  }
}

// Requests a mock saw for a response id (any by-id endpoint).
const byId = (mock, id) => mock.requests.filter((r) => r.path.includes(`/responses/${id}`));

async function expectNotFound(fn, what) {
  let err;
  try { await fn(); } catch (e) { err = e; }
  assert.ok(err instanceof OpenAI.NotFoundError, `${what}: expected NotFoundError, got ${err ? `${err.constructor.name}: ${err.message}` : 'success'}`);
  assert.equal(err.status, 404);
  return err;
}

const EVENTS = [
  'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
  'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta', 'response.output_text.done',
  'response.content_part.done', 'response.output_item.done', 'response.completed',
];

test('responses.create non-stream: output_text, upstream model, provider A, X-LLM-* headers', T, async () => {
  const id = newId('rc');
  const { data: r, response } = await client.responses
    .create({ model: 'model-a', input: 'Tell me a story', instructions: 'Be brief', mock: { content: 'Once upon a time.' } }, { headers: { 'X-Request-Id': id } })
    .withResponse();
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'completed');
  assert.equal(r.output_text, 'Once upon a time.');
  assert.equal(r.model, 'gpt-4o');
  assert.match(r.id, /^resp_[0-9a-f]{48}$/);
  assert.equal(response.headers.get('x-llm-provider'), pA.name);
  assert.equal(response.headers.get('x-llm-model'), 'gpt-4o');
  assert.equal(response.headers.get('x-llm-key-id'), keyId);
  assert.equal(response.headers.get('x-llm-attempts'), '1');
  const up = mock1.requests.find((q) => q.headers['x-request-id'] === id);
  assert.ok(up, 'mock 1 saw the create');
  assert.equal(up.path, '/v1/responses');
  assert.equal(up.json.model, 'gpt-4o');
  assert.deepEqual(up.auth, { scheme: 'bearer', value: KEY_A });
  assert.ok(mock1.responses.has(r.id));
  assert.equal(mock2.requests.length, 0, 'mock 2 saw nothing');
});

test('responses.create stream: the documented event sequence', T, async () => {
  const stream = await client.responses.create({ model: 'model-a', input: 'hello', stream: true, mock: { chunks: 3 } });
  const events = [];
  for await (const e of stream) events.push(e);
  assert.deepEqual(events.map((e) => e.type), EVENTS);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  assert.equal(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), 'word1 word2 word3');
  const done = events.at(-1).response;
  assert.equal(done.status, 'completed');
  assert.equal(done.model, 'gpt-4o');
  assert.equal(done.id, events[0].response.id);
  // the id of a streamed response (from response.created) is remembered too
  const got = await soon(() => client.responses.retrieve(done.id));
  assert.equal(got.id, done.id);
  assert.equal(got.output_text, 'word1 word2 word3');
  // and the SDK's stream helper works through the gateway
  const final = await client.responses.stream({ model: 'model-a', input: 'hello' }).finalResponse();
  assert.equal(final.output_text, 'word1 word2 word3');
});

test('retrieve and inputItems.list reach provider A for the created id', T, async () => {
  const input = [{ role: 'user', content: 'first' }, { role: 'assistant', content: 'second' }, { role: 'user', content: 'third' }];
  const r = await client.responses.create({ model: 'model-a', input });
  const { data: got, response } = await soon(() => client.responses.retrieve(r.id).withResponse());
  assert.equal(got.id, r.id);
  assert.equal(got.output_text, 'word1 word2 word3');
  assert.equal(response.headers.get('x-llm-provider'), pA.name);
  assert.equal(response.headers.get('x-llm-key-id'), keyId);
  const items = [];
  for await (const it of client.responses.inputItems.list(r.id, { order: 'asc' })) items.push(it);
  assert.deepEqual(items.map((it) => [it.role, it.content[0].text]), [['user', 'first'], ['assistant', 'second'], ['user', 'third']]);
  const seen = byId(mock1, r.id);
  assert.deepEqual(seen.map((q) => `${q.method} ${q.path.split('?')[0]}`), [`GET /v1/responses/${r.id}`, `GET /v1/responses/${r.id}/input_items`]);
  assert.ok(seen.every((q) => q.auth.scheme === 'bearer' && q.auth.value === KEY_A));
  assert.match(seen[1].path, /[?&]order=asc\b/, 'the query string reaches the upstream');
  assert.equal(byId(mock2, r.id).length, 0);
});

test('delete reaches provider A; the response is gone afterwards', T, async () => {
  const r = await client.responses.create({ model: 'model-a', input: 'delete me' });
  await soon(() => client.responses.retrieve(r.id));
  await client.responses.delete(r.id);
  assert.equal(mock1.responses.has(r.id), false, 'mock 1 deleted it');
  const del = byId(mock1, r.id).find((q) => q.method === 'DELETE');
  assert.ok(del, 'mock 1 saw the DELETE');
  assert.equal(del.path, `/v1/responses/${r.id}`);
  await expectNotFound(() => client.responses.retrieve(r.id), 'retrieve after delete');
});

test('cancel of a background response reaches provider A', T, async () => {
  const bg = await client.responses.create({ model: 'model-a', input: 'long job', background: true, mock: { background_delay_ms: 10_000 } });
  assert.equal(bg.status, 'queued');
  const cancelled = await soon(() => client.responses.cancel(bg.id));
  assert.equal(cancelled.id, bg.id);
  assert.equal(cancelled.status, 'cancelled');
  assert.equal(mock1.responses.get(bg.id).status, 'cancelled');
  const c = byId(mock1, bg.id).find((q) => q.method === 'POST');
  assert.equal(c.path, `/v1/responses/${bg.id}/cancel`);
  assert.equal((await client.responses.retrieve(bg.id)).status, 'cancelled');
});

test('another key gets 404 for every by-id call, and nothing reaches the upstream', T, async () => {
  const r = await client.responses.create({ model: 'model-a', input: 'mine', background: true, mock: { background_delay_ms: 10_000 } });
  await soon(() => client.responses.retrieve(r.id)); // the mapping exists
  const seen = byId(mock1, r.id).length;
  await expectNotFound(() => otherClient.responses.retrieve(r.id), 'retrieve');
  await expectNotFound(() => otherClient.responses.inputItems.list(r.id), 'input_items');
  await expectNotFound(() => otherClient.responses.cancel(r.id), 'cancel');
  await expectNotFound(() => otherClient.responses.delete(r.id), 'delete');
  for (const [method, path] of [['GET', `/v1/responses/${r.id}`], ['DELETE', `/v1/responses/${r.id}`], ['POST', `/v1/responses/${r.id}/cancel`], ['GET', `/v1/responses/${r.id}/input_items`]]) {
    assertError(await v1(stack, method, path, { key: other.key }), 404);
  }
  assert.equal(byId(mock1, r.id).length, seen, 'no by-id request of the other key reached the upstream');
  // the owner still has it, untouched
  const mine = await client.responses.retrieve(r.id);
  assert.equal(mine.status, 'queued');
});

test('an unknown id -> 404 in the OpenAI error shape, for every by-id call', T, async () => {
  const before1 = mock1.requests.length;
  const before2 = mock2.requests.length;
  const unknown = `resp_${crypto.randomBytes(24).toString('hex')}`;
  await expectNotFound(() => client.responses.retrieve(unknown), 'retrieve');
  await expectNotFound(() => client.responses.delete(unknown), 'delete');
  await expectNotFound(() => client.responses.cancel(unknown), 'cancel');
  await expectNotFound(() => client.responses.inputItems.list(unknown), 'input_items');
  for (const [method, path] of [['GET', `/v1/responses/${unknown}`], ['DELETE', `/v1/responses/${unknown}`], ['POST', `/v1/responses/${unknown}/cancel`], ['GET', `/v1/responses/${unknown}/input_items`], ['GET', '/v1/responses/resp_bad%21id']]) {
    const res = await v1(stack, method, path, { key });
    assertError(res, 404);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
  }
  assert.equal(mock1.requests.length, before1);
  assert.equal(mock2.requests.length, before2);
});

test('two providers: each id goes back to the provider that created it', T, async () => {
  const a = await client.responses.create({ model: 'model-a', input: 'to A' });
  const b = await client.responses.create({ model: 'model-b', input: 'to B' });
  assert.equal(b.model, 'gpt-4o-mini');
  assert.ok(mock1.responses.has(a.id) && !mock2.responses.has(a.id));
  assert.ok(mock2.responses.has(b.id) && !mock1.responses.has(b.id));
  const createB = mock2.requests.find((q) => q.method === 'POST' && q.json?.input === 'to B');
  assert.equal(createB.path, '/b/v1/responses');
  assert.deepEqual(createB.auth, { scheme: 'bearer', value: KEY_B });

  const gotA = await soon(() => client.responses.retrieve(a.id));
  const gotB = await soon(() => client.responses.retrieve(b.id));
  assert.equal(gotA.id, a.id);
  assert.equal(gotA.model, 'gpt-4o');
  assert.equal(gotB.id, b.id);
  assert.equal(gotB.model, 'gpt-4o-mini');
  assert.equal(byId(mock1, a.id).length, 1, 'A\'s retrieve reached mock 1');
  assert.equal(byId(mock2, a.id).length, 0, 'A\'s retrieve did not reach mock 2');
  const upB = byId(mock2, b.id);
  assert.equal(upB.length, 1, 'B\'s retrieve reached mock 2');
  assert.equal(upB[0].path, `/b/v1/responses/${b.id}`);
  assert.deepEqual(upB[0].auth, { scheme: 'bearer', value: KEY_B });
  assert.equal(byId(mock1, b.id).length, 0);

  const items = [];
  for await (const it of client.responses.inputItems.list(b.id)) items.push(it);
  assert.equal(items[0].content[0].text, 'to B');
  await client.responses.delete(b.id);
  assert.equal(mock2.responses.has(b.id), false);
});

// The official `openai` npm SDK (v6) against the gateway, unchanged: the gateway must look like
// the OpenAI API to it (models, chat, streaming, completions, embeddings, typed errors).
// Extra body fields are sent as-is by the SDK, so `mock: {...}` steers the mock upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack } from './lib/harness.mjs';
import { adminOk, provision } from './lib/proxy_helpers.mjs';

let stack, client, key;
before(async () => {
  stack = await startStack();
  let provider;
  ({ key, provider } = await provision(stack));
  await adminOk(stack, 'POST', '/admin/models', { name: 'acme/gpt-slash', provider_id: provider.id, provider_model_name: 'mock-model-v1' }, 201);
  client = new OpenAI({ apiKey: key, baseURL: `${stack.gateway.url}/v1`, maxRetries: 0, timeout: 20_000 });
});
after(async () => { await stack?.stop(); });

const messages = [{ role: 'user', content: 'Say hello' }];
const TEXT = 'Hello there, wörld 🌍 — “quoted” \\ done.';

// Runs fn, which must reject with an instance of errorClass; returns the error.
async function expectError(fn, errorClass, status) {
  let err;
  try { await fn(); } catch (e) { err = e; }
  assert.ok(err, `expected ${errorClass.name}, but the call succeeded`);
  assert.ok(err instanceof errorClass, `expected ${errorClass.name}, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, status);
  return err;
}

test('models.list() returns the configured models', async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    assert.equal(typeof m.created, 'number');
    assert.equal(typeof m.owned_by, 'string');
    ids.push(m.id);
  }
  assert.ok(ids.includes('gpt-test') && ids.includes('acme/gpt-slash'), `ids: ${ids}`);
});

test('models.retrieve() for a plain name and a name containing "/" (sent as %2F)', async () => {
  const m = await client.models.retrieve('gpt-test');
  assert.equal(m.id, 'gpt-test');
  assert.equal(m.object, 'model');
  const s = await client.models.retrieve('acme/gpt-slash');
  assert.equal(s.id, 'acme/gpt-slash');
});

test('chat.completions.create() non-stream', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'gpt-test', messages, mock: { content: TEXT, chunks: 4 } })
    .withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, TEXT);
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.equal(typeof data.usage.total_tokens, 'number');
  assert.equal(response.headers.get('x-ratelimit-limit-requests'), '10000');
  assert.ok(response.headers.get('x-request-id'), 'x-request-id header');
});

test('chat.completions.create({stream: true}) yields the deltas of the text', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-test', messages, stream: true, stream_options: { include_usage: true },
    mock: { content: TEXT, chunks: 6, chunk_interval_ms: 20 },
  });
  let text = '';
  let chunks = 0;
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, TEXT);
  assert.ok(chunks >= 7, `only ${chunks} chunks`);
  assert.equal(finish, 'stop');
  assert.ok(usage && usage.total_tokens > 0, 'usage chunk missing');
});

test('breaking out of a stream (abort) cancels the upstream request within 1 s', async () => {
  const mark = stack.mock.events.length;
  const stream = await client.chat.completions.create({
    model: 'gpt-test', messages, stream: true, mock: { chunks: 30, chunk_interval_ms: 200 },
  });
  let n = 0;
  for await (const chunk of stream) { if (++n === 2) break; } // break aborts the SDK's request
  assert.ok(n === 2);
  await stack.mock.waitFor(() => stack.mock.events.slice(mark).find((e) => e.type === 'client_closed'), 1000)
    .catch(() => assert.fail('the upstream request was not cancelled within 1 s of the SDK aborting'));
});

test('chat stream helper: finalChatCompletion()', async () => {
  const runner = client.chat.completions.stream({ model: 'gpt-test', messages, mock: { content: TEXT, chunks: 3 } });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, TEXT);
});

test('completions.create() non-stream and stream', async () => {
  const c = await client.completions.create({ model: 'gpt-test', prompt: 'Say this is a test', mock: { content: 'This is a test.' } });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.choices[0].text, 'This is a test.');
  const s = await client.completions.create({ model: 'gpt-test', prompt: 'x', stream: true, mock: { content: 'streamed text', chunks: 3 } });
  let text = '';
  for await (const chunk of s) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, 'streamed text');
});

test('embeddings.create(): float, base64, and the SDK default (base64 decoded)', async () => {
  const input = ['first input', 'second input'];
  const float = await client.embeddings.create({ model: 'gpt-test', input, encoding_format: 'float' });
  assert.equal(float.object, 'list');
  assert.equal(float.data.length, 2);
  for (const d of float.data) {
    assert.ok(Array.isArray(d.embedding) && d.embedding.length === 8, JSON.stringify(d));
    assert.ok(d.embedding.every((x) => typeof x === 'number'));
  }
  const b64 = await client.embeddings.create({ model: 'gpt-test', input, encoding_format: 'base64' });
  assert.equal(typeof b64.data[0].embedding, 'string');
  const buf = Buffer.from(b64.data[0].embedding, 'base64');
  const decoded = Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
  assert.deepEqual(decoded, float.data[0].embedding);
  const dflt = await client.embeddings.create({ model: 'gpt-test', input });
  assert.deepEqual(Array.from(dflt.data[1].embedding), float.data[1].embedding);
});

test('401 -> AuthenticationError with code invalid_api_key', async () => {
  const bad = new OpenAI({ apiKey: 'sk-definitely-not-valid-0000000000', baseURL: `${stack.gateway.url}/v1`, maxRetries: 0 });
  const err = await expectError(() => bad.chat.completions.create({ model: 'gpt-test', messages }), OpenAI.AuthenticationError, 401);
  assert.equal(err.code, 'invalid_api_key');
  assert.equal(err.type, 'invalid_request_error');
  await expectError(() => bad.models.list(), OpenAI.AuthenticationError, 401);
});

test('404 -> NotFoundError with code model_not_found', async () => {
  const err = await expectError(() => client.chat.completions.create({ model: 'no-such-model', messages }), OpenAI.NotFoundError, 404);
  assert.equal(err.code, 'model_not_found');
  const err2 = await expectError(() => client.models.retrieve('no-such-model'), OpenAI.NotFoundError, 404);
  assert.equal(err2.code, 'model_not_found');
});

test('upstream 429 -> RateLimitError with retry-after', async () => {
  const err = await expectError(
    () => client.chat.completions.create({ model: 'gpt-test', messages, mock: { status: 429 } }), OpenAI.RateLimitError, 429);
  assert.equal(err.code, 'rate_limit_exceeded');
  assert.equal(err.headers.get('retry-after'), '1');
  // Also when the request asked for a stream.
  await expectError(
    () => client.chat.completions.create({ model: 'gpt-test', messages, stream: true, mock: { status: 429 } }), OpenAI.RateLimitError, 429);
});

test('upstream 500 -> InternalServerError', async () => {
  const err = await expectError(
    () => client.chat.completions.create({ model: 'gpt-test', messages, mock: { status: 500, error_message: 'boom' } }), OpenAI.InternalServerError, 500);
  assert.match(err.message, /boom/);
});

test('400 from the upstream -> BadRequestError; a bad body from the client -> BadRequestError too', async () => {
  const err = await expectError(
    () => client.chat.completions.create({ model: 'gpt-test', messages, mock: { status: 400, error_code: 'context_length_exceeded' } }), OpenAI.BadRequestError, 400);
  assert.equal(err.code, 'context_length_exceeded');
  await expectError(() => client.chat.completions.create({ messages }), OpenAI.BadRequestError, 400);
});

test('SDK retries pass through the gateway: a persistent 503 with retry-after-ms reaches the upstream twice', async () => {
  const retrying = new OpenAI({ apiKey: key, baseURL: `${stack.gateway.url}/v1`, maxRetries: 1 });
  const before = stack.mock.requests.length;
  await expectError(
    () => retrying.chat.completions.create({ model: 'gpt-test', messages, mock: { status: 503, headers: { 'retry-after-ms': '10' } } }),
    OpenAI.InternalServerError, 503);
  assert.equal(stack.mock.requests.length - before, 2, 'one retry reached the upstream');
});

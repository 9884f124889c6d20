// Proves the test harness itself (no gateway needed): services, mock upstream, raw client, cleanup.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { startStack, isAlive, REPO } from './lib/harness.mjs';
import { connect, buildRequest, rawRequest, parseSSE, parseResponse } from './lib/http.mjs';

let stack;
let pidsBefore;
before(async () => { stack = await startStack({ gateway: false }); });
after(async () => { await stack?.stop(); });

const AUTH = { authorization: 'Bearer sk-test' };
const post = (p, body, headers = AUTH) => fetch(stack.mock.url + p, {
  method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
});
const chatBody = (extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }], ...extra });
const rawPost = (p, body) => buildRequest('POST', `/v1${p}`, { headers: AUTH, body });

function assertUsage(u, chat) {
  assert.equal(typeof u.prompt_tokens, 'number');
  assert.equal(typeof u.completion_tokens, 'number');
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  if (chat) assert.deepEqual(Object.keys(u), ['prompt_tokens', 'completion_tokens', 'total_tokens', 'prompt_tokens_details', 'completion_tokens_details']);
}

test('PostgreSQL answers on its url', () => {
  const r = spawnSync('psql', [stack.pg.url, '-XtAc', 'SELECT 1'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '1');
});

test('Redis answers PING', () => {
  const r = spawnSync('redis-cli', ['-p', String(stack.redis.port), 'ping'], { encoding: 'utf8' });
  assert.equal(r.stdout.trim(), 'PONG');
});

test('redis stop/start are idempotent and keep the port', async () => {
  await stack.redis.stop();
  await stack.redis.stop();
  assert.notEqual(spawnSync('redis-cli', ['-p', String(stack.redis.port), 'ping'], { encoding: 'utf8' }).stdout.trim(), 'PONG');
  await stack.redis.start();
  await stack.redis.start();
  assert.equal(spawnSync('redis-cli', ['-p', String(stack.redis.port), 'ping'], { encoding: 'utf8' }).stdout.trim(), 'PONG');
});

test('mock: non-stream chat completion has the exact OpenAI shape', async () => {
  stack.mock.reset();
  const body = chatBody();
  const res = await post('/chat/completions', body);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.match(res.headers.get('x-request-id'), /^req_[0-9a-f]{32}$/);
  assert.match(res.headers.get('openai-processing-ms'), /^\d+$/);
  assert.equal(res.headers.get('x-ratelimit-limit-requests'), '10000');
  const j = await res.json();
  assert.deepEqual(Object.keys(j), ['id', 'object', 'created', 'model', 'choices', 'usage', 'service_tier', 'system_fingerprint']);
  assert.match(j.id, /^chatcmpl-/);
  assert.equal(j.object, 'chat.completion');
  assert.equal(j.model, 'gpt-4o-mini');
  assert.deepEqual(j.choices, [{ index: 0, message: { role: 'assistant', content: 'word1 word2 word3', refusal: null }, logprobs: null, finish_reason: 'stop' }]);
  assertUsage(j.usage, true);
  assert.equal(j.usage.completion_tokens, 3);
  // recorded before answering, raw body byte-identical
  assert.equal(stack.mock.requests.length, 1);
  const r = stack.mock.requests[0];
  assert.equal(r.method, 'POST');
  assert.equal(r.path, '/v1/chat/completions');
  assert.equal(r.headers.authorization, 'Bearer sk-test');
  assert.equal(r.body, JSON.stringify(body));
});

test('mock: 401 without a bearer token, OpenAI error shape', async () => {
  const res = await post('/chat/completions', chatBody(), {});
  assert.equal(res.status, 401);
  const j = await res.json();
  assert.deepEqual(Object.keys(j.error), ['message', 'type', 'param', 'code']);
  assert.equal(j.error.type, 'invalid_request_error');
});

test('mock: streamed chat completion with usage chunk and [DONE]', async () => {
  const res = await post('/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true }, mock: { chunks: 4 } }));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const text = await res.text();
  assert.ok(text.endsWith('data: [DONE]\n\n'));
  const events = parseSSE(text);
  assert.equal(events.at(-1).data, '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.equal(chunks.length, 1 + 4 + 1 + 1); // role, 4 deltas, finish, usage
  const id = chunks[0].id;
  for (const c of chunks) {
    assert.deepEqual(Object.keys(c), ['id', 'object', 'created', 'model', 'system_fingerprint', 'choices', 'usage']);
    assert.equal(c.id, id);
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.model, 'gpt-4o-mini');
  }
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '', refusal: null });
  assert.equal(chunks.slice(1, 5).map((c) => c.choices[0].delta.content).join(''), 'word1 word2 word3 word4');
  assert.deepEqual(chunks[5].choices, [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
  assert.ok(chunks.slice(0, 6).every((c) => c.usage === null));
  assert.deepEqual(chunks[6].choices, []);
  assertUsage(chunks[6].usage, true);
  assert.equal(chunks[6].usage.completion_tokens, 4);
});

test('mock: stream without include_usage has no usage field', async () => {
  const text = await (await post('/chat/completions', chatBody({ stream: true }))).text();
  const chunks = parseSSE(text).slice(0, -1).map((e) => JSON.parse(e.data));
  assert.equal(chunks.length, 5);
  assert.ok(chunks.every((c) => !('usage' in c)));
});

test('mock: custom content is split on code points, never inside a character', async () => {
  const content = 'héllo wörld 👋🏽 ok';
  const j = await (await post('/chat/completions', chatBody({ mock: { content } }))).json();
  assert.equal(j.choices[0].message.content, content);
  const text = await (await post('/chat/completions', chatBody({ stream: true, mock: { content, chunks: 7 } }))).text();
  const deltas = parseSSE(text).slice(1, -2).map((e) => JSON.parse(e.data).choices[0].delta.content);
  assert.equal(deltas.join(''), content);
});

test('mock: legacy completions, stream and non-stream', async () => {
  const j = await (await post('/completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'Once' })).json();
  assert.deepEqual(Object.keys(j), ['id', 'object', 'created', 'model', 'choices', 'usage']);
  assert.equal(j.object, 'text_completion');
  assert.deepEqual(j.choices, [{ text: 'word1 word2 word3', index: 0, logprobs: null, finish_reason: 'stop' }]);
  assertUsage(j.usage, false);
  const text = await (await post('/completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'Once', stream: true })).text();
  const ev = parseSSE(text);
  assert.equal(ev.at(-1).data, '[DONE]');
  const chunks = ev.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.ok(chunks.every((c) => c.object === 'text_completion'));
  assert.equal(chunks.map((c) => c.choices[0].text).join(''), 'word1 word2 word3');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
});

test('mock: embeddings honour input string/array and encoding_format', async () => {
  const one = await (await post('/embeddings', { model: 'text-embedding-3-small', input: 'hello' })).json();
  assert.equal(one.object, 'list');
  assert.equal(one.model, 'text-embedding-3-small');
  assert.equal(one.data.length, 1);
  assert.deepEqual(Object.keys(one.data[0]), ['object', 'index', 'embedding']);
  assert.equal(one.data[0].object, 'embedding');
  assert.equal(one.data[0].embedding.length, 8);
  assert.deepEqual(Object.keys(one.usage), ['prompt_tokens', 'total_tokens']);
  const many = await (await post('/embeddings', { model: 'm', input: ['a', 'b', 'c'], dimensions: 4 })).json();
  assert.deepEqual(many.data.map((d) => d.index), [0, 1, 2]);
  assert.ok(many.data.every((d) => d.embedding.length === 4));
  const b64 = await (await post('/embeddings', { model: 'm', input: ['a'], dimensions: 4, encoding_format: 'base64' })).json();
  const buf = Buffer.from(b64.data[0].embedding, 'base64');
  assert.equal(buf.length, 16);
  assert.deepEqual(Array.from(new Float32Array(buf.buffer, buf.byteOffset, 4)), many.data[0].embedding);
});

test('mock: models list and model by id', async () => {
  const list = await (await fetch(stack.mock.url + '/models', { headers: AUTH })).json();
  assert.equal(list.object, 'list');
  assert.ok(list.data.some((m) => m.id === 'gpt-4o-mini' && m.object === 'model'));
  const one = await (await fetch(stack.mock.url + '/models/gpt-4o', { headers: AUTH })).json();
  assert.deepEqual(Object.keys(one), ['id', 'object', 'created', 'owned_by']);
  assert.equal(one.id, 'gpt-4o');
});

test('mock: status errors, 429 carries retry-after', async () => {
  const res = await post('/chat/completions', chatBody({ mock: { status: 429 } }));
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '1');
  assert.deepEqual(await res.json(), { error: { message: 'Mock error 429', type: 'requests', param: null, code: 'rate_limit_exceeded' } });
  const r2 = await post('/chat/completions', chatBody({ mock: { status: 503, error_type: 'overloaded', error_code: 'busy' } }));
  assert.equal(r2.status, 503);
  assert.deepEqual((await r2.json()).error, { message: 'Mock error 503', type: 'overloaded', param: null, code: 'busy' });
  // x-mock header for bodiless requests
  const r3 = await fetch(stack.mock.url + '/models', { headers: { ...AUTH, 'x-mock': '{"status":500}' } });
  assert.equal(r3.status, 500);
});

test('mock: raw_chunks reach a raw client byte-identical, one HTTP chunk per write', async () => {
  const pieces = ['data: {"a":', '1}\n', '\ndata: {"b":"é', '"}\n\n', 'data: [DONE]\n\n'];
  const res = await rawRequest(stack.mock.port, rawPost('/chat/completions', chatBody({ stream: true, mock: { raw_chunks: pieces, chunk_interval_ms: 10 } })));
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.ok(res.chunked && res.complete);
  assert.deepEqual(res.chunks.map((c) => c.toString('utf8')), pieces);
  assert.equal(res.text, pieces.join(''));
});

test('mock: raw_chunks_b64 can split inside a multi-byte character', async () => {
  const bytes = Buffer.from('data: {"t":"€"}\n\n'); // € = e2 82 ac
  const cut = bytes.indexOf(0xe2) + 1;
  const parts = [bytes.subarray(0, cut), bytes.subarray(cut, cut + 1), bytes.subarray(cut + 1)];
  const res = await rawRequest(stack.mock.port, rawPost('/chat/completions', chatBody({ stream: true, mock: { raw_chunks_b64: parts.map((p) => p.toString('base64')) } })));
  assert.deepEqual(res.chunks, parts);
  assert.ok(res.body.equals(bytes));
});

test('mock: reset_after_chunks resets the connection after N events', async () => {
  const res = await rawRequest(stack.mock.port, rawPost('/chat/completions', chatBody({ stream: true, mock: { reset_after_chunks: 2, chunks: 5 } })));
  assert.equal(res.statusCode, 200);
  assert.equal(res.complete, false);
  assert.equal(res.error?.code, 'ECONNRESET');
  assert.equal(parseSSE(res.text).length, 2);
  // 'fin' variant: clean close mid-body, no RST
  const fin = await rawRequest(stack.mock.port, rawPost('/chat/completions', chatBody({ stream: true, mock: { reset_after_chunks: 1, reset_with: 'fin' } })));
  assert.equal(fin.complete, false);
  assert.equal(fin.error, null);
  assert.equal(parseSSE(fin.text).length, 1);
  // the mock closed it itself: not a client_closed event
  assert.ok(!stack.mock.events.some((e) => e.type === 'client_closed' && e.afterChunks <= 2));
});

test('mock: client_closed is recorded when the client aborts mid-stream', async () => {
  stack.mock.reset();
  const conn = await connect(stack.mock.port);
  await conn.write(rawPost('/chat/completions', chatBody({ stream: true, mock: { chunks: 20, chunk_interval_ms: 30 } })));
  await conn.waitFor((b) => (b.toString().match(/data: /g) ?? []).length >= 3);
  conn.destroy();
  const ev = await stack.mock.waitFor(() => stack.mock.events.find((e) => e.type === 'client_closed'));
  assert.equal(ev.path, '/v1/chat/completions');
  assert.ok(ev.afterChunks >= 3 && ev.afterChunks < 23, `afterChunks=${ev.afterChunks}`);
});

test('mock: first_byte_delay_ms, large_bytes, no_content_length', async () => {
  const slow = await rawRequest(stack.mock.port, rawPost('/chat/completions', chatBody({ mock: { first_byte_delay_ms: 300 } })));
  assert.ok(slow.timeToFirstByte >= 280, `ttfb=${slow.timeToFirstByte}`);
  const big = await rawRequest(stack.mock.port, rawPost('/chat/completions', chatBody({ mock: { large_bytes: 1 << 20 } })));
  assert.equal(big.chunked, false);
  assert.equal(Number(big.headers['content-length']), big.body.length);
  assert.ok(Math.abs(big.body.length - (1 << 20)) < 64, `len=${big.body.length}`);
  assert.equal(JSON.parse(big.text).object, 'chat.completion');
  const chunked = await rawRequest(stack.mock.port, rawPost('/chat/completions', chatBody({ mock: { no_content_length: true } })));
  assert.equal(chunked.headers['content-length'], undefined);
  assert.equal(chunked.headers['transfer-encoding'], 'chunked');
  assert.equal(JSON.parse(chunked.text).choices[0].message.content, 'word1 word2 word3');
});

test('http.mjs: parseResponse handles interim 100 and incomplete bodies', () => {
  const r = parseResponse(Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhel'));
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['x-a'], '1, 2');
  assert.equal(r.complete, false);
  assert.equal(parseResponse(Buffer.from('HTTP/1.1 200 OK\r\n')), null);
});

test('mock CLI prints {"listening":PORT} and serves', async () => {
  const p = spawn(process.execPath, [path.join(REPO, 'test/mock_upstream/server.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise((resolve) => readline.createInterface({ input: p.stdout }).once('line', resolve));
    const { listening } = JSON.parse(line);
    assert.ok(listening > 0);
    const res = await fetch(`http://127.0.0.1:${listening}/v1/models`, { headers: AUTH });
    assert.equal(res.status, 200);
  } finally {
    p.kill('SIGTERM');
  }
  const code = await new Promise((r) => p.on('close', r));
  assert.equal(code, 0);
});

test('stop() leaves no process behind and removes the temp dir', async () => {
  pidsBefore = stack.pids();
  assert.ok(isAlive(pidsBefore.pg), 'pg running before stop');
  assert.ok(isAlive(pidsBefore.redis), 'redis running before stop');
  const { dir, mock } = stack;
  await stack.stop();
  await stack.stop(); // idempotent
  // Daemons were stopped by pg_ctl/redis_stop, which wait for exit.
  assert.ok(!isAlive(pidsBefore.pg), 'postgres gone');
  assert.ok(!isAlive(pidsBefore.redis), 'redis gone');
  assert.ok(!fs.existsSync(dir), 'temp dir removed');
  const leftovers = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d) && isAlive(Number(d))).filter((d) => {
    try { return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(dir); } catch { return false; }
  });
  assert.deepEqual(leftovers, [], 'no process still refers to the temp dir');
  await assert.rejects(fetch(mock.url + '/models', { headers: AUTH }));
  stack = null;
});

test('gateway lifecycle (with the stand-in binary): start, helpers, restart, stop', async () => {
  const s = await startStack({ bin: path.join(REPO, 'test/e2e/fixtures/fake_gateway.mjs') });
  try {
    assert.match(s.gateway.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(s.gateway.adminKey, /^[0-9a-f]{32}$/);
    assert.match(s.gateway.encryptionKey, /^[0-9a-f]{64}$/);
    const r = await s.request('GET', '/health/live', { headers: { 'x-request-id': 'h-1' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ok' });
    assert.equal((await s.admin('GET', '/health')).json.redis, 'ok');
    await s.gateway.waitForLog((o) => o.request_id === 'h-1');
    const { gateway: pid1 } = s.pids();
    await s.gateway.restart();
    assert.ok(!isAlive(pid1));
    assert.notEqual(s.pids().gateway, pid1);
    assert.equal((await s.request('GET', '/health/live')).status, 200);
    const once = await s.runGatewayOnce({ ADMIN_KEY: null });
    assert.equal(once.code, 2);
    assert.match(once.stderr, /ADMIN_KEY/);
    assert.deepEqual(await s.gateway.stop(), { code: 0, signal: null });
    await s.gateway.start({ LOG_LEVEL: 'debug' });
    const { gateway: pid3 } = s.pids();
    await s.stop();
    assert.ok(!isAlive(pid3));
  } finally {
    await s.stop();
  }
});

test('a gateway that never becomes ready fails startStack with a clear error', async () => {
  await assert.rejects(startStack({ bin: '/bin/false' }), /exited early \(code 1/);
  await assert.rejects(startStack({ bin: '/nonexistent/gw' }), /not found at \/nonexistent\/gw/);
});

test('the official openai SDK parses the mock (chat, stream, embeddings, models, errors)', async () => {
  const s = await startStack({ gateway: false });
  try {
    const { default: OpenAI } = await import('openai');
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: s.mock.url, maxRetries: 0 });
    const chat = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(chat.choices[0].message.content, 'word1 word2 word3');
    let text = '';
    let usage;
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    for await (const c of stream) { text += c.choices[0]?.delta?.content ?? ''; usage ??= c.usage ?? undefined; }
    assert.equal(text, 'word1 word2 word3');
    assert.equal(usage.completion_tokens, 3);
    const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] }); // SDK asks for base64
    assert.equal(emb.data.length, 2);
    assert.equal(emb.data[0].embedding.length, 8);
    assert.ok(s.mock.requests.at(-1).json.encoding_format === 'base64');
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    assert.ok(models.includes('gpt-4o'));
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o', messages: [], mock: { status: 429 } }),
      (e) => e.status === 429 && e.code === 'rate_limit_exceeded',
    );
  } finally {
    await s.stop();
  }
});

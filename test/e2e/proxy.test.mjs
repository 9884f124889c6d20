// The /v1 hot path over raw HTTP: auth, routing, byte-exact model rewrite, header policy,
// streaming (bytes and timing), large bodies, upstream errors and failures, client disconnects,
// keep-alive, and Redis outages. Needs the gateway binary (LLMGW_BIN or build/gateway/llm-gateway).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sleep } from './lib/harness.mjs';
import { connect, buildRequest, parseResponse, decodeChunked } from './lib/http.mjs';
import { openaiError } from '../mock_upstream/server.mjs';
import {
  UPSTREAM_SECRET, sha256, newId, adminOk, provision, createKey, closedPort, v1, upstreamRequest, sawRequest,
  assertError, keepAliveConnection, countUpstreamConnections, redisCli, eventually, sseFrame, startRawUpstream,
} from './lib/proxy_helpers.mjs';

let stack, key, keyId, provider;
before(async () => {
  stack = await startStack();
  ({ key, keyId, provider } = await provision(stack));
});
after(async () => { await stack?.stop(); });

const chat = (extra = {}) => ({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], ...extra });
const post = (path, body, opts = {}) => v1(stack, 'POST', path, { key, body, ...opts });

// The de-chunked body ended without the terminating zero-length chunk and the connection closed.
function assertTruncated(res, what) {
  assert.equal(res.statusCode, 200, what);
  assert.equal(res.chunked, true, `${what}: expected a chunked response`);
  assert.equal(res.complete, false, `${what}: the stream ended cleanly (terminating chunk seen) although the upstream failed; body: ${res.text}`);
  assert.equal(res.closed, true, `${what}: connection left open`);
}

// ---- endpoints, auth, routing ----------------------------------------------------------------

describe('auth', () => {
  test('missing Authorization -> 401 missing_api_key, upstream not called', async () => {
    const r = await v1(stack, 'POST', '/v1/chat/completions', { body: chat() });
    const err = assertError(r, 401, 'missing_api_key');
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(sawRequest(stack.mock, r.id), false);
    assertError(await v1(stack, 'GET', '/v1/models'), 401, 'missing_api_key');
  });

  test('unknown key -> 401 invalid_api_key', async () => {
    const r = await post('/v1/chat/completions', chat(), { key: 'sk-not-a-real-key-000000000000000000' });
    const err = assertError(r, 401, 'invalid_api_key');
    assert.equal(err.type, 'invalid_request_error');
    assertError(await v1(stack, 'GET', '/v1/models', { key: 'sk-nope' }), 401, 'invalid_api_key');
    assertError(await v1(stack, 'GET', '/v1/models/gpt-test', { key: 'sk-nope' }), 401, 'invalid_api_key');
  });

  test('the admin key is not a /v1 key', async () => {
    assertError(await post('/v1/chat/completions', chat(), { key: stack.gateway.adminKey }), 401, 'invalid_api_key');
  });

  test('revoked key -> 401 on the very next request', async () => {
    const k = await createKey(stack, 'to-revoke');
    assert.equal((await post('/v1/chat/completions', chat(), { key: k.key })).statusCode, 200);
    const del = await stack.admin('DELETE', `/admin/keys/${k.id}`);
    assert.ok(del.status === 204 || del.status === 200, `DELETE key -> ${del.status} ${del.text}`);
    assertError(await post('/v1/chat/completions', chat(), { key: k.key }), 401, 'invalid_api_key');
    assertError(await v1(stack, 'GET', '/v1/models', { key: k.key }), 401, 'invalid_api_key');
  });

  test('deactivated key -> 401 at once; reactivated -> accepted at once', async () => {
    const k = await createKey(stack, 'toggle');
    await adminOk(stack, 'PUT', `/admin/keys/${k.id}`, { is_active: false }, 200);
    assertError(await post('/v1/chat/completions', chat(), { key: k.key }), 401, 'invalid_api_key');
    await adminOk(stack, 'PUT', `/admin/keys/${k.id}`, { is_active: true }, 200);
    const r = await post('/v1/chat/completions', chat(), { key: k.key });
    assert.equal(r.statusCode, 200, `reactivated key refused: ${r.text}`);
  });
});

describe('routing and request validation', () => {
  test('unknown model -> 404 model_not_found', async () => {
    const r = await post('/v1/chat/completions', chat({ model: 'no-such-model' }));
    assertError(r, 404, 'model_not_found');
    assert.equal(sawRequest(stack.mock, r.id), false);
  });

  test('a model deactivated after use -> 404 model_not_found at once, and gone from /v1/models', async () => {
    const m = await adminOk(stack, 'POST', '/admin/models', { name: 'gpt-soon-inactive', provider_id: provider.id, provider_model_name: 'mock-model-v1' }, 201);
    assert.equal((await post('/v1/chat/completions', chat({ model: 'gpt-soon-inactive' }))).statusCode, 200);
    await adminOk(stack, 'PUT', `/admin/models/${m.id}`, { is_active: false }, 200);
    assertError(await post('/v1/chat/completions', chat({ model: 'gpt-soon-inactive' })), 404, 'model_not_found');
    assertError(await v1(stack, 'GET', '/v1/models/gpt-soon-inactive', { key }), 404, 'model_not_found');
    const list = await v1(stack, 'GET', '/v1/models', { key });
    assert.ok(!list.json.data.some((x) => x.id === 'gpt-soon-inactive'), list.text);
  });

  test('a model created right after a 404 for its name is routable at once', async () => {
    assertError(await post('/v1/chat/completions', chat({ model: 'gpt-later' })), 404, 'model_not_found');
    await adminOk(stack, 'POST', '/admin/models', { name: 'gpt-later', provider_id: provider.id, provider_model_name: 'mock-model-v1' }, 201);
    const r = await post('/v1/chat/completions', chat({ model: 'gpt-later' }));
    assert.equal(r.statusCode, 200, r.text);
  });

  test('models of a deactivated provider -> 404; provider key changes apply to the next request', async () => {
    const p = await adminOk(stack, 'POST', '/admin/providers', { name: 'toggle-prov', kind: 'openai', api_key: 'sk-first-upstream-key-1', base_url: stack.mock.url }, 201);
    await adminOk(stack, 'POST', '/admin/models', { name: 'gpt-toggle', provider_id: p.id, provider_model_name: 'mock-model-v1' }, 201);
    const a = await post('/v1/chat/completions', chat({ model: 'gpt-toggle' }));
    assert.equal(a.statusCode, 200, a.text);
    assert.equal((await upstreamRequest(stack.mock, a.id)).headers.authorization, 'Bearer sk-first-upstream-key-1');
    await adminOk(stack, 'PUT', `/admin/providers/${p.id}`, { api_key: 'sk-second-upstream-key-2' }, 200);
    const b = await post('/v1/chat/completions', chat({ model: 'gpt-toggle' }));
    assert.equal((await upstreamRequest(stack.mock, b.id)).headers.authorization, 'Bearer sk-second-upstream-key-2', 'old provider key still used');
    await adminOk(stack, 'PUT', `/admin/providers/${p.id}`, { is_active: false }, 200);
    assertError(await post('/v1/chat/completions', chat({ model: 'gpt-toggle' })), 404, 'model_not_found');
    await adminOk(stack, 'PUT', `/admin/providers/${p.id}`, { is_active: true }, 200);
    assert.equal((await post('/v1/chat/completions', chat({ model: 'gpt-toggle' }))).statusCode, 200);
  });

  for (const [what, body] of [
    ['missing model', { messages: [] }],
    ['model not a string', { model: 42, messages: [] }],
    ['body is a JSON array', '[{"model":"gpt-test"}]'],
    ['body is a JSON string', '"gpt-test"'],
    ['malformed JSON', '{"model": "gpt-test",'],
    ['trailing garbage', '{"model": "gpt-test"} x'],
    ['empty body', ''],
  ]) {
    test(`${what} -> 400 invalid_request_error, upstream not called`, async () => {
      const r = await post('/v1/chat/completions', body, { headers: { 'Content-Type': 'application/json' } });
      const err = assertError(r, 400);
      assert.equal(err.type, 'invalid_request_error');
      assert.equal(sawRequest(stack.mock, r.id), false);
    });
  }

  test('GET /v1/models lists active models in the OpenAI list shape', async () => {
    const r = await v1(stack, 'GET', '/v1/models', { key });
    assert.equal(r.statusCode, 200, r.text);
    assert.match(r.headers['content-type'] ?? '', /application\/json/);
    assert.equal(r.json.object, 'list');
    assert.ok(Array.isArray(r.json.data), r.text);
    const m = r.json.data.find((x) => x.id === 'gpt-test');
    assert.ok(m, `gpt-test missing: ${r.text}`);
    assert.deepEqual(Object.keys(m).sort(), ['created', 'id', 'object', 'owned_by']);
    assert.equal(m.object, 'model');
    assert.equal(typeof m.created, 'number');
    assert.equal(typeof m.owned_by, 'string');
  });

  test('GET /v1/models/{model} -> the model object; unknown -> 404 model_not_found', async () => {
    const r = await v1(stack, 'GET', '/v1/models/gpt-test', { key });
    assert.equal(r.statusCode, 200, r.text);
    assert.equal(r.json.id, 'gpt-test');
    assert.equal(r.json.object, 'model');
    assert.equal(typeof r.json.created, 'number');
    assert.equal(typeof r.json.owned_by, 'string');
    assertError(await v1(stack, 'GET', '/v1/models/nope-model', { key }), 404, 'model_not_found');
  });

  test('model names containing "/" route, and GET /v1/models/a/b and /v1/models/a%2Fb find them', async () => {
    await adminOk(stack, 'POST', '/admin/models', { name: 'acme/gpt-slash', provider_id: provider.id, provider_model_name: 'mock-model-v1' }, 201);
    const r = await post('/v1/chat/completions', chat({ model: 'acme/gpt-slash' }));
    assert.equal(r.statusCode, 200, r.text);
    for (const path of ['/v1/models/acme/gpt-slash', '/v1/models/acme%2Fgpt-slash']) {
      const m = await v1(stack, 'GET', path, { key });
      assert.equal(m.statusCode, 200, `${path}: ${m.text}`);
      assert.equal(m.json.id, 'acme/gpt-slash');
    }
  });
});

// ---- rewrite and headers ---------------------------------------------------------------------

describe('upstream request', () => {
  test('only the model value is rewritten; every other byte is forwarded as sent', async () => {
    const raw = '{\n  "messages" : [ {"role":"user","content":"h\\u00e9llo \\"model\\": \\"gpt-test\\" \\ud83d\\ude00 é 😀 \\/"} ],'
      + '\t"model"  :  "gpt-test" ,\n "temperature": 1.0e2, "top_p":0.50, "n":1, "seed":-0, "logit_bias":{"50256":-1E+2},'
      + ' "metadata":{"model":"gpt-test","nested":{"model":["gpt-test"]}}, "stream":false , "x":[1E-7,{"model":null}] }\n';
    const expected = raw.replace('"model"  :  "gpt-test"', '"model"  :  "mock-model-v1"');
    const r = await post('/v1/chat/completions', raw, { headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.statusCode, 200, r.text);
    const up = await upstreamRequest(stack.mock, r.id);
    assert.equal(up.method, 'POST');
    assert.equal(up.path, '/v1/chat/completions');
    assert.equal(up.body, expected, 'upstream body differs from the client body beyond the model value');
    assert.equal(up.headers['content-length'], String(Buffer.byteLength(expected)));
  });

  test('a model value written with escapes routes and is replaced', async () => {
    const raw = '{"model":"gpt\\u002dtest","messages":[{"role":"user","content":"x"}]}';
    const r = await post('/v1/chat/completions', raw);
    assert.equal(r.statusCode, 200, r.text);
    const up = await upstreamRequest(stack.mock, r.id);
    assert.equal(up.body, '{"model":"mock-model-v1","messages":[{"role":"user","content":"x"}]}');
  });

  test('/v1/completions and /v1/embeddings are forwarded to the same paths with the rewritten model', async () => {
    for (const [path, body] of [
      ['/v1/completions', { model: 'gpt-test', prompt: 'Say this is a test' }],
      ['/v1/embeddings', { model: 'gpt-test', input: ['a', 'b'] }],
    ]) {
      const r = await post(path, body);
      assert.equal(r.statusCode, 200, `${path}: ${r.text}`);
      const up = await upstreamRequest(stack.mock, r.id);
      assert.equal(up.path, path);
      assert.equal(up.json.model, 'mock-model-v1');
      assert.equal(r.json.model, 'mock-model-v1');
      if (path.endsWith('embeddings')) assert.equal(r.json.data.length, 2);
      else assert.equal(r.json.object, 'text_completion');
    }
  });

  test('a chunked request body is forwarded whole, with a Content-Length', async () => {
    const id = newId('te');
    const json = JSON.stringify(chat({ messages: [{ role: 'user', content: 'chunked ✓' }] }));
    const buf = Buffer.from(json);
    const cut = 17;
    const chunked = Buffer.concat([
      Buffer.from(`${cut.toString(16)}\r\n`), buf.subarray(0, cut), Buffer.from('\r\n'),
      Buffer.from(`${(buf.length - cut).toString(16)}\r\n`), buf.subarray(cut), Buffer.from('\r\n0\r\n\r\n'),
    ]);
    const r = await v1(stack, 'POST', '/v1/chat/completions', {
      id, body: chunked, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
    });
    assert.equal(r.statusCode, 200, r.text);
    const up = await upstreamRequest(stack.mock, id);
    assert.equal(up.body, json.replace('"gpt-test"', '"mock-model-v1"'));
    assert.equal(up.headers['content-length'], String(Buffer.byteLength(up.body)));
    assert.equal(up.headers['transfer-encoding'], undefined);
  });

  test('upstream auth is the provider key; the user key never reaches the upstream', async () => {
    const r = await post('/v1/chat/completions', chat(), {
      headers: { 'X-Api-Key': key, Cookie: `k=${key}`, 'OpenAI-Organization': 'org-client' },
    });
    assert.equal(r.statusCode, 200, r.text);
    const up = await upstreamRequest(stack.mock, r.id);
    assert.equal(up.headers.authorization, `Bearer ${UPSTREAM_SECRET}`);
    for (const req of stack.mock.requests) {
      const all = JSON.stringify(req.headers);
      assert.ok(!all.includes(key) && !all.includes(key.slice(3)), `user key found in upstream headers: ${all}`);
    }
  });

  test('OpenAI-Organization, OpenAI-Beta, X-Request-Id reach the upstream; hop-by-hop headers do not', async () => {
    const id = newId('fwd');
    const r = await post('/v1/chat/completions', chat(), {
      id,
      headers: {
        'OpenAI-Organization': 'org-abc', 'OpenAI-Beta': 'assistants=v2',
        Connection: 'keep-alive, X-Hop-Secret', 'X-Hop-Secret': 'hop', 'Keep-Alive': 'timeout=5',
        'Proxy-Authorization': 'Basic Zm9vOmJhcg==', 'Proxy-Connection': 'keep-alive', TE: 'trailers',
      },
    });
    assert.equal(r.statusCode, 200, r.text);
    const up = await upstreamRequest(stack.mock, id);
    assert.equal(up.headers['openai-organization'], 'org-abc');
    assert.equal(up.headers['openai-beta'], 'assistants=v2');
    assert.equal(up.headers['x-request-id'], id);
    for (const h of ['x-hop-secret', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te'])
      assert.equal(up.headers[h], undefined, `hop-by-hop header ${h} forwarded: ${JSON.stringify(up.headers)}`);
    assert.doesNotMatch(up.headers.connection ?? '', /x-hop-secret|close/i);
    assert.equal(up.headers.host, `127.0.0.1:${stack.mock.port}`);
    assert.equal(r.headers['x-request-id'], id, 'client request id echoed');
  });

  test('upstream content-type, openai-processing-ms, x-ratelimit-* come back; hop-by-hop ones do not', async () => {
    const r = await post('/v1/chat/completions', chat({ mock: { headers: { 'keep-alive': 'timeout=99', 'x-ratelimit-custom-thing': '7' } } }),
      { headers: { Connection: 'keep-alive' } });
    assert.equal(r.statusCode, 200, r.text);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.match(r.headers['openai-processing-ms'] ?? '', /^\d+$/);
    assert.equal(r.headers['x-ratelimit-limit-requests'], '10000');
    assert.equal(r.headers['x-ratelimit-remaining-requests'], '9999');
    assert.equal(r.headers['x-ratelimit-limit-tokens'], '2000000');
    assert.equal(r.headers['x-ratelimit-reset-requests'], '6ms');
    assert.equal(r.headers['x-ratelimit-custom-thing'], '7');
    assert.notEqual(r.headers['keep-alive'], 'timeout=99', 'upstream Keep-Alive relayed');
    assert.equal(r.json.object, 'chat.completion');
    assert.equal(r.json.choices[0].message.content, 'word1 word2 word3');
  });
});

// ---- streaming -------------------------------------------------------------------------------

describe('streaming', () => {
  test('SSE stream: headers, and the events byte for byte', async () => {
    const frames = [
      sseFrame({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] }),
      sseFrame({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'Hello' } }] }),
      ': keep-alive comment\n\n',
      'event: custom\nid: 7\ndata: {"a":1}\ndata: {"b":2}\n\n',
      sseFrame({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }),
      'data: [DONE]\n\n',
    ];
    const r = await post('/v1/chat/completions', chat({ stream: true, mock: { raw_chunks: frames } }));
    assert.equal(r.statusCode, 200, r.text);
    assert.equal(r.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(r.headers['x-accel-buffering'], 'no');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.chunked, true, 'stream not sent with chunked framing');
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(r.complete, true, 'terminating chunk missing');
    assert.equal(r.body.toString('latin1'), Buffer.from(frames.join('')).toString('latin1'));
  });

  test('mock-generated chat stream arrives whole and parses', async () => {
    const r = await post('/v1/chat/completions', chat({ stream: true, mock: { chunks: 4, content: 'héllo wörld 🌍 ok' } }));
    assert.equal(r.statusCode, 200, r.text);
    assert.equal(r.complete, true);
    assert.equal(r.headers['cache-control'], 'no-cache', 'exactly one Cache-Control');
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    const events = r.text.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    assert.equal(events.at(-1), '[DONE]');
    const text = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'héllo wörld 🌍 ok');
  });

  test('a stream request answered with an upstream error is relayed as that JSON error', async () => {
    const r = await post('/v1/chat/completions', chat({ stream: true, mock: { status: 429 } }));
    assert.equal(r.statusCode, 429, r.text);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.json?.error?.code, 'rate_limit_exceeded', r.text);
  });

  test('UTF-8 characters and SSE lines split across upstream writes arrive byte-identical', async () => {
    const whole = Buffer.from(
      sseFrame({ choices: [{ delta: { content: 'añ€😀' } }] })
      + 'data: {"choices":[{"delta":{"content":"\u{1F30D}ü"}}]}\r\n\r\n'
      + sseFrame('[DONE]'),
    );
    // Cut inside the 2-byte ñ, the 3-byte €, the 4-byte 😀 (twice), 🌍, and between \r and \n.
    const cuts = [];
    const at = (needle, k) => whole.indexOf(Buffer.from(needle)) + k;
    cuts.push(3, at('ñ', 1), at('€', 1), at('€', 2), at('😀', 1), at('😀', 3), at('\u{1F30D}', 2), at('\r\n\r\n', 1), at('\r\n\r\n', 3), whole.length - 2);
    const pieces = [];
    let prev = 0;
    for (const c of [...new Set(cuts)].sort((a, b) => a - b)) { pieces.push(whole.subarray(prev, c)); prev = c; }
    pieces.push(whole.subarray(prev));
    const r = await post('/v1/chat/completions', chat({
      stream: true, mock: { raw_chunks_b64: pieces.map((p) => p.toString('base64')), chunk_interval_ms: 15 },
    }));
    assert.equal(r.statusCode, 200, r.text);
    assert.equal(r.complete, true);
    assert.ok(r.body.equals(whole), `body differs:\n got ${r.body.toString('hex')}\nwant ${whole.toString('hex')}`);
  });

  test('tokens are delivered as they arrive, not buffered', async () => {
    // 5 pieces -> 8 frames (role, 5 deltas, finish, [DONE]), 200 ms apart: ~1.4 s in all.
    const r = await post('/v1/chat/completions', chat({ stream: true, mock: { chunks: 5, chunk_interval_ms: 200 } }));
    assert.equal(r.statusCode, 200, r.text);
    assert.equal(r.complete, true);
    const headAt = r.timeToFirstByte;
    const firstBody = r.timeToFirstBodyByte;
    const last = r.arrivals.at(-1).t;
    assert.ok(firstBody - headAt < 150, `first body byte ${Math.round(firstBody - headAt)} ms after the head`);
    assert.ok(last - firstBody > 1000, `whole stream within ${Math.round(last - firstBody)} ms: was it buffered?`);
    // Frames arrive in at least 6 separate bursts.
    const bursts = r.arrivals.filter((a, i) => i === 0 || a.t - r.arrivals[i - 1].t > 100).length;
    assert.ok(bursts >= 6, `only ${bursts} separate arrivals: ${JSON.stringify(r.arrivals.map((a) => Math.round(a.t)))}`);
  });
});

// ---- large bodies and upstream errors --------------------------------------------------------

describe('non-stream bodies', () => {
  const SIZE = 4 * 1024 * 1024;
  for (const noCL of [false, true]) {
    test(`4 MiB response ${noCL ? 'without Content-Length (chunked upstream)' : 'with Content-Length'} arrives intact`, async () => {
      const r = await post('/v1/chat/completions', chat({ mock: { large_bytes: SIZE, no_content_length: noCL } }), { timeoutMs: 30_000 });
      assert.equal(r.statusCode, 200, r.text.slice(0, 300));
      assert.equal(r.complete, true, 'response incomplete');
      assert.equal(r.body.length, SIZE);
      if (!noCL) assert.equal(r.headers['content-length'], String(SIZE));
      const json = JSON.parse(r.text);
      const content = json.choices[0].message.content;
      assert.ok(/^x+$/.test(content), 'content corrupted');
      assert.equal(Buffer.byteLength(JSON.stringify(json)), SIZE);
    });
  }

  for (const [status, type, code, extra] of [
    [400, 'invalid_request_error', 'context_length_exceeded', {}],
    [401, 'invalid_request_error', 'invalid_api_key', {}],
    [429, 'requests', 'rate_limit_exceeded', { 'retry-after': '1' }],
    [500, 'server_error', null, {}],
    [503, 'server_error', 'service_unavailable', {}],
  ]) {
    test(`upstream ${status} passes through with its status, body and headers`, async () => {
      const message = `upstream says ${status} ✓`;
      const r = await post('/v1/chat/completions', chat({ mock: { status, error_type: type, error_code: code, error_message: message } }));
      assert.equal(r.statusCode, status, r.text);
      assert.equal(r.text, JSON.stringify(openaiError(message, type, code)));
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['x-ratelimit-limit-requests'], '10000');
      for (const [h, v] of Object.entries(extra)) assert.equal(r.headers[h], v, `header ${h}`);
    });
  }
});

// ---- failures --------------------------------------------------------------------------------

describe('upstream failures', () => {
  test('connection refused -> 502 upstream_unavailable', async () => {
    const port = await closedPort();
    const p = await adminOk(stack, 'POST', '/admin/providers', { name: 'dead', kind: 'openai', api_key: UPSTREAM_SECRET, base_url: `http://127.0.0.1:${port}/v1` }, 201);
    await adminOk(stack, 'POST', '/admin/models', { name: 'gpt-dead', provider_id: p.id, provider_model_name: 'x' }, 201);
    const t0 = Date.now();
    const r = await post('/v1/chat/completions', chat({ model: 'gpt-dead' }));
    assertError(r, 502, 'upstream_unavailable');
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    const s = await post('/v1/chat/completions', chat({ model: 'gpt-dead', stream: true }));
    assertError(s, 502, 'upstream_unavailable');
  });

  for (const resetWith of ['rst', 'fin']) {
    test(`upstream ${resetWith === 'rst' ? 'reset' : 'premature EOF'} mid-stream -> client connection closed without a clean end`, async () => {
      const r = await post('/v1/chat/completions', chat({ stream: true, mock: { chunks: 6, reset_after_chunks: 2, reset_with: resetWith } }));
      assertTruncated(r, `reset_with ${resetWith}`);
      assert.match(r.text, /^data: /, 'the frames before the reset were relayed');
      assert.doesNotMatch(r.text, /\[DONE\]/);
    });
  }

  test('upstream reset mid-body of a non-stream response -> connection closed, body short', async () => {
    const body = '{"id":"x","object":"chat.completion","choices":[{"message":{"content":"' + 'y'.repeat(2000) + '"}}]}';
    const pieces = [body.slice(0, 1000), body.slice(1000)];
    const r = await post('/v1/chat/completions', chat({
      mock: { raw_chunks: pieces, reset_after_chunks: 1, headers: { 'content-length': String(body.length) } },
    }));
    assert.equal(r.statusCode, 200);
    assert.equal(r.complete, false, 'response looked complete');
    assert.equal(r.closed, true);
    assert.ok(r.body.length < body.length);
  });
});

describe('unusual upstream framing (raw TCP upstream)', () => {
  let raw;
  const script = {};
  before(async () => {
    raw = await startRawUpstream((socket, head) => script.respond(socket, head));
    const p = await adminOk(stack, 'POST', '/admin/providers', { name: 'raw', kind: 'openai', api_key: UPSTREAM_SECRET, base_url: raw.url }, 201);
    await adminOk(stack, 'POST', '/admin/models', { name: 'gpt-raw', provider_id: p.id, provider_model_name: 'raw-model' }, 201);
  });
  after(async () => { await raw?.close(); });

  test('a close-delimited upstream body (no length, no chunking) reaches the client whole, with a clean end', async () => {
    const body = '{"id":"close-delimited","object":"chat.completion","choices":[{"message":{"content":"ünïcode ✓"}}]}';
    script.respond = (socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n' + body.slice(0, 30));
      setTimeout(() => socket.end(body.slice(30)), 50);
    };
    const r = await post('/v1/chat/completions', chat({ model: 'gpt-raw' }));
    assert.equal(r.statusCode, 200, r.text);
    assert.equal(r.complete, true, 'the client could not tell that the body was complete');
    assert.equal(r.text, body);
  });

  test('a garbage upstream response -> 502', async () => {
    script.respond = (socket) => socket.end('SMTP ready\r\n\r\n');
    assertError(await post('/v1/chat/completions', chat({ model: 'gpt-raw' })), 502);
  });

  test('upstream closes without answering -> 502 upstream_unavailable', async () => {
    script.respond = (socket) => socket.destroy();
    assertError(await post('/v1/chat/completions', chat({ model: 'gpt-raw' })), 502, 'upstream_unavailable');
  });
});

describe('client disconnects', () => {
  test('client leaves mid-stream -> upstream connection closed within 1 s', async () => {
    const mark = stack.mock.events.length;
    const conn = await connect(stack.gateway.port);
    await conn.write(buildRequest('POST', '/v1/chat/completions', {
      headers: { Authorization: `Bearer ${key}` }, body: chat({ stream: true, mock: { chunks: 20, chunk_interval_ms: 300 } }),
    }));
    await conn.waitFor('data: ', 5000);
    conn.destroy();
    const t0 = Date.now();
    const ev = await stack.mock.waitFor(() => stack.mock.events.slice(mark).find((e) => e.type === 'client_closed'), 1000)
      .catch(() => assert.fail('the mock saw no client_closed within 1 s after the client left'));
    assert.ok(ev.afterChunks < 20);
    assert.ok(Date.now() - t0 <= 1000);
  });

  test('client leaves while the upstream is slow to answer -> upstream sees the close within 1 s', async () => {
    const mark = stack.mock.events.length;
    const id = newId('slow');
    const conn = await connect(stack.gateway.port);
    await conn.write(buildRequest('POST', '/v1/chat/completions', {
      headers: { Authorization: `Bearer ${key}`, 'X-Request-Id': id }, body: chat({ mock: { first_byte_delay_ms: 5000 } }),
    }));
    await upstreamRequest(stack.mock, id);
    await sleep(300);
    conn.destroy();
    const t0 = Date.now();
    await stack.mock.waitFor(() => stack.mock.events.slice(mark).find((e) => e.type === 'client_closed'), 1000)
      .catch(() => assert.fail('the mock saw no client_closed within 1 s after the client left'));
    assert.ok(Date.now() - t0 <= 1000);
  });

  test('the gateway keeps serving after abandoned requests', async () => {
    const r = await post('/v1/chat/completions', chat());
    assert.equal(r.statusCode, 200, r.text);
  });
});

describe('keep-alive', () => {
  test('several requests on one client connection, and the upstream connection is reused', async () => {
    const ka = await keepAliveConnection(stack.gateway.port);
    const counter = countUpstreamConnections(stack.mock);
    try {
      const auth = { Authorization: `Bearer ${key}` };
      const seq = [
        ['POST', '/v1/chat/completions', chat()],
        ['POST', '/v1/chat/completions', chat({ stream: true })],
        ['GET', '/v1/models', undefined],
        ['POST', '/v1/embeddings', { model: 'gpt-test', input: 'x' }],
        ['POST', '/v1/chat/completions', chat({ mock: { status: 429 } })],
        ['POST', '/v1/chat/completions', chat({ model: 'missing-model' })],
        ['POST', '/v1/completions', { model: 'gpt-test', prompt: 'p' }],
      ];
      const statuses = [];
      for (const [method, path, body] of seq) {
        const r = await ka.request(method, path, { headers: auth, body });
        assert.equal(r.complete, true, `${method} ${path}: incomplete`);
        assert.ok(!ka.conn.closed, `${method} ${path}: gateway closed the connection (status ${r.statusCode})`);
        assert.doesNotMatch(r.headers.connection ?? '', /close/i, `${method} ${path}`);
        statuses.push(r.statusCode);
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 429, 404, 200]);
      assert.ok(counter.count <= 1, `the upstream saw ${counter.count} new TCP connections for sequential requests on one client connection`);
    } finally {
      counter.stop();
      ka.close();
    }
  });

  test('sequential requests on separate client connections share one upstream connection per worker', async () => {
    // The pool is per worker (WORKERS=2 here) and the kernel spreads client connections over the
    // workers, so 12 sequential requests open at most one upstream connection per worker.
    const counter = countUpstreamConnections(stack.mock);
    try {
      for (let i = 0; i < 12; i++) assert.equal((await post('/v1/chat/completions', chat({ stream: i % 3 === 1 }))).statusCode, 200);
      assert.ok(counter.count <= 2, `the upstream saw ${counter.count} new connections for 12 sequential requests`);
    } finally {
      counter.stop();
    }
  });
});

describe('connection handling', () => {
  test('pipelined requests (a stream, then a plain request, in one write) are answered in order', async () => {
    const conn = await connect(stack.gateway.port);
    try {
      const auth = { Authorization: `Bearer ${key}` };
      await conn.write(Buffer.concat([
        buildRequest('POST', '/v1/chat/completions', { headers: { ...auth, Connection: 'keep-alive', 'X-Request-Id': 'pipe-1' }, body: chat({ stream: true, mock: { chunk_interval_ms: 50 } }) }),
        buildRequest('POST', '/v1/chat/completions', { headers: { ...auth, Connection: 'close', 'X-Request-Id': 'pipe-2' }, body: chat({ mock: { content: 'second' } }) }),
      ]));
      await conn.waitForClose(10_000);
      const first = parseResponse(conn.received);
      assert.ok(first?.complete, `first response incomplete: ${conn.received.toString('latin1').slice(0, 500)}`);
      assert.equal(first.headers['x-request-id'], 'pipe-1');
      assert.match(first.text, /\[DONE\]/);
      const end = first.headBytes + decodeChunked(first.rawBody).consumed;
      const second = parseResponse(conn.received.subarray(end));
      assert.ok(second?.complete, `second response missing or incomplete: ${conn.received.subarray(end).toString('latin1').slice(0, 500)}`);
      assert.equal(second.statusCode, 200);
      assert.equal(second.headers['x-request-id'], 'pipe-2');
      assert.equal(JSON.parse(second.text).choices[0].message.content, 'second');
    } finally {
      conn.destroy();
    }
  });

  test('a pooled upstream connection closed by the upstream while idle is replaced transparently', async () => {
    assert.equal((await post('/v1/chat/completions', chat())).statusCode, 200); // leaves a pooled connection
    stack.mock.server.closeIdleConnections();
    await sleep(100);
    for (const stream of [false, true]) {
      const r = await post('/v1/chat/completions', chat({ stream }));
      assert.equal(r.statusCode, 200, `stream=${stream}: ${r.text}`);
      assert.equal(r.complete, true);
    }
  });

  test('an HTTP/1.0 client gets the stream without chunked framing (RFC 9112 6.1), ended by close', async () => {
    const body = JSON.stringify(chat({ stream: true, mock: { chunks: 3 } }));
    const req = `POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const conn = await connect(stack.gateway.port);
    try {
      await conn.write(req);
      await conn.waitForClose(10_000);
      const res = parseResponse(conn.received);
      assert.ok(res, conn.received.toString('latin1'));
      assert.equal(res.statusCode, 200);
      assert.doesNotMatch(res.headers['transfer-encoding'] ?? '', /chunked/i, 'chunked sent to an HTTP/1.0 client');
      assert.match(res.rawBody.toString('utf8'), /^data: [^]*data: \[DONE\]\n\n$/, 'body is not the bare SSE stream');
    } finally {
      conn.destroy();
    }
  });

  test('30 concurrent requests (streams and plain) all complete', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) =>
      post('/v1/chat/completions', chat({ stream: i % 2 === 0, mock: { chunks: 5, chunk_interval_ms: 20, content: `reply ${i}` } }))));
    results.forEach((r, i) => {
      assert.equal(r.statusCode, 200, `#${i}: ${r.text}`);
      assert.equal(r.complete, true, `#${i} incomplete`);
      assert.ok(r.text.includes(i % 2 === 0 ? `${i}` : `reply ${i}`), `#${i}: ${r.text.slice(0, 200)}`);
    });
  });
});

// ---- Redis outage ----------------------------------------------------------------------------

describe('Redis down', () => {
  test('valid keys and routes served from PostgreSQL, invalid keys 401, cache refilled after restart', async () => {
    const keysSet = 'llmgw:key_records';
    await stack.redis.stop();
    let newKey;
    try {
      const timed = async (what, fn) => {
        const t0 = Date.now();
        const r = await fn();
        assert.ok(Date.now() - t0 < 5000, `${what} took ${Date.now() - t0} ms with Redis down`);
        return r;
      };
      const ok = await timed('chat', () => post('/v1/chat/completions', chat()));
      assert.equal(ok.statusCode, 200, ok.text);
      assertError(await timed('bad key', () => post('/v1/chat/completions', chat(), { key: 'sk-wrong-while-redis-down' })), 401, 'invalid_api_key');
      assertError(await timed('no key', () => v1(stack, 'POST', '/v1/chat/completions', { body: chat() })), 401, 'missing_api_key');

      // A key and a model created while Redis is down exist only in PostgreSQL.
      newKey = (await createKey(stack, 'during-outage')).key;
      await adminOk(stack, 'POST', '/admin/models', { name: 'gpt-outage', provider_id: provider.id, provider_model_name: 'mock-model-v1' }, 201);
      const r2 = await timed('new key + new model', () => post('/v1/chat/completions', chat({ model: 'gpt-outage', stream: true }), { key: newKey }));
      assert.equal(r2.statusCode, 200, r2.text);
      assert.equal(r2.complete, true);
      const list = await timed('models', () => v1(stack, 'GET', '/v1/models', { key: newKey }));
      assert.equal(list.statusCode, 200, list.text);
      assert.ok(list.json.data.some((m) => m.id === 'gpt-outage') && list.json.data.some((m) => m.id === 'gpt-test'), list.text);
      assertError(await v1(stack, 'GET', '/v1/models/nope', { key: newKey }), 404, 'model_not_found');

      // A key revoked during the outage is refused.
      const doomed = await createKey(stack, 'revoked-during-outage');
      assert.equal((await post('/v1/chat/completions', chat(), { key: doomed.key })).statusCode, 200);
      const del = await stack.admin('DELETE', `/admin/keys/${doomed.id}`);
      assert.ok(del.status === 204 || del.status === 200, `DELETE key during outage -> ${del.status} ${del.text}`);
      assertError(await post('/v1/chat/completions', chat(), { key: doomed.key }), 401, 'invalid_api_key');
    } finally {
      await stack.redis.start();
    }
    // Without any request using it, the key created during the outage appears in Redis.
    await eventually(async () => (await redisCli(stack.redis.port, 'HEXISTS', keysSet, sha256(newKey))) === '1',
      { timeoutMs: 5000, what: `HEXISTS ${keysSet} <hash of the key created during the outage> = 1` });
    await eventually(async () => (await redisCli(stack.redis.port, 'HEXISTS', keysSet, sha256(key))) === '1',
      { timeoutMs: 5000, what: 'old key back in Redis' });
    await eventually(async () => (await redisCli(stack.redis.port, 'HEXISTS', 'llmgw:routes', 'gpt-outage')) === '1',
      { timeoutMs: 5000, what: 'route of the model created during the outage in Redis' });
    const list = await v1(stack, 'GET', '/v1/models', { key });
    assert.ok(list.json?.data?.some((m) => m.id === 'gpt-outage'), `after the restart: ${list.text}`);
    assert.equal((await post('/v1/chat/completions', chat({ model: 'gpt-outage' }))).statusCode, 200);
  });
});

// ---- timeouts (restart the gateway with short upstream timeouts) ------------------------------

describe('upstream timeouts', () => {
  before(async () => { await stack.gateway.restart({ UPSTREAM_FIRST_BYTE_TIMEOUT: '1', UPSTREAM_IDLE_TIMEOUT: '1' }); });

  test('no response header within UPSTREAM_FIRST_BYTE_TIMEOUT=1 -> 504 upstream_timeout after ~1 s', async () => {
    const mark = stack.mock.events.length;
    const t0 = Date.now();
    const r = await post('/v1/chat/completions', chat({ mock: { first_byte_delay_ms: 3000 } }));
    const took = Date.now() - t0;
    assertError(r, 504, 'upstream_timeout');
    assert.ok(took >= 900 && took < 2500, `504 after ${took} ms`);
    await stack.mock.waitFor(() => stack.mock.events.slice(mark).find((e) => e.type === 'client_closed'), 1000)
      .catch(() => assert.fail('the gateway did not close the upstream connection after the timeout'));
  });

  test('a slow stream whose gaps stay under the idle timeout completes', async () => {
    const r = await post('/v1/chat/completions', chat({ stream: true, mock: { chunks: 3, chunk_interval_ms: 400 } }));
    assert.equal(r.statusCode, 200);
    assert.equal(r.complete, true, 'stream cut although every gap < UPSTREAM_IDLE_TIMEOUT');
  });

  test('idle gap > UPSTREAM_IDLE_TIMEOUT mid-stream -> connection closed without the terminating chunk', async () => {
    const t0 = Date.now();
    const r = await post('/v1/chat/completions', chat({ stream: true, mock: { chunks: 3, chunk_interval_ms: 2500 } }));
    const took = Date.now() - t0;
    assertTruncated(r, 'idle timeout');
    assert.ok(r.body.length > 0, 'the first frame should have been relayed');
    assert.ok(took >= 900 && took < 2400, `connection closed after ${took} ms; expected ~1 s (the idle timeout)`);
  });

  test('fractional timeouts: UPSTREAM_FIRST_BYTE_TIMEOUT=0.5 -> 504 in ~0.5 s', async () => {
    await stack.gateway.restart({ UPSTREAM_FIRST_BYTE_TIMEOUT: '0.5', UPSTREAM_IDLE_TIMEOUT: '0.5' });
    const t0 = Date.now();
    const r = await post('/v1/chat/completions', chat({ mock: { first_byte_delay_ms: 2000 } }));
    const took = Date.now() - t0;
    assertError(r, 504, 'upstream_timeout');
    assert.ok(took >= 400 && took < 1000, `504 after ${took} ms`);
    assert.equal((await post('/v1/chat/completions', chat())).statusCode, 200, 'a fast request still works');
  });
});

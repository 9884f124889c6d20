// The mock upstream alone (no gateway, no databases): the official openai and
// @anthropic-ai/sdk clients talk to it directly, and raw requests check its byte layout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMockUpstream } from '../mock_upstream/server.mjs';

const T = { timeout: 10_000 };
let mock;
before(async () => { mock = await startMockUpstream(); });
after(async () => { await mock?.close(); });

const openai = (opts = {}) => new OpenAI({ apiKey: 'sk-test', baseURL: mock.url, maxRetries: 0, timeout: 5000, ...opts });
const claude = (opts = {}) => new Anthropic({ apiKey: 'sk-ant-test', baseURL: mock.origin, maxRetries: 0, timeout: 5000, ...opts });
const chatBody = (extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }], ...extra });
const msgBody = (extra = {}) => ({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'Say hi' }], ...extra });
const ANTHROPIC_HEADERS = { 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' };
const post = (url, body, headers = { authorization: 'Bearer sk-test', 'content-type': 'application/json' }) => fetch(url, {
  method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body),
});
// Splits an SSE body into [{event, data}] and checks that it is made of whole frames only.
function frames(text) {
  assert.ok(text.endsWith('\n\n'), 'the body ends with a blank line');
  return text.slice(0, -2).split('\n\n').map((f) => {
    const m = /^(?:event: ([^\n]+)\n)?data: ([^\n]*)$/.exec(f);
    assert.ok(m, `malformed frame ${JSON.stringify(f)}`);
    return { event: m[1] ?? null, data: m[2] };
  });
}

// ---- OpenAI chat/completions -------------------------------------------------------------

test('openai SDK: chat non-stream and stream with stream_options.include_usage', T, async () => {
  const client = openai();
  const chat = await client.chat.completions.create(chatBody());
  assert.equal(chat.choices[0].message.content, 'word1 word2 word3');
  assert.deepEqual(chat.usage.prompt_tokens_details, { cached_tokens: 0, audio_tokens: 0 });
  assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + 3);

  let text = '';
  let usage;
  const stream = await client.chat.completions.create(chatBody({ stream: true, stream_options: { include_usage: true }, mock: { chunks: 5 } }));
  for await (const c of stream) { text += c.choices[0]?.delta?.content ?? ''; if (c.usage) usage = c.usage; }
  assert.equal(text, 'word1 word2 word3 word4 word5');
  assert.equal(usage.completion_tokens, 5);
  assert.equal(usage.prompt_tokens, chat.usage.prompt_tokens, 'deterministic prompt token count');
});

test('chat: usage overrides (with cached_tokens) and the include_usage option', T, async () => {
  const over = { prompt_tokens: 1000, completion_tokens: 42, cached_tokens: 768, reasoning_tokens: 7 };
  const j = await (await post(mock.url + '/chat/completions', chatBody({ mock: { usage: over } }))).json();
  assert.deepEqual(j.usage, {
    prompt_tokens: 1000, completion_tokens: 42, total_tokens: 1042,
    prompt_tokens_details: { cached_tokens: 768, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 7, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  });
  // usage asked for by the body, or forced by the mock option although the body did not ask
  for (const body of [chatBody({ stream: true, stream_options: { include_usage: true }, mock: { usage: over } }), chatBody({ stream: true, mock: { usage: over, include_usage: true } })]) {
    const ev = frames(await (await post(mock.url + '/chat/completions', body)).text());
    assert.equal(ev.at(-1).data, '[DONE]');
    const last = JSON.parse(ev.at(-2).data);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.prompt_tokens_details.cached_tokens, 768);
    assert.equal(last.usage.total_tokens, 1042);
  }
  // include_usage:false ignores the request; 'final_chunk' puts usage on the finish chunk
  const off = frames(await (await post(mock.url + '/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true }, mock: { include_usage: false } }))).text());
  assert.ok(off.slice(0, -1).every((e) => !('usage' in JSON.parse(e.data))));
  const fin = frames(await (await post(mock.url + '/chat/completions', chatBody({ stream: true, mock: { include_usage: 'final_chunk' } }))).text());
  const finish = JSON.parse(fin.at(-2).data);
  assert.equal(finish.choices[0].finish_reason, 'stop');
  assert.equal(finish.usage.completion_tokens, 3);
  // embeddings take the prompt_tokens override too
  const emb = await (await post(mock.url + '/embeddings', { model: 'e', input: 'x', mock: { usage: { prompt_tokens: 9 } } })).json();
  assert.deepEqual(emb.usage, { prompt_tokens: 9, total_tokens: 9 });
});

test('chat: stream_error_after sends an OpenAI error event mid-stream; the SDK throws', T, async () => {
  const res = await post(mock.url + '/chat/completions', chatBody({ stream: true, mock: { stream_error_after: 1 } }));
  assert.equal(res.status, 200);
  const ev = frames(await res.text());
  assert.equal(ev.length, 3); // role chunk, one delta, error
  assert.deepEqual(JSON.parse(ev[2].data), { error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null } });
  const stream = await openai().chat.completions.create(chatBody({ stream: true, mock: { stream_error_after: 2 } }));
  let text = '';
  await assert.rejects((async () => { for await (const c of stream) text += c.choices[0]?.delta?.content ?? ''; })(), (e) => e instanceof OpenAI.APIError && e.type === 'server_error');
  assert.equal(text, 'word1 word2');
});

// ---- OpenAI Responses API ------------------------------------------------------------------

test('responses.create non-stream: output_text, exact shape, usage', T, async () => {
  const client = openai();
  const r = await client.responses.create({ model: 'gpt-4o', input: 'Tell me a story', instructions: 'Be brief', mock: { content: 'Once upon a time.', usage: { cached_tokens: 2 } } });
  assert.equal(r.output_text, 'Once upon a time.');
  assert.match(r.id, /^resp_[0-9a-f]{48}$/);
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'completed');
  assert.equal(r.model, 'gpt-4o');
  assert.equal(r.instructions, 'Be brief');
  assert.equal(r.output.length, 1);
  const item = r.output[0];
  assert.deepEqual(Object.keys(item), ['id', 'type', 'status', 'content', 'role']);
  assert.match(item.id, /^msg_[0-9a-f]{48}$/);
  assert.deepEqual(item.content, [{ type: 'output_text', annotations: [], logprobs: [], text: 'Once upon a time.' }]);
  const inputTokens = Math.ceil('Tell me a story'.length / 4) + Math.ceil('Be brief'.length / 4);
  assert.deepEqual(r.usage, {
    input_tokens: inputTokens, input_tokens_details: { cached_tokens: 2 }, output_tokens: 3,
    output_tokens_details: { reasoning_tokens: 0 }, total_tokens: inputTokens + 3,
  });
  // the raw body: key order as the API sends it, and the object is kept
  const raw = await (await post(mock.url + '/responses', { model: 'gpt-4o', input: 'x' })).json();
  assert.deepEqual(Object.keys(raw), ['id', 'object', 'created_at', 'status', 'background', 'completed_at', 'error', 'incomplete_details',
    'instructions', 'max_output_tokens', 'max_tool_calls', 'model', 'output', 'parallel_tool_calls', 'previous_response_id', 'prompt_cache_key',
    'reasoning', 'safety_identifier', 'service_tier', 'store', 'temperature', 'text', 'tool_choice', 'tools', 'top_logprobs', 'top_p',
    'truncation', 'usage', 'user', 'metadata']);
  assert.deepEqual(mock.responses.get(raw.id), raw);
  assert.deepEqual(mock.responses.get(r.id).usage, r.usage);
});

test('responses.create stream: documented event sequence, sequence_number, final usage', T, async () => {
  const stream = await openai().responses.create({ model: 'gpt-4o', input: 'hello', stream: true, mock: { chunks: 2, usage: { input_tokens: 11, output_tokens: 5 } } });
  const events = [];
  for await (const e of stream) events.push(e);
  assert.deepEqual(events.map((e) => e.type), [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.output_text.delta', 'response.output_text.done', 'response.content_part.done',
    'response.output_item.done', 'response.completed',
  ]);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  assert.equal(events[0].response.status, 'in_progress');
  assert.equal(events[0].response.usage, null);
  assert.equal(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), 'word1 word2');
  assert.equal(events[6].text, 'word1 word2');
  const done = events.at(-1).response;
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.usage, { input_tokens: 11, input_tokens_details: { cached_tokens: 0 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 16 });
  assert.deepEqual(mock.responses.get(done.id), done, 'the completed response is stored');

  // the SDK's stream helper builds the same final response
  const final = await openai().responses.stream({ model: 'gpt-4o', input: 'hello' }).finalResponse();
  assert.equal(final.output_text, 'word1 word2 word3');

  // byte layout: "event: <type>\ndata: <json with the same type>\n\n", no [DONE]
  const res = await post(mock.url + '/responses', { model: 'gpt-4o', input: 'hello', stream: true });
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const ev = frames(await res.text());
  for (const e of ev) assert.equal(JSON.parse(e.data).type, e.event);
  assert.match(ev[4].data, /^\{"type":"response\.output_text\.delta","sequence_number":4,"item_id":"msg_[0-9a-f]{48}","output_index":0,"content_index":0,"delta":"word1","logprobs":\[\]\}$/);
});

test('responses: retrieve, delete, input_items, 404 for unknown ids, store:false', T, async () => {
  const client = openai();
  const input = [
    { role: 'user', content: 'first' },
    { role: 'assistant', content: 'second' },
    { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'third' }] },
  ];
  const r = await client.responses.create({ model: 'gpt-4o', input });
  const got = await client.responses.retrieve(r.id);
  assert.equal(got.id, r.id);
  assert.equal(got.output_text, 'word1 word2 word3');

  const items = [];
  for await (const it of client.responses.inputItems.list(r.id, { order: 'asc' })) items.push(it);
  assert.deepEqual(items.map((it) => [it.type, it.role, it.content[0].type, it.content[0].text]),
    [['message', 'user', 'input_text', 'first'], ['message', 'assistant', 'output_text', 'second'], ['message', 'user', 'input_text', 'third']]);
  assert.ok(items.every((it) => /^msg_[0-9a-f]{48}$/.test(it.id)));
  // default order is desc; pages follow the cursor
  const page = await (await fetch(`${mock.url}/responses/${r.id}/input_items?limit=2`, { headers: { authorization: 'Bearer k' } })).json();
  assert.deepEqual(Object.keys(page), ['object', 'data', 'first_id', 'last_id', 'has_more']);
  assert.deepEqual(page.data.map((it) => it.id), [items[2].id, items[1].id]);
  assert.equal(page.first_id, items[2].id);
  assert.equal(page.last_id, items[1].id);
  assert.equal(page.has_more, true);
  const all = [];
  for await (const it of client.responses.inputItems.list(r.id, { limit: 1 })) all.push(it.id);
  assert.deepEqual(all, items.map((it) => it.id).reverse());

  // delete: the raw body, then 404 in the OpenAI error shape
  const del = await fetch(`${mock.url}/responses/${r.id}`, { method: 'DELETE', headers: { authorization: 'Bearer k' } });
  assert.deepEqual(await del.json(), { id: r.id, object: 'response.deleted', deleted: true });
  assert.equal(mock.responses.has(r.id), false);
  await assert.rejects(client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError
    && e.error.message === `Response with id '${r.id}' not found.` && e.type === 'invalid_request_error');
  const r2 = await client.responses.create({ model: 'gpt-4o', input: 'x' });
  await client.responses.delete(r2.id);
  await assert.rejects(client.responses.inputItems.list(r2.id), OpenAI.NotFoundError);

  const unstored = await client.responses.create({ model: 'gpt-4o', input: 'x', store: false });
  assert.equal(unstored.store, false);
  await assert.rejects(client.responses.retrieve(unstored.id), OpenAI.NotFoundError);

  // a stored response can be streamed again (GET ?stream=true)
  const r3 = await client.responses.create({ model: 'gpt-4o', input: 'x' });
  const replay = [];
  for await (const e of await client.responses.retrieve(r3.id, { stream: true })) replay.push(e.type);
  assert.equal(replay.at(-1), 'response.completed');
});

test('responses.cancel: background responses only', T, async () => {
  const client = openai();
  const bg = await client.responses.create({ model: 'gpt-4o', input: 'long job', background: true, mock: { background_delay_ms: 5000 } });
  assert.equal(bg.status, 'queued');
  assert.equal(bg.background, true);
  assert.deepEqual(bg.output, []);
  assert.equal((await client.responses.retrieve(bg.id)).status, 'queued');
  const cancelled = await client.responses.cancel(bg.id);
  assert.equal(cancelled.id, bg.id);
  assert.equal(cancelled.status, 'cancelled');
  assert.equal((await client.responses.retrieve(bg.id)).status, 'cancelled');
  assert.equal(mock.responses.get(bg.id).status, 'cancelled');

  // a background response completes after background_delay_ms; cancelling it then is a no-op
  const quick = await client.responses.create({ model: 'gpt-4o', input: 'job', background: true, mock: { background_delay_ms: 50 } });
  await mock.waitFor(() => mock.responses.get(quick.id)?.status === 'completed', 2000);
  const later = await client.responses.retrieve(quick.id);
  assert.equal(later.output_text, 'word1 word2 word3');
  assert.equal((await client.responses.cancel(quick.id)).status, 'completed');

  // a foreground response cannot be cancelled
  const fg = await client.responses.create({ model: 'gpt-4o', input: 'x' });
  await assert.rejects(client.responses.cancel(fg.id), (e) => e instanceof OpenAI.BadRequestError
    && e.error.message === 'Only responses created with background=true can be cancelled.');
  await assert.rejects(client.responses.cancel('resp_nope'), OpenAI.NotFoundError);
});

test('responses: errors, previous_response_id, input_tokens', T, async () => {
  const client = openai();
  await assert.rejects(client.responses.create({ model: 'gpt-4o', input: 'x', mock: { status: 429 } }), (e) => e instanceof OpenAI.RateLimitError && e.code === 'rate_limit_exceeded');
  await assert.rejects(client.responses.create({ model: 'gpt-4o', input: 'x', mock: { status: 500 } }), OpenAI.InternalServerError);
  await assert.rejects(client.responses.create({ model: 'gpt-4o', input: 'x', previous_response_id: 'resp_missing' }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'previous_response_id');
  const first = await client.responses.create({ model: 'gpt-4o', input: 'x' });
  const second = await client.responses.create({ model: 'gpt-4o', input: 'y', previous_response_id: first.id });
  assert.equal(second.previous_response_id, first.id);
  const count = await client.responses.inputTokens.count({ model: 'gpt-4o', input: 'twelve chars' });
  assert.deepEqual(count, { object: 'response.input_tokens', input_tokens: 3 });
  // a stream that fails: an "error" event, then the end of the body
  const ev = frames(await (await post(mock.url + '/responses', { model: 'gpt-4o', input: 'x', stream: true, mock: { stream_error_after: 1 } })).text());
  assert.deepEqual(ev.map((e) => e.event), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'error']);
  assert.deepEqual(JSON.parse(ev.at(-1).data), { type: 'error', sequence_number: 5, code: 'server_error', message: 'The server had an error while processing your request. Sorry about that!', param: null });
});

// ---- Anthropic Messages API ----------------------------------------------------------------

test('anthropic SDK: messages.create non-stream, content and usage', T, async () => {
  const client = claude();
  const msg = await client.messages.create(msgBody({ system: 'You are terse.' }));
  assert.match(msg.id, /^msg_01[1-9A-HJ-NP-Za-km-z]{22}$/);
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.model, 'claude-sonnet-4-6');
  assert.deepEqual(msg.content, [{ type: 'text', text: 'word1 word2 word3' }]);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.stop_sequence, null);
  const input = (Math.ceil('Say hi'.length / 4) + 3) + Math.ceil('You are terse.'.length / 4);
  assert.equal(msg.usage.input_tokens, input);
  assert.equal(msg.usage.output_tokens, 3);
  assert.match(msg._request_id, /^req_011C/, 'the SDK read the request-id header');

  const over = await client.messages.create(msgBody({ mock: { content: 'Hello!', usage: { input_tokens: 100, output_tokens: 7, cache_read_input_tokens: 80, cache_creation_input_tokens: 20 } } }));
  assert.deepEqual(over.content, [{ type: 'text', text: 'Hello!' }]);
  assert.deepEqual(over.usage, {
    input_tokens: 100, cache_creation_input_tokens: 20, cache_read_input_tokens: 80,
    cache_creation: { ephemeral_5m_input_tokens: 20, ephemeral_1h_input_tokens: 0 }, output_tokens: 7, service_tier: 'standard',
  });

  // raw: key order, headers
  const res = await post(mock.origin + '/v1/messages', msgBody(), ANTHROPIC_HEADERS);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  assert.match(res.headers.get('request-id'), /^req_011C[1-9A-HJ-NP-Za-km-z]{20}$/);
  for (const k of ['requests', 'tokens']) {
    assert.match(res.headers.get(`anthropic-ratelimit-${k}-limit`), /^\d+$/);
    assert.match(res.headers.get(`anthropic-ratelimit-${k}-remaining`), /^\d+$/);
    assert.match(res.headers.get(`anthropic-ratelimit-${k}-reset`), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  }
  const j = await res.json();
  assert.deepEqual(Object.keys(j), ['id', 'type', 'role', 'model', 'content', 'stop_reason', 'stop_sequence', 'usage']);
  assert.deepEqual(Object.keys(j.usage), ['input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens', 'cache_creation', 'output_tokens', 'service_tier']);
});

test('anthropic SDK: messages.stream().finalText(), and the exact event order', T, async () => {
  const client = claude();
  const s = client.messages.stream(msgBody({ mock: { content: 'Streaming works fine.', chunks: 4, usage: { output_tokens: 9 } } }));
  assert.equal(await s.finalText(), 'Streaming works fine.');
  const final = await s.finalMessage();
  assert.equal(final.usage.output_tokens, 9);
  assert.equal(final.stop_reason, 'end_turn');

  const res = await post(mock.origin + '/v1/messages', msgBody({ stream: true, mock: { chunks: 2 } }), ANTHROPIC_HEADERS);
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.ok(res.headers.get('request-id'));
  const ev = frames(await res.text());
  assert.deepEqual(ev.map((e) => e.event), ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  for (const e of ev) assert.equal(JSON.parse(e.data).type, e.event);
  const start = JSON.parse(ev[0].data).message;
  assert.deepEqual(Object.keys(start), ['id', 'type', 'role', 'model', 'content', 'stop_reason', 'stop_sequence', 'usage']);
  assert.equal(start.usage.output_tokens, 1);
  assert.equal(ev[2].data, '{"type":"ping"}');
  assert.equal(ev[3].data, '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"word1"}}');
  assert.equal(ev[5].data, '{"type":"content_block_stop","index":0}');
  assert.deepEqual(JSON.parse(ev[6].data), { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: start.usage.input_tokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 2 } });
  assert.equal(ev[7].data, '{"type":"message_stop"}');
  const minimal = frames(await (await post(mock.origin + '/v1/messages', msgBody({ stream: true, mock: { delta_usage: 'output_only' } }), ANTHROPIC_HEADERS)).text());
  assert.deepEqual(JSON.parse(minimal.at(-2).data).usage, { output_tokens: 3 });
});

test('anthropic SDK: messages.countTokens and models', T, async () => {
  const client = claude();
  const n = await client.messages.countTokens({ model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'Say hi' }] });
  assert.deepEqual(n, { input_tokens: Math.ceil('Say hi'.length / 4) + 3 });
  assert.equal(mock.requests.at(-1).endpoint, 'messages.count_tokens');
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  assert.ok(models.length > 0 && models.every((m) => m.type === 'model' && typeof m.display_name === 'string'));
});

test('anthropic SDK: error classes for 401, 404, 429, 500, 529 and Anthropic error bodies', T, async () => {
  const hasRequestId = (e) => typeof e.requestID === 'string' && e.requestID.startsWith('req_') && e.error.request_id === e.requestID;
  // no credentials at all
  await assert.rejects(claude({ defaultHeaders: { Authorization: null } }).messages.create(msgBody()),
    (e) => e instanceof Anthropic.AuthenticationError && e.status === 401 && e.type === 'authentication_error'
      && e.apiMessage === 'x-api-key header is required' && hasRequestId(e));
  assert.equal(mock.requests.at(-1).auth.scheme, 'none');
  // an invalid key (only listed keys are valid)
  await assert.rejects(claude({ apiKey: 'sk-ant-wrong' }).messages.create(msgBody({ mock: { api_keys: ['sk-ant-good'] } })),
    (e) => e instanceof Anthropic.AuthenticationError && e.apiMessage === 'invalid x-api-key');
  for (const [status, cls, type, message] of [
    [404, Anthropic.NotFoundError, 'not_found_error', 'Mock error 404'],
    [429, Anthropic.RateLimitError, 'rate_limit_error', 'Mock error 429'],
    [500, Anthropic.InternalServerError, 'api_error', 'Internal server error'],
    [529, Anthropic.InternalServerError, 'overloaded_error', 'Overloaded'],
    [400, Anthropic.BadRequestError, 'invalid_request_error', 'Mock error 400'],
  ]) {
    await assert.rejects(claude().messages.create(msgBody({ mock: { status } })),
      (e) => e instanceof cls && e.status === status && e.type === type && e.apiMessage === message && hasRequestId(e), `status ${status}`);
  }
  // 529 is the SDK's OverloadedError (a subclass of InternalServerError)
  await assert.rejects(claude().messages.create(msgBody({ mock: { status: 529 } })), (e) => e.constructor.name === 'OverloadedError');
  // raw bodies
  const r429 = await post(mock.origin + '/v1/messages', msgBody({ mock: { status: 429 } }), ANTHROPIC_HEADERS);
  assert.equal(r429.headers.get('retry-after'), '1');
  const r529 = await post(mock.origin + '/v1/messages', msgBody({ mock: { status: 529 } }), ANTHROPIC_HEADERS);
  const rid = r529.headers.get('request-id');
  assert.equal(await r529.text(), `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"${rid}"}`);
  // missing x-api-key, missing / bad anthropic-version, validation
  const noKey = await post(mock.origin + '/v1/messages', msgBody(), { 'anthropic-version': '2023-06-01' });
  assert.equal(noKey.status, 401);
  assert.ok(noKey.headers.get('request-id'));
  assert.deepEqual((await noKey.json()).error, { type: 'authentication_error', message: 'x-api-key header is required' });
  const noVersion = await post(mock.origin + '/v1/messages', msgBody(), { 'x-api-key': 'k' });
  assert.equal(noVersion.status, 400);
  assert.deepEqual((await noVersion.json()).error, { type: 'invalid_request_error', message: 'anthropic-version: header is required' });
  const badVersion = await post(mock.origin + '/v1/messages', msgBody(), { 'x-api-key': 'k', 'anthropic-version': 'latest' });
  assert.deepEqual((await badVersion.json()).error.message, 'anthropic-version: "latest" is not a valid version');
  const noMax = await post(mock.origin + '/v1/messages', { model: 'c', messages: [] }, ANTHROPIC_HEADERS);
  assert.equal(noMax.status, 400);
  assert.equal((await noMax.json()).error.message, 'max_tokens: Field required');
});

test('anthropic SDK: an error event mid-stream makes the stream throw', T, async () => {
  const s = claude().messages.stream(msgBody({ mock: { chunks: 5, stream_error_after: 2 } }));
  const deltas = [];
  s.on('text', (t) => deltas.push(t));
  await assert.rejects(s.finalText(), (e) => e instanceof Anthropic.APIError && e.type === 'overloaded_error' && e.message.includes('Overloaded'));
  assert.deepEqual(deltas, ['word1', ' word2']);
  const res = await post(mock.origin + '/v1/messages', msgBody({ stream: true, mock: { stream_error_after: 1 } }), ANTHROPIC_HEADERS);
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.ok(text.endsWith('event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'));
  assert.deepEqual(frames(text).map((e) => e.event), ['message_start', 'content_block_start', 'ping', 'content_block_delta', 'error']);
});

// ---- routing, auth, instances ------------------------------------------------------------------

test('path-suffix routing under provider prefixes, and auth scheme recording', T, async () => {
  const open = await startMockUpstream({ requireAuth: false });
  try {
    mock.reset();
    for (const prefix of ['/v1', '/openai/v1', '/api/v3', '/inference/v1', '/openai/deployments/my-deploy']) {
      const r = await post(`${mock.origin}${prefix}/chat/completions?api-version=2024-10-21`, chatBody());
      assert.equal(r.status, 200, prefix);
      assert.equal((await r.json()).object, 'chat.completion');
    }
    assert.deepEqual(mock.requests.map((r) => r.path), ['/v1', '/openai/v1', '/api/v3', '/inference/v1', '/openai/deployments/my-deploy']
      .map((p) => `${p}/chat/completions?api-version=2024-10-21`));
    // every endpoint under one prefix
    const base = `${mock.origin}/some/prefix`;
    const H = { authorization: 'Bearer sk-test', 'content-type': 'application/json' };
    assert.equal((await (await post(`${base}/completions`, { model: 'm', prompt: 'p' }, H)).json()).object, 'text_completion');
    assert.equal((await (await post(`${base}/embeddings`, { model: 'm', input: 'p' }, H)).json()).object, 'list');
    assert.equal((await (await fetch(`${base}/models`, { headers: H })).json()).object, 'list');
    assert.equal((await (await fetch(`${base}/models/acme/gpt-x`, { headers: H })).json()).id, 'acme/gpt-x');
    const resp = await (await post(`${base}/responses`, { model: 'm', input: 'p' }, H)).json();
    assert.equal((await (await fetch(`${base}/responses/${resp.id}`, { headers: H })).json()).id, resp.id);
    assert.equal((await (await fetch(`${base}/responses/${resp.id}/input_items`, { headers: H })).json()).object, 'list');
    assert.equal((await post(`${base}/responses/${resp.id}/cancel`, '', H)).status, 400);
    assert.equal((await (await post(`${base}/messages`, msgBody(), ANTHROPIC_HEADERS)).json()).type, 'message');
    assert.equal(typeof (await (await post(`${base}/messages/count_tokens`, msgBody(), ANTHROPIC_HEADERS)).json()).input_tokens, 'number');
    assert.equal((await post(`${base}/nothing`, {}, H)).status, 404);
    // Azure: model comes from the deployment when the body has none; api-key auth
    const az = await post(`${mock.origin}/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21`,
      { messages: [{ role: 'user', content: 'x' }] }, { 'api-key': 'azure-key', 'content-type': 'application/json' });
    assert.equal((await az.json()).model, 'my-deploy');
    assert.deepEqual(mock.requests.at(-1).auth, { scheme: 'api-key', value: 'azure-key' });
    assert.equal(mock.requests.at(-1).endpoint, 'chat.completions');

    // auth recording: bearer, x-api-key, none
    assert.deepEqual(mock.requests.find((r) => r.path === '/some/prefix/completions').auth, { scheme: 'bearer', value: 'sk-test' });
    assert.deepEqual(mock.requests.find((r) => r.path === '/some/prefix/messages').auth, { scheme: 'x-api-key', value: 'sk-ant-test' });
    const sdkAnthropic = claude({ defaultHeaders: { Authorization: null, 'X-Api-Key': 'sk-ant-header' } });
    await sdkAnthropic.messages.create(msgBody());
    assert.deepEqual(mock.requests.at(-1).auth, { scheme: 'x-api-key', value: 'sk-ant-header' });
    await claude().messages.create(msgBody()); // the current SDK sends Authorization: Bearer
    assert.deepEqual(mock.requests.at(-1).auth, { scheme: 'bearer', value: 'sk-ant-test' });
    await assert.rejects(claude().messages.create(msgBody({ mock: { anthropic_auth: 'x-api-key' } })), Anthropic.AuthenticationError);

    // no credentials: 401 by default, accepted with requireAuth:false (instance) or require_auth:false (option)
    const noAuth = (m, extra = {}) => post(`${m.origin}/v1/chat/completions`, chatBody(extra), { 'content-type': 'application/json' });
    assert.equal((await noAuth(mock)).status, 401);
    assert.equal((await noAuth(mock, { mock: { require_auth: false } })).status, 200);
    assert.deepEqual(mock.requests.at(-1).auth, { scheme: 'none', value: null });
    assert.equal((await noAuth(open)).status, 200);
    assert.deepEqual(open.requests.at(-1).auth, { scheme: 'none', value: null });
    const ollama = new OpenAI({ apiKey: 'unused', baseURL: open.url, maxRetries: 0, defaultHeaders: { Authorization: null } });
    assert.equal((await ollama.chat.completions.create(chatBody())).object, 'chat.completion');
    assert.equal(open.requests.at(-1).auth.scheme, 'none');
    // invalid OpenAI key when keys are listed
    await assert.rejects(openai({ apiKey: 'sk-wrong-key-123' }).chat.completions.create(chatBody({ mock: { api_keys: ['sk-right'] } })),
      (e) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key');
  } finally {
    await open.close();
  }
});

test('per-instance defaults: setDefault, constructor defaults, precedence', T, async () => {
  const a = await startMockUpstream({ defaults: { status: 500 } });
  const b = await startMockUpstream();
  try {
    const ca = openai({ baseURL: a.url });
    const cb = openai({ baseURL: b.url });
    await assert.rejects(ca.chat.completions.create(chatBody()), (e) => e.status === 500);
    assert.equal((await cb.chat.completions.create(chatBody())).object, 'chat.completion');
    // a request's own options win over the defaults (body "mock", then x-mock)
    assert.equal((await ca.chat.completions.create(chatBody({ mock: { status: 0 } }))).object, 'chat.completion');
    assert.equal((await fetch(a.url + '/models', { headers: { authorization: 'Bearer k', 'x-mock': '{"status":0}' } })).status, 200);
    // setDefault replaces the defaults; they survive reset(); setDefault() clears them
    b.setDefault({ status: 529 });
    await assert.rejects(claude({ baseURL: b.origin }).messages.create(msgBody()), (e) => e.status === 529 && e.type === 'overloaded_error');
    b.setDefault({ first_byte_delay_ms: 200, content: 'slow' });
    b.reset();
    assert.deepEqual(b.defaults, { first_byte_delay_ms: 200, content: 'slow' });
    const t0 = Date.now();
    const slow = await cb.chat.completions.create(chatBody());
    assert.ok(Date.now() - t0 >= 190, 'the head was delayed');
    assert.equal(slow.choices[0].message.content, 'slow');
    assert.equal(b.requests.length, 1);
    b.setDefault();
    assert.deepEqual(b.defaults, {});
    assert.equal((await cb.chat.completions.create(chatBody())).choices[0].message.content, 'word1 word2 word3');
    a.setDefault(null);
    assert.equal((await ca.chat.completions.create(chatBody())).object, 'chat.completion');
    // reset() forgets the stored responses too
    const r = await cb.responses.create({ model: 'm', input: 'x' });
    assert.ok(b.responses.has(r.id));
    b.reset();
    assert.equal(b.responses.size, 0);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('stream options apply to the new formats: chunk_interval_ms, reset_after_chunks, raw_chunks', T, async () => {
  // reset after 3 frames of an Anthropic stream: message_start, content_block_start, ping
  const res = await post(mock.origin + '/v1/messages', msgBody({ stream: true, mock: { reset_after_chunks: 3 } }), ANTHROPIC_HEADERS);
  assert.equal(res.status, 200);
  let text = '';
  await assert.rejects((async () => { for await (const b of res.body) text += Buffer.from(b).toString(); })());
  assert.deepEqual(frames(text).map((e) => e.event), ['message_start', 'content_block_start', 'ping']);
  // raw_chunks on /messages keep the Anthropic headers
  const raw = await post(mock.origin + '/v1/messages', msgBody({ stream: true, mock: { raw_chunks: ['event: ping\n', 'data: {"type":"ping"}\n\n'] } }), ANTHROPIC_HEADERS);
  assert.ok(raw.headers.get('request-id'));
  assert.equal(await raw.text(), 'event: ping\ndata: {"type":"ping"}\n\n');
  // chunk_interval_ms paces a Responses stream
  const t0 = Date.now();
  await (await post(mock.url + '/responses', { model: 'm', input: 'x', stream: true, mock: { chunks: 1, chunk_interval_ms: 20 } })).text();
  assert.ok(Date.now() - t0 >= 8 * 20 - 5, 'nine frames, eight intervals');
});

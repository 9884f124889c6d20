// Usage, cost and the request log, from the byte stream: OpenAI streams (the usage chunk asked for
// and dropped again when the client did not ask), bodies, embeddings, the Responses API, Anthropic
// streams and bodies; prices and cost (unknown price -> null); cut streams and in-stream errors;
// /admin/logs, /admin/stats, key usage; /metrics parsed as Prometheus text; a full log queue drops
// rows without failing requests; the SDKs see what the provider sent.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import parsePrometheus from 'parse-prometheus-text-format';
import { startStack, sleep } from './lib/harness.mjs';
import { adminOk, eventually } from './lib/proxy_helpers.mjs';
import { rawRequest, buildRequest } from './lib/http.mjs';
import { sql } from './lib/admin_helpers.mjs';

let stack, key, keyId, priced, unpriced, claude;
const uniq = (p) => `${p}-${crypto.randomBytes(4).toString('hex')}`;

before(async () => {
  stack = await startStack();
  const p = await adminOk(stack, 'POST', '/admin/providers', { name: uniq('oa'), kind: 'openai', api_key: 'sk-up', base_url: stack.mock.url }, 201);
  const a = await adminOk(stack, 'POST', '/admin/providers', { name: uniq('an'), kind: 'anthropic', api_key: 'sk-ant', base_url: stack.mock.url }, 201);
  priced = (await adminOk(stack, 'POST', '/admin/models', { name: uniq('priced'), provider_id: p.id, pricing: { input: 2.5, output: 10, cached_input: 1.25 } }, 201)).name;
  unpriced = (await adminOk(stack, 'POST', '/admin/models', { name: uniq('free'), provider_id: p.id }, 201)).name;
  claude = (await adminOk(stack, 'POST', '/admin/models', { name: uniq('claude'), provider_id: a.id, provider_model_name: 'claude-test', pricing: { input: 3, output: 15 } }, 201)).name;
  const k = await adminOk(stack, 'POST', '/admin/keys', { name: 'usage' }, 201);
  key = k.key;
  keyId = k.id;
});
after(async () => { await stack?.stop(); });

const cost = (prompt, cached, completion, price) => ((prompt - cached) * price.input + cached * (price.cached_input ?? price.input) + completion * price.output) / 1e6;

async function raw(path, body, headers = {}) {
  const id = `u-${crypto.randomBytes(6).toString('hex')}`;
  const res = await rawRequest(stack.gateway.port, buildRequest('POST', path, {
    headers: { authorization: `Bearer ${key}`, 'x-request-id': id, ...headers }, body,
  }), { timeoutMs: 15_000 });
  return { ...res, id };
}

// The request-log row of one request (waits for the batch writer: under 1 s).
async function logRow(id) {
  return eventually(async () => {
    const r = await stack.admin('GET', `/admin/logs?key_id=${keyId}&per_page=500`);
    return r.json?.data?.find((x) => x.request_id === id);
  }, { timeoutMs: 2000, intervalMs: 50, what: `log row of ${id}` });
}

const sse = (o) => `data: ${JSON.stringify(o)}\n\n`;
const chunk = (extra) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', ...extra });
const CONTENT = [
  sse(chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' } }], usage: null })),
  sse(chunk({ choices: [{ index: 0, delta: { content: 'Hello' } }], usage: null })),
  sse(chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null })),
];
const USAGE_CHUNK = sse(chunk({ choices: [], usage: { prompt_tokens: 1000, completion_tokens: 100, total_tokens: 1100, prompt_tokens_details: { cached_tokens: 400 } } }));
const DONE = 'data: [DONE]\n\n';
const PRICE = { input: 2.5, output: 10, cached_input: 1.25 };

describe('OpenAI streams', () => {
  for (const [what, streamOptions, asked] of [['absent', undefined, false], ['include_usage: false', { include_usage: false }, false], ['include_usage: true', { include_usage: true }, true]]) {
    test(`stream_options ${what}: the upstream is asked for usage; the client gets the stream ${asked ? 'unchanged' : 'minus exactly the usage chunk'}; usage and cost logged`, async () => {
      stack.mock.reset();
      const r = await raw('/v1/chat/completions', {
        model: priced, stream: true, messages: [{ role: 'user', content: 'hi' }],
        ...(streamOptions ? { stream_options: streamOptions } : {}),
        mock: { raw_chunks: [...CONTENT, USAGE_CHUNK, DONE] },
      });
      assert.equal(r.statusCode, 200, r.text);
      assert.equal(r.body.toString(), [...CONTENT, ...(asked ? [USAGE_CHUNK] : []), DONE].join(''));
      const up = stack.mock.requests.at(-1);
      assert.deepEqual(up.json.stream_options, { include_usage: true }, `upstream body: ${up.body}`);
      assert.equal((up.body.match(/"stream_options"/g) ?? []).length, 1, 'never a duplicate key');
      const row = await logRow(r.id);
      assert.equal(row.prompt_tokens, 1000);
      assert.equal(row.completion_tokens, 100);
      assert.equal(row.cached_tokens, 400);
      assert.equal(row.total_tokens, 1100);
      assert.ok(Math.abs(row.cost - cost(1000, 400, 100, PRICE)) < 1e-12, `cost ${row.cost}`);
      assert.equal(row.is_stream, true);
      assert.equal(row.status, 200);
      assert.equal(row.model, priced);
      assert.ok(row.ttft_ms > 0 && row.ttft_ms <= row.latency_ms);
    });
  }

  test('a generated stream (mock): the client sees no usage chunk, the log has the mock\'s usage', async () => {
    const r = await raw('/v1/chat/completions', { model: unpriced, stream: true, messages: [{ role: 'user', content: 'hello there' }], mock: { chunks: 4 } });
    assert.equal(r.statusCode, 200);
    const events = r.text.split('\n\n').filter(Boolean).map((e) => e.slice(6));
    assert.equal(events.at(-1), '[DONE]');
    for (const e of events.slice(0, -1)) assert.ok(JSON.parse(e).choices.length > 0, `a chunk without choices reached the client: ${e}`);
    const row = await logRow(r.id);
    assert.equal(row.completion_tokens, 4);
    assert.ok(row.prompt_tokens > 0);
    assert.equal(row.cost, null, 'no prices: cost unknown, not 0');
  });

  test('a stream cut by the upstream is logged with the usage seen so far and its error', async () => {
    const r = await raw('/v1/chat/completions', { model: priced, stream: true, messages: [], mock: { raw_chunks: [...CONTENT, USAGE_CHUNK, DONE], reset_after_chunks: 2 } });
    assert.equal(r.statusCode, 200);
    assert.ok(!r.complete, 'the client must see the cut');
    const row = await logRow(r.id);
    assert.equal(row.error_code, 'upstream_cut');
    assert.equal(row.total_tokens, 0);
  });
});

describe('bodies and other APIs', () => {
  test('non-stream chat: usage from the body, cost from the model\'s prices', async () => {
    const r = await raw('/v1/chat/completions', { model: priced, messages: [{ role: 'user', content: 'hi' }], mock: { usage: { prompt_tokens: 200, completion_tokens: 50, cached_tokens: 100 } } });
    assert.equal(r.statusCode, 200, r.text);
    const row = await logRow(r.id);
    assert.deepEqual([row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.total_tokens], [200, 50, 100, 250]);
    assert.ok(Math.abs(row.cost - cost(200, 100, 50, PRICE)) < 1e-12);
    assert.equal(row.is_stream, false);
  });

  test('embeddings: prompt tokens', async () => {
    const r = await raw('/v1/embeddings', { model: priced, input: 'some text to embed' });
    assert.equal(r.statusCode, 200, r.text);
    const row = await logRow(r.id);
    assert.ok(row.prompt_tokens > 0);
    assert.equal(row.completion_tokens, 0);
    assert.equal(row.total_tokens, row.prompt_tokens);
  });

  test('Responses API, stream and not: input/output tokens as prompt/completion, cached recorded', async () => {
    for (const stream of [false, true]) {
      const r = await raw('/v1/responses', { model: unpriced, input: 'hi', stream, mock: { usage: { input_tokens: 30, output_tokens: 7, cached_tokens: 10 } } });
      assert.equal(r.statusCode, 200, r.text);
      const row = await logRow(r.id);
      assert.deepEqual([row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.total_tokens], [30, 7, 10, 37], `stream=${stream}`);
    }
  });

  test('Anthropic, stream and not: message_start input plus the final cumulative output (not added twice)', async () => {
    for (const stream of [false, true]) {
      const r = await raw('/v1/messages', { model: claude, max_tokens: 100, stream, messages: [{ role: 'user', content: 'hi' }],
        mock: { chunks: 5, usage: { input_tokens: 40, output_tokens: 5, cache_read_input_tokens: 20, cache_creation_input_tokens: 8 } } },
      { 'anthropic-version': '2023-06-01' });
      assert.equal(r.statusCode, 200, r.text);
      const row = await logRow(r.id);
      assert.deepEqual([row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.cache_creation_tokens], [40, 5, 20, 8], `stream=${stream}`);
      assert.equal(row.total_tokens, 40 + 5 + 20 + 8);
      assert.ok(Math.abs(row.cost - (40 * 3 + 20 * 3 + 8 * 3 + 5 * 15) / 1e6) < 1e-12, `cost ${row.cost}`);
      // The stdout request line carries the same cost, not rounded to 3 decimals (it once read 0.000).
      const line = await stack.gateway.waitForLog((o) => o.request_id === r.id && o.msg === 'request');
      assert.ok(Math.abs(line.cost - row.cost) < 1e-12, `log line cost ${line.cost} vs row ${row.cost}`);
    }
  });

  test('an Anthropic event: error after the 200 is logged as an error', async () => {
    const r = await raw('/v1/messages', { model: claude, max_tokens: 100, stream: true, messages: [], mock: { chunks: 5, stream_error_after: 2 } },
      { 'anthropic-version': '2023-06-01' });
    assert.equal(r.statusCode, 200);
    assert.match(r.text, /event: error/);
    const row = await logRow(r.id);
    assert.equal(row.error_code, 'overloaded_error');
  });
});

describe('admin: logs, stats, key usage', () => {
  let k2, k2id, before_;
  before(async () => {
    const k = await adminOk(stack, 'POST', '/admin/keys', { name: 'second' }, 201);
    k2 = k.key;
    k2id = k.id;
    before_ = new Date(Date.now() - 1000).toISOString();
    const send = (model, extra = {}) => fetch(`${stack.gateway.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${k2}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [], mock: { usage: { prompt_tokens: 10, completion_tokens: 5 }, ...extra } }),
    }).then((r) => r.text());
    for (let i = 0; i < 5; i++) await send(priced);
    for (let i = 0; i < 2; i++) await send(unpriced);
    await send(priced, { status: 400 });
    await eventually(async () => (await stack.admin('GET', `/admin/logs?key_id=${k2id}`)).json?.total === 8, { timeoutMs: 2000, intervalMs: 50, what: '8 rows' });
  });

  test('GET /admin/logs: newest first, paging, filters', async () => {
    const page1 = await adminOk(stack, 'GET', `/admin/logs?key_id=${k2id}&per_page=3&page=1`);
    assert.equal(page1.total, 8);
    assert.equal(page1.page, 1);
    assert.equal(page1.per_page, 3);
    assert.equal(page1.data.length, 3);
    const page3 = await adminOk(stack, 'GET', `/admin/logs?key_id=${k2id}&per_page=3&page=3`);
    assert.equal(page3.data.length, 2);
    const all = [...page1.data, ...(await adminOk(stack, 'GET', `/admin/logs?key_id=${k2id}&per_page=3&page=2`)).data, ...page3.data];
    assert.equal(new Set(all.map((r) => r.id)).size, 8);
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].created_at >= all[i].created_at, 'newest first');
    assert.equal((await adminOk(stack, 'GET', `/admin/logs?key_id=${k2id}&model=${unpriced}`)).total, 2);
    assert.equal((await adminOk(stack, 'GET', `/admin/logs?key_id=${k2id}&status=4xx`)).total, 1);
    assert.equal((await adminOk(stack, 'GET', `/admin/logs?key_id=${k2id}&status=200`)).total, 7);
    assert.equal((await adminOk(stack, 'GET', `/admin/logs?key_id=${k2id}&from=${encodeURIComponent(before_)}`)).total, 8);
    assert.equal((await adminOk(stack, 'GET', `/admin/logs?key_id=${k2id}&to=${encodeURIComponent(before_)}`)).total, 0);
    for (const q of ['per_page=0', 'per_page=501', 'page=0', 'status=abc', 'from=yesterday', 'key_id=nope', 'bogus=1'])
      assert.equal((await stack.admin('GET', `/admin/logs?${q}`)).status, 400, q);
    const row = page1.data[0];
    for (const f of ['request_id', 'upstream_request_id', 'key_id', 'model', 'provider', 'upstream_model', 'status', 'error_code', 'prompt_tokens',
      'completion_tokens', 'cached_tokens', 'total_tokens', 'cost', 'latency_ms', 'ttft_ms', 'is_stream', 'attempts', 'client_addr', 'created_at'])
      assert.ok(f in row, `log rows have ${f}`);
    assert.ok(!JSON.stringify(all).includes('"messages"'), 'bodies are never logged');
  });

  test('GET /admin/stats: grouped by key, model, provider and day', async () => {
    const byModel = await adminOk(stack, 'GET', `/admin/stats?group_by=model&from=${encodeURIComponent(before_)}`);
    const m = byModel.data.find((r) => r.group === priced);
    assert.ok(m.requests >= 6);
    for (const f of ['requests', 'errors', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'cost', 'p50_latency_ms', 'p95_latency_ms', 'p50_ttft_ms', 'p95_ttft_ms'])
      assert.ok(f in m, f);
    assert.ok(m.errors >= 1);
    assert.ok(m.p95_latency_ms >= m.p50_latency_ms);
    const byKey = await adminOk(stack, 'GET', `/admin/stats?group_by=key&from=${encodeURIComponent(before_)}`);
    const mine = byKey.data.find((r) => r.group === k2id);
    assert.equal(mine.requests, 8);
    assert.equal(mine.errors, 1);
    assert.equal(mine.prompt_tokens, 70);
    assert.ok(Math.abs(mine.cost - 5 * (10 * 2.5 + 5 * 10) / 1e6) < 1e-12, `cost of the priced requests only: ${mine.cost}`);
    assert.ok((await adminOk(stack, 'GET', '/admin/stats?group_by=provider')).data.length >= 1);
    const byDay = await adminOk(stack, 'GET', '/admin/stats?group_by=day');
    assert.match(byDay.data[0].group, /^\d{4}-\d{2}-\d{2}$/);
    assert.equal((await stack.admin('GET', '/admin/stats?group_by=color')).status, 400);
  });

  test('GET /admin/keys/{id} includes usage today, this month and in total', async () => {
    const k = await adminOk(stack, 'GET', `/admin/keys/${k2id}`);
    for (const period of ['today', 'month', 'total']) {
      assert.equal(k.usage[period].requests, 8, period);
      assert.equal(k.usage[period].total_tokens, 8 * 15 - 15 /* the 400 had no usage */, period);
    }
  });
});

describe('metrics', () => {
  test('/metrics parses as Prometheus text, histograms are consistent, counters move, labels stay bounded', async () => {
    const scrape = async () => (await fetch(`${stack.gateway.url}/metrics`)).text();
    const text1 = await scrape();
    const families = parsePrometheus(text1);
    const byName = Object.fromEntries(families.map((f) => [f.name, f]));
    for (const name of ['llmgw_requests_total', 'llmgw_request_duration_seconds', 'llmgw_time_to_first_byte_seconds', 'llmgw_tokens_total',
      'llmgw_cost_usd_total', 'llmgw_upstream_errors_total', 'llmgw_failovers_total', 'llmgw_auth_lookups_total', 'llmgw_active_connections',
      'llmgw_active_upstream_requests', 'llmgw_redis_errors_total', 'llmgw_redis_command_duration_seconds', 'llmgw_db_errors_total',
      'llmgw_db_call_duration_seconds', 'llmgw_log_queue_depth', 'llmgw_log_rows_dropped_total', 'llmgw_log_rows_written_total'])
      assert.ok(byName[name], `missing ${name}`);
    // Every sample line is well formed, and each family is declared before its samples.
    const declared = new Set();
    for (const line of text1.split('\n').filter(Boolean)) {
      if (line.startsWith('# TYPE ')) { declared.add(line.split(' ')[2]); continue; }
      if (line.startsWith('#')) continue;
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? -?[0-9.eE+-]+$|^.* (\+Inf|NaN)$/, line);
      const name = line.split(/[{ ]/)[0].replace(/_(bucket|sum|count)$/, '');
      assert.ok(declared.has(name) || declared.has(line.split(/[{ ]/)[0]), `${line} before its # TYPE`);
    }
    for (const m of byName.llmgw_request_duration_seconds.metrics) {
      const counts = Object.entries(m.buckets).sort(([a], [b]) => Number(a) - Number(b)).map(([, v]) => Number(v));
      for (let i = 1; i < counts.length; i++) assert.ok(counts[i] >= counts[i - 1], 'buckets are cumulative');
    }
    // (The npm parser drops _count of labelled histograms: check +Inf == _count on the text.)
    for (const line of text1.split('\n').filter((l) => l.startsWith('llmgw_request_duration_seconds_bucket{') && l.includes('le="+Inf"'))) {
      const labels = line.slice(line.indexOf('{'), line.lastIndexOf('}') + 1).replace(/,?le="\+Inf"/, '');
      const countLine = text1.split('\n').find((l) => l.startsWith(`llmgw_request_duration_seconds_count${labels === '{}' ? '' : labels} `));
      assert.ok(countLine, `no _count for ${labels}`);
      assert.equal(Number(line.split(' ').at(-1)), Number(countLine.split(' ').at(-1)), `+Inf bucket != count for ${labels}`);
    }
    for (const f of families) for (const m of f.metrics) for (const k of Object.keys(m.labels ?? {}))
      assert.ok(['api', 'model', 'provider', 'status', 'type', 'reason', 'source', 'le', 'overflow'].includes(k), `unexpected label ${k} in ${f.name}`);
    assert.ok(!text1.includes(keyId), 'no key ids in labels');

    const chats = (text) => parsePrometheus(text).find((f) => f.name === 'llmgw_requests_total').metrics
      .filter((m) => m.labels.api === 'chat' && m.labels.model === priced && m.labels.status === '2xx').reduce((n, m) => n + Number(m.value), 0);
    const before = chats(text1);
    await raw('/v1/chat/completions', { model: priced, messages: [] });
    assert.equal(chats(await scrape()), before + 1);
  });

  test('METRICS_TOKEN protects /metrics', async () => {
    await stack.gateway.restart({ METRICS_TOKEN: 'scrape-secret-123' });
    assert.equal((await fetch(`${stack.gateway.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${stack.gateway.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${stack.gateway.url}/metrics`, { headers: { authorization: 'Bearer scrape-secret-123' } })).status, 200);
    await stack.gateway.restart({});
  });
});

describe('bounded request log', () => {
  test('a full log queue drops rows (counted) and never fails a request', async () => {
    await stack.gateway.restart({ LOG_QUEUE_MAX: '2' });
    await raw('/v1/chat/completions', { model: priced, messages: [] });  // warm caches before PostgreSQL stops
    const pgPid = stack.pids().pg;
    const children = sql(stack, 'SELECT 1') && (await import('node:child_process')).execSync(`pgrep -P ${pgPid} || true`).toString().split('\n').filter(Boolean).map(Number);
    const all = [pgPid, ...children];
    for (const p of all) process.kill(p, 'SIGSTOP');
    try {
      const results = [];
      for (let i = 0; i < 20; i++) results.push((await raw('/v1/chat/completions', { model: priced, messages: [] })).statusCode);
      assert.deepEqual(new Set(results), new Set([200]), `statuses ${results}`);
      const m = parsePrometheus(await (await fetch(`${stack.gateway.url}/metrics`)).text());
      const dropped = Number(m.find((f) => f.name === 'llmgw_log_rows_dropped_total').metrics[0].value);
      assert.ok(dropped >= 15, `dropped ${dropped}`);
    } finally {
      for (const p of all) { try { process.kill(p, 'SIGCONT'); } catch { /* gone */ } }
    }
    await stack.gateway.restart({});
  });

  test('daily partitions exist from yesterday to a week ahead', async () => {
    await sleep(200);
    const parts = sql(stack, "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'request_logs'").split(',');
    const day = (offset) => new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10).replaceAll('-', '');
    for (const o of [-1, 0, 1]) assert.ok(parts.includes(`request_logs_${day(o)}`), `no partition for ${day(o)}: ${parts}`);
    // A week ahead of the day the writer last maintained them (hourly): right after midnight UTC
    // that may still be yesterday.
    assert.ok(parts.includes(`request_logs_${day(7)}`) || parts.includes(`request_logs_${day(6)}`), `no partition a week ahead: ${parts}`);
  });
});

describe('SDKs see what the provider sent', () => {
  test('openai SDK: stream_options absent / true / false: the same chunks as from the mock directly, usage only when asked', async () => {
    const viaGateway = new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: key, maxRetries: 0 });
    const direct = new OpenAI({ baseURL: stack.mock.url, apiKey: 'sk-up', maxRetries: 0 });
    for (const streamOptions of [undefined, { include_usage: true }, { include_usage: false }]) {
      const collect = async (client, model) => {
        const chunks = [];
        const stream = await client.chat.completions.create({ model, stream: true, messages: [{ role: 'user', content: 'hi' }], ...(streamOptions ? { stream_options: streamOptions } : {}), mock: { chunks: 3 } });
        for await (const c of stream) chunks.push({ content: c.choices[0]?.delta?.content ?? null, finish: c.choices[0]?.finish_reason ?? null, usage: c.usage ?? null, choices: c.choices.length });
        return chunks;
      };
      const g = await collect(viaGateway, priced);
      const d = await collect(direct, priced);
      assert.deepEqual(g, d, `stream_options ${JSON.stringify(streamOptions)}`);
      if (streamOptions?.include_usage) assert.ok(g.at(-1).usage, 'usage chunk when asked');
      else assert.ok(g.every((c) => c.choices > 0), 'no empty-choices chunk when not asked');
    }
  });

  test('anthropic SDK: the same events as from the mock directly', async () => {
    const collect = async (client, model) => {
      const events = [];
      const stream = client.messages.stream({ model, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
      for await (const e of stream) events.push(e.type === 'message_start' ? { type: e.type, usage: e.message.usage } : e);
      return events;
    };
    const g = await collect(new Anthropic({ baseURL: stack.gateway.url, apiKey: key, maxRetries: 0 }), claude);
    const d = await collect(new Anthropic({ baseURL: stack.mock.origin, apiKey: 'sk-ant', maxRetries: 0 }), 'claude-test');
    assert.deepEqual(g, d);
  });
});

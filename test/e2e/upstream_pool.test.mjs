// The upstream connection pool under many long streams to one provider (gateway/upstream_pool.*):
// (a) with the defaults, 600 concurrent streams to one provider all get 200 and their whole stream
//     (the old per-host cap of 512 refused the 513th at once with 503);
// (b) at UPSTREAM_MAX_CONNS_PER_HOST, requests wait in a FIFO queue for a free connection and all
//     succeed, in their order of arrival, never more than the cap at once at the provider;
// (c) a request that found no free connection within UPSTREAM_QUEUE_TIMEOUT gets 503 `overloaded`
//     with Retry-After, right after that timeout;
// (d) a queued request whose client leaves gives its place up at once (logged 499, never sent
//     upstream), the next waiter gets the slot, and afterwards the whole cap is usable again;
// (e) a shutdown's forced close ends the waits of queued requests: the gateway exits promptly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { startStack, sleep } from './lib/harness.mjs';
import { connect } from './lib/http.mjs';
import { provision, newId } from './lib/proxy_helpers.mjs';
import { restartGateway, smallAsanQuarantine, v1Post, jsonSince } from './lib/hardening_helpers.mjs';

let stack, key, model;
before(async () => {
  stack = await startStack({ env: smallAsanQuarantine() });
  const p = await provision(stack, { model: 'pool-model' });
  key = p.key;
  model = p.model.name;
});
after(async () => { await stack?.stop(); });

// Restart the gateway with `env` on top of the base environment, once the mock holds no
// connection of the previous gateway process, and start the mock's peak counters afresh. The pool,
// and so its per-host cap, is per worker: the tests of the cap run one worker.
async function gatewayWith(env = {}) {
  await stack.gateway.stop();
  const deadline = Date.now() + 5000;
  while (stack.mock.stats.connections > 0 && Date.now() < deadline) await sleep(20);
  assert.equal(stack.mock.stats.connections, 0, 'the previous gateway left connections at the mock');
  await restartGateway(stack, env);
  stack.mock.reset();
}

// One chat completion over its own TCP connection. mock: the mock's options for this request.
// -> {id, status, headers, text, ms (from send to the end of the body), error}
function chat(mock, { stream = false, id = newId('pool'), timeoutMs = 30_000 } = {}) {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], stream, mock });
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request({
      host: '127.0.0.1', port: stack.gateway.port, method: 'POST', path: '/v1/chat/completions', agent: false,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': id },
    }, (res) => {
      const bufs = [];
      res.on('data', (b) => bufs.push(b));
      res.on('end', () => resolve({ id, status: res.statusCode, headers: res.headers, text: Buffer.concat(bufs).toString('utf8'), ms: performance.now() - t0 }));
      res.on('error', (e) => resolve({ id, status: res.statusCode, headers: res.headers, text: Buffer.concat(bufs).toString('utf8'), ms: performance.now() - t0, error: e.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ id, status: 0, headers: {}, text: '', ms: performance.now() - t0, error: e.message }));
    req.end(body);
  });
}

// The text of an OpenAI chat stream, and whether it ended with [DONE].
function streamText(text) {
  let content = '';
  let done = false;
  for (const frame of text.split('\n\n')) {
    const data = frame.startsWith('data: ') ? frame.slice(6) : null;
    if (data === null) continue;
    if (data === '[DONE]') { done = true; continue; }
    const o = JSON.parse(data);
    content += o.choices?.[0]?.delta?.content ?? '';
  }
  return { content, done };
}

const summary = (results) => {
  const by = {};
  for (const r of results) by[r.status] = (by[r.status] ?? 0) + 1;
  return JSON.stringify(by);
};
const uniqueErrors = (results) => [...new Set(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.error ?? ''} ${r.text.slice(0, 200)}`))].slice(0, 5);
const arrivalOf = (id) => stack.mock.requests.find((r) => r.headers['x-request-id'] === id);

test('(a) defaults: 600 concurrent streams to one provider -> 600 x 200 with complete streams, all open at once', async () => {
  await gatewayWith();
  const N = 600;
  const CHUNKS = 8;
  // 8 pieces + role, finish and usage chunks + [DONE], 400 ms apart: each stream lasts ~4.4 s.
  const mock = { chunks: CHUNKS, chunk_interval_ms: 400 };
  const results = await Promise.all(Array.from({ length: N }, () => chat(mock, { stream: true, timeoutMs: 60_000 })));
  const failed = results.filter((r) => r.status !== 200);
  assert.equal(failed.length, 0, `statuses ${summary(results)}; e.g. ${JSON.stringify(uniqueErrors(results))}`);
  const expected = Array.from({ length: CHUNKS }, (_, i) => `${i ? ' ' : ''}word${i + 1}`).join('');
  for (const r of results) {
    const s = streamText(r.text);
    assert.ok(!r.error, `${r.id}: ${r.error}`);
    assert.equal(s.content, expected, `${r.id}: incomplete stream: ${r.text.slice(-300)}`);
    assert.ok(s.done, `${r.id}: no [DONE]`);
  }
  const { peakInFlight, peakConnections } = stack.mock.stats;
  assert.equal(peakInFlight, N, `the mock saw at most ${peakInFlight} streams at once; the test needs all ${N} open together`);
  assert.ok(peakConnections >= N, `peak connections at the mock: ${peakConnections}`);
  const overloaded = jsonSince(stack, 0).filter((l) => l.msg === 'request' && l.status === 503);
  assert.equal(overloaded.length, 0, 'no request was refused');
});

test('(b) cap 4, queue 5 s: 12 concurrent 300 ms requests all succeed (queued), never more than 4 at the provider', async () => {
  await gatewayWith({ WORKERS: '1', UPSTREAM_MAX_CONNS_PER_HOST: '4', UPSTREAM_QUEUE_TIMEOUT: '5' });
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: 12 }, () => chat({ first_byte_delay_ms: 300 })));
  const elapsed = performance.now() - t0;
  assert.deepEqual(results.map((r) => r.status), results.map(() => 200), `statuses ${summary(results)}; e.g. ${JSON.stringify(uniqueErrors(results))}`);
  for (const r of results) assert.equal(r.headers['content-type'], 'application/json', r.text);
  const { peakInFlight, peakConnections } = stack.mock.stats;
  assert.equal(peakInFlight, 4, `requests at once at the mock: ${peakInFlight} (the cap is 4 and should be used fully)`);
  assert.ok(peakConnections <= 4, `connections at once at the mock: ${peakConnections} (cap 4)`);
  assert.equal(stack.mock.requests.length, 12);
  // Three waves of 300 ms: the queue really waited.
  assert.ok(elapsed >= 850, `12 requests over 4 connections took only ${Math.round(elapsed)} ms`);
  assert.ok(elapsed < 5000, `took ${Math.round(elapsed)} ms`);
});

test('(b) FIFO: at the cap, waiters reach the provider in the order they arrived', async () => {
  await gatewayWith({ WORKERS: '1', UPSTREAM_MAX_CONNS_PER_HOST: '1', UPSTREAM_QUEUE_TIMEOUT: '5' });
  const holder = chat({ first_byte_delay_ms: 600 });
  await stack.mock.waitFor(() => stack.mock.stats.inFlight === 1, 5000);
  const ids = [];
  const waiters = [];
  for (let i = 0; i < 6; i++) {
    ids.push(newId(`fifo${i}`));
    waiters.push(chat({ first_byte_delay_ms: 50 }, { id: ids.at(-1) }));
    await sleep(40);
  }
  const results = await Promise.all([holder, ...waiters]);
  assert.deepEqual(results.map((r) => r.status), results.map(() => 200), `statuses ${summary(results)}`);
  const order = stack.mock.requests.map((r) => r.headers['x-request-id']).filter((id) => ids.includes(id));
  assert.deepEqual(order, ids, 'the provider saw the waiters out of their arrival order');
  assert.equal(stack.mock.stats.peakInFlight, 1);
});

test('(c) cap 2, queue 0.3 s, 2 s requests: the others get 503 overloaded with Retry-After after ~0.3 s', async () => {
  await gatewayWith({ WORKERS: '1', UPSTREAM_MAX_CONNS_PER_HOST: '2', UPSTREAM_QUEUE_TIMEOUT: '0.3' });
  const N = 6;
  const results = await Promise.all(Array.from({ length: N }, () => chat({ first_byte_delay_ms: 2000 })));
  const ok = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 503);
  assert.equal(ok.length, 2, `statuses ${summary(results)}`);
  assert.equal(refused.length, N - 2, `statuses ${summary(results)}`);
  for (const r of refused) {
    const body = JSON.parse(r.text);
    assert.equal(body.error?.code, 'overloaded', r.text);
    assert.equal(r.headers['retry-after'], '1', JSON.stringify(r.headers));
    assert.ok(r.ms >= 250 && r.ms < 1500, `refused after ${Math.round(r.ms)} ms (queue timeout 300 ms)`);
  }
  for (const r of ok) assert.ok(r.ms >= 1900, `a 2 s request answered after ${Math.round(r.ms)} ms`);
  assert.equal(stack.mock.requests.length, 2, 'only the two admitted requests reached the provider');
  assert.ok(stack.mock.stats.peakInFlight <= 2);
  const metrics = await (await fetch(`${stack.gateway.url}/metrics`)).text();
  const value = (name) => Number(metrics.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1]);
  assert.equal(value('llmgw_upstream_queue_waits_total'), N - 2, metrics);
  assert.equal(value('llmgw_upstream_queue_timeouts_total'), N - 2, metrics);
  assert.equal(value('llmgw_upstream_queued_requests'), 0, metrics);
  assert.ok(value('llmgw_upstream_idle_connections') <= 2, metrics);
});

test('(d) a queued request whose client leaves frees its place: the next waiter proceeds, the cap stays fully usable', async () => {
  await gatewayWith({ WORKERS: '1', UPSTREAM_MAX_CONNS_PER_HOST: '2', UPSTREAM_QUEUE_TIMEOUT: '10' });
  const mark = stack.gateway.logs().length;
  // Two holders: one for 2 s, one for 5 s.
  const short = chat({ first_byte_delay_ms: 2000 }, { id: newId('short') });
  const long = chat({ first_byte_delay_ms: 5000 }, { id: newId('long') });
  await stack.mock.waitFor(() => stack.mock.stats.inFlight === 2, 5000);
  const heldAt = performance.now();

  // B queues first, then C; B's client leaves while both wait.
  const leaver = newId('leaver');
  const conn = await connect(stack.gateway.port);
  await conn.write(v1Post('/v1/chat/completions', { key, body: { model, messages: [{ role: 'user', content: 'hi' }] }, headers: { 'X-Request-Id': leaver } }));
  await sleep(150);
  const next = chat({}, { id: newId('next') });
  await sleep(150);
  conn.destroy();
  const goneAt = performance.now();
  const logged = await stack.gateway.waitForLog((l) => l.msg === 'request' && l.request_id === leaver, 3000);
  assert.equal(logged.status, 499, JSON.stringify(logged));
  // Logged at once, not when a slot freed (2 s) nor at the queue timeout (10 s).
  assert.ok(performance.now() - goneAt < 1000, `the departed client's wait ended ${Math.round(performance.now() - goneAt)} ms after it left`);

  // C gets the slot of the 2 s holder, long before the 5 s one ends.
  const c = await next;
  assert.equal(c.status, 200, c.text);
  const cArrival = arrivalOf(c.id);
  assert.ok(cArrival, 'the next waiter never reached the provider');
  const s = await short;
  assert.equal(s.status, 200, s.text);
  assert.ok(performance.now() - heldAt < 4000, `the next waiter waited ${Math.round(performance.now() - heldAt)} ms: it did not get the freed slot`);
  assert.ok(!arrivalOf(leaver), 'the request of the departed client was sent upstream');
  const l = await long;
  assert.equal(l.status, 200, l.text);

  // No slot leaked: both connections are usable at once again, twice over.
  stack.mock.resetPeaks();
  const t0 = performance.now();
  const again = await Promise.all(Array.from({ length: 4 }, () => chat({ first_byte_delay_ms: 500 })));
  const elapsed = performance.now() - t0;
  assert.deepEqual(again.map((r) => r.status), [200, 200, 200, 200], `statuses ${summary(again)}`);
  assert.equal(stack.mock.stats.peakInFlight, 2, 'both slots of the cap should be in use at once');
  assert.ok(elapsed < 1800, `4 requests of 500 ms over 2 slots took ${Math.round(elapsed)} ms`);
  const errors = jsonSince(stack, mark).filter((x) => x.msg === 'request' && x.status >= 500);
  assert.equal(errors.length, 0, JSON.stringify(errors));
});

test('(e) shutdown: the forced close ends queued waits, the gateway exits well before the queue timeout', async () => {
  await gatewayWith({ WORKERS: '1', UPSTREAM_MAX_CONNS_PER_HOST: '1', UPSTREAM_QUEUE_TIMEOUT: '60', SHUTDOWN_GRACE_SECONDS: '0.5' });
  const holder = chat({ first_byte_delay_ms: 6000 });
  await stack.mock.waitFor(() => stack.mock.stats.inFlight === 1, 5000);
  const queued = [chat({}), chat({})];
  await sleep(300);
  assert.equal(stack.mock.requests.length, 1, 'the cap is 1: the others wait');
  const t0 = performance.now();
  const exit = await stack.gateway.stop('SIGTERM', { timeoutMs: 30_000 });
  const took = performance.now() - t0;
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
  assert.ok(took < 5000, `the gateway took ${Math.round(took)} ms to stop (grace 0.5 s)`);
  const answers = await Promise.all([holder, ...queued]);
  for (const a of answers) assert.notEqual(a.status, 200);
  assert.equal(stack.mock.requests.length, 1, 'a queued request reached the provider after the forced close');
  await restartGateway(stack);
});

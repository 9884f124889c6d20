// The production shape from deploy/: two gateway replicas sharing one PostgreSQL and one Redis,
// behind one real nginx running the repo's template (deploy/nginx/gateway.conf.template) with
// both replicas in its upstream. Keys made through nginx work at once on both, revocations reach
// both within a second, a replica that gets SIGTERM drains its streams byte-exact while new
// requests go to the other one, and streams reach the client as the upstream produces them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sleep } from './lib/harness.mjs';
import { connect, buildRequest, rawRequest } from './lib/http.mjs';
import { startExtraGateway, redisCli } from './lib/admin_helpers.mjs';
import { startNginx } from './lib/nginx.mjs';

let stack, replicaA, nginx, adminKey;
const addr = (port) => `127.0.0.1:${port}`;
const chatBody = (extra = {}) => ({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }], ...extra });

before(async () => {
  // Replica B is the stack's own gateway; replica A is the one that gets SIGTERM at the end.
  stack = await startStack({ env: { SHUTDOWN_GRACE_SECONDS: '20' } });
  adminKey = stack.gateway.adminKey;
  replicaA = await startExtraGateway(stack, { env: { SHUTDOWN_GRACE_SECONDS: '20' } });
  process.on('exit', () => replicaA?.kill('SIGKILL'));
  nginx = await startNginx(stack.dir, [addr(replicaA.port), addr(stack.gateway.port)]);
  const provider = await viaNginx('POST', '/admin/providers', {
    name: 'mock', kind: 'openai_compatible', base_url: stack.mock.url, api_key: 'sk-upstream-0000',
  });
  assert.equal(provider.status, 201, provider.text);
  const model = await viaNginx('POST', '/admin/models', {
    name: 'demo-chat', provider_id: provider.json.id, provider_model_name: 'mock-model',
  });
  assert.equal(model.status, 201, model.text);
});

after(async () => {
  await replicaA?.stop();
  await nginx?.stop();
  await stack?.stop();
});

// An admin call through nginx.
async function viaNginx(method, path, body) {
  const res = await fetch(`http://${addr(nginx.port)}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, text, json };
}

// One chat completion over a fresh connection to `port` (nginx or a replica).
function chat(port, key, body = chatBody(), timeoutMs = 10_000) {
  return rawRequest(port, buildRequest('POST', '/v1/chat/completions', {
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }), { timeoutMs });
}

const accessLogSince = (n) => nginx.accessLog().slice(n);
// nginx writes a request's log line after the response went out: wait until `count` lines since
// `start` match `pred` (at most 5 s), then return them.
async function logged(start, pred, count) {
  for (let i = 0; ; i++) {
    const hits = accessLogSince(start).filter(pred);
    if (hits.length >= count || i >= 250) return hits;
    await sleep(20);
  }
}
// The replica that finally answered a request ($upstream_addr lists every one tried).
const answeredBy = (entry) => entry.upstream_addr.split(', ').at(-1);

test('a key created through nginx works at once on whichever replica answers; revoked, it fails on both within 1 s', async (t) => {
  const logStart = nginx.accessLog().length;
  const created = await viaNginx('POST', '/admin/keys', { name: 'through-nginx' });
  assert.equal(created.status, 201, created.text);
  const { key, id } = created.json;

  // At once: no pause between the create and the first use, on either replica.
  const [onA, onB] = await Promise.all([chat(replicaA.port, key), chat(stack.gateway.port, key)]);
  assert.equal(onA.statusCode, 200, onA.text);
  assert.equal(onB.statusCode, 200, onB.text);
  const through = [];
  for (let i = 0; i < 8; i++) through.push(await chat(nginx.port, key));
  for (const r of through) assert.equal(r.statusCode, 200, r.text);
  const chats = await logged(logStart, (e) => e.uri === '/v1/chat/completions', 8);
  assert.equal(chats.length, 8);
  assert.deepEqual(new Set(chats.map(answeredBy)), new Set([addr(replicaA.port), addr(stack.gateway.port)]),
    `nginx must have used both replicas: ${JSON.stringify(chats)}`);

  // Revoke through nginx (one replica handles it); both must refuse the key within 1 s.
  const t0 = Date.now();
  const del = await viaNginx('DELETE', `/admin/keys/${id}`);
  assert.ok(del.status === 200 || del.status === 204, `DELETE -> ${del.status} ${del.text}`);
  const refusedAt = {};
  while (Object.keys(refusedAt).length < 2 && Date.now() - t0 < 3000) {
    for (const [name, port] of [['A', replicaA.port], ['B', stack.gateway.port]]) {
      if (refusedAt[name]) continue;
      const r = await chat(port, key);
      if (r.statusCode === 401) refusedAt[name] = Date.now() - t0;
      else assert.equal(r.statusCode, 200, r.text);
    }
    await sleep(10);
  }
  assert.ok(refusedAt.A !== undefined && refusedAt.B !== undefined, `not revoked everywhere: ${JSON.stringify(refusedAt)}`);
  assert.ok(refusedAt.A <= 1000 && refusedAt.B <= 1000, `revocation took ${JSON.stringify(refusedAt)} ms`);
  t.diagnostic(`revoked key refused after (ms): ${JSON.stringify(refusedAt)}`);
  for (let i = 0; i < 4; i++) {
    const r = await chat(nginx.port, key);
    assert.equal(r.statusCode, 401, r.text);
    assert.equal(JSON.parse(r.text).error.code, 'invalid_api_key');
  }
});

test('a stream whose upstream sends a chunk every 200 ms reaches the client through nginx as it is produced', async () => {
  const { json: { key } } = await viaNginx('POST', '/admin/keys', { name: 'incremental' });
  const parts = Array.from({ length: 8 }, (_, i) => `data: {"part":${i}}\n\n`).concat('data: [DONE]\n\n');
  // Two requests: one lands on each replica.
  for (let round = 0; round < 2; round++) {
    const c = await connect(nginx.port);
    await c.write(buildRequest('POST', '/v1/chat/completions', {
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(chatBody({ stream: true, stream_options: { include_usage: true },
        mock: { raw_chunks: parts, chunk_interval_ms: 200 } })),
    }));
    const r = await c.waitForResponse({ timeoutMs: 10_000 });
    c.destroy();
    assert.equal(r.statusCode, 200, r.text);
    assert.equal(r.text, parts.join(''), 'byte-identical');
    // When each part arrived: the time of the read that carried its first byte.
    const raw = c.received.toString('latin1');
    const times = parts.slice(0, 8).map((p) => {
      const at = raw.indexOf(p);
      assert.ok(at >= 0, `part ${p} not found`);
      return r.arrivals.find((a) => a.offset + a.length > at).t;
    });
    for (let i = 1; i < times.length; i++) {
      const gap = times[i] - times[i - 1];
      assert.ok(gap >= 120 && gap <= 600, `part ${i} came ${gap.toFixed(0)} ms after part ${i - 1} (times ${times.map((t) => t.toFixed(0))})`);
    }
    assert.ok(times.at(-1) - times[0] >= 7 * 160, `spread ${times.at(-1) - times[0]} ms`);
  }
});

test('SIGTERM to one replica while 50 streams run through nginx: all complete byte-exact, its readiness turns 503, it exits 0, new requests go to the other replica', async (t) => {
  const { json: { key } } = await viaNginx('POST', '/admin/keys', { name: 'drain' });
  const logStart = nginx.accessLog().length;
  const N = 50;
  const streamParts = (i) => Array.from({ length: 12 }, (_, k) => `data: {"stream":${i},"part":${k},"pad":"${'é'.repeat(k)}"}\n\n`)
    .concat('data: [DONE]\n\n');
  const conns = await Promise.all(Array.from({ length: N }, async (_, i) => {
    const c = await connect(nginx.port);
    await c.write(buildRequest('POST', '/v1/chat/completions', {
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(chatBody({ stream: true, stream_options: { include_usage: true },
        mock: { raw_chunks: streamParts(i), chunk_interval_ms: 250 } })),
    }));
    return c;
  }));
  // Every stream is under way (its first part arrived) before the signal.
  await Promise.all(conns.map((c, i) => c.waitFor(`{"stream":${i},"part":0,`, 10_000)));

  // Readiness of the replica during its drain. A probe that is being answered when SIGTERM
  // arrives must say 503 (draining). To have one in flight at that moment, Redis is paused for
  // 400 ms (CLIENT PAUSE): the probe's Redis PING waits while the signal is delivered.
  assert.equal(redisCli(stack, 'CLIENT', 'PAUSE', '400', 'ALL'), 'OK');
  const probe = connect(replicaA.port).then(async (c) => {
    await c.write(buildRequest('GET', '/health/ready'));
    return c.waitForResponse({ timeoutMs: 5000 });
  });
  await sleep(150);
  const tSignal = Date.now();
  replicaA.proc.kill('SIGTERM');
  const ready = await probe;
  assert.equal(ready.statusCode, 503, ready.text);
  assert.equal(JSON.parse(ready.text).draining, true, ready.text);
  // New connections to it are refused from now on (it stopped listening): probes fail, nginx
  // takes the other replica.
  await assert.rejects(connect(replicaA.port, '127.0.0.1', { timeoutMs: 1000 }), /ECONNREFUSED/);

  // While it drains: new requests through nginx, all answered by the other replica, no errors.
  const newLogStart = nginx.accessLog().length;
  const fresh = [];
  for (let i = 0; i < 20; i++) {
    const r = await chat(nginx.port, key);
    fresh.push(r);
    assert.equal(r.statusCode, 200, `new request ${i} during the drain: ${r.statusCode} ${r.text}`);
    assert.equal(JSON.parse(r.text).object, 'chat.completion');
  }
  assert.equal(replicaA.proc.exitCode, null, 'the replica must still be draining while the new requests ran');

  // All 50 streams complete, byte-exact.
  const results = await Promise.all(conns.map((c) => c.waitForResponse({ timeoutMs: 15_000 }).finally(() => c.destroy())));
  results.forEach((r, i) => {
    assert.equal(r.statusCode, 200, `stream ${i}: ${r.text}`);
    assert.ok(r.complete, `stream ${i} must end with its terminating chunk`);
    assert.equal(r.body.toString('utf8'), streamParts(i).join(''), `stream ${i} byte-exact`);
  });

  const exit = await Promise.race([replicaA.exited, sleep(15_000).then(() => 'still running')]);
  assert.deepEqual(exit, { code: 0, signal: null }, `replica A: ${JSON.stringify(exit)}`);
  assert.ok(Date.now() - tSignal < 15_000);

  // Where everything went: the 50 streams were spread over both replicas (some were drained
  // by A), the new requests were all answered by B.
  const streams = await logged(logStart, (e) => e.uri === '/v1/chat/completions' && e.request_time >= 2, N);
  assert.equal(streams.length, N, JSON.stringify(accessLogSince(logStart)));
  const onA = streams.filter((e) => answeredBy(e) === addr(replicaA.port)).length;
  assert.ok(onA >= 10 && onA <= 40, `replica A carried ${onA} of the ${N} streams`);
  t.diagnostic(`replica A drained ${onA} of the ${N} streams`);
  const during = await logged(newLogStart, (e) => e.uri === '/v1/chat/completions' && e.request_time < 1, fresh.length);
  assert.equal(during.length, fresh.length, JSON.stringify(during));
  for (const e of during) {
    assert.equal(answeredBy(e), addr(stack.gateway.port), JSON.stringify(e));
    assert.equal(e.status, 200);
  }

  // And afterwards: B alone serves everything.
  for (let i = 0; i < 5; i++) assert.equal((await chat(nginx.port, key)).statusCode, 200);
});

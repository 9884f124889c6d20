// Graceful shutdown: SIGTERM stops accepting, lets in-flight streams finish within
// SHUTDOWN_GRACE_SECONDS, then exits 0; streams still running at the deadline are cut.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sleep } from './lib/harness.mjs';
import { connect, buildRequest } from './lib/http.mjs';
import { provision } from './lib/proxy_helpers.mjs';

let stack, key;
before(async () => {
  stack = await startStack();
  ({ key } = await provision(stack));
});
after(async () => { await stack?.stop(); });

async function startStream(chunks, intervalMs) {
  const c = await connect(stack.gateway.port);
  await c.write(buildRequest('POST', '/v1/chat/completions', {
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [], mock: { chunks, chunk_interval_ms: intervalMs } }),
  }));
  await c.waitFor('data: ');  // the stream is under way
  return c;
}

async function refused(port) {
  try { (await connect(port, '127.0.0.1', { timeoutMs: 1000 })).destroy(); return false; } catch { return true; }
}

test('SIGTERM: no new connections, the in-flight stream completes, exit 0', async () => {
  await stack.gateway.restart({ SHUTDOWN_GRACE_SECONDS: '10' });
  const port = stack.gateway.port;
  const c = await startStream(6, 250);
  const t0 = Date.now();
  const exited = stack.gateway.stop('SIGTERM');
  await sleep(200);
  assert.ok(await refused(port), 'the listener must be closed after SIGTERM');
  const r = await c.waitForResponse({ timeoutMs: 10_000 });
  c.destroy();
  assert.equal(r.statusCode, 200);
  assert.ok(r.complete, 'the stream must end with its terminating chunk');
  assert.match(r.text, /data: \[DONE\]\n\n$/);
  const e = await exited;
  assert.equal(e.code, 0, `exit ${JSON.stringify(e)}`);
  assert.ok(Date.now() - t0 < 8000);
});

test('SIGTERM: a stream longer than the grace period is cut and the process still exits 0', async () => {
  await stack.gateway.restart({ SHUTDOWN_GRACE_SECONDS: '1' });
  const c = await startStream(40, 250);  // ~10 s of stream
  const t0 = Date.now();
  const e = await stack.gateway.stop('SIGTERM');
  const took = Date.now() - t0;
  assert.equal(e.code, 0, `exit ${JSON.stringify(e)}`);
  assert.ok(took < 3000, `exit took ${took} ms with a 1 s grace period`);
  await c.waitForClose(3000);
  const r = await c.waitForResponse().catch(() => null);
  assert.ok(r && !r.complete, 'a cut stream must not look complete');
  // The upstream learns that nobody is listening any more.
  await stack.mock.waitFor(() => stack.mock.events.some((ev) => ev.type === 'client_closed'), 3000);
});

test('an idle keep-alive connection is closed at once on SIGTERM', async () => {
  await stack.gateway.restart({ SHUTDOWN_GRACE_SECONDS: '10' });
  const c = await connect(stack.gateway.port);
  await c.write(buildRequest('GET', '/health/live'));
  await c.waitForResponse();
  const t0 = Date.now();
  const e = await stack.gateway.stop('SIGTERM');
  assert.equal(e.code, 0);
  assert.ok(Date.now() - t0 < 2000, 'an idle connection must not hold the drain');
  await c.waitForClose(2000);
  c.destroy();
  await stack.gateway.start();
});

test('SIGTERM right after the "listening" line is never lost: exit 0 within a few seconds, 8 times', async () => {
  await stack.gateway.stop();
  for (let i = 0; i < 8; i++) {
    await stack.gateway.start({});  // start() resolves on the "listening" line
    const t0 = Date.now();
    const e = await stack.gateway.stop('SIGTERM', { timeoutMs: 8000 });
    assert.equal(e.code, 0, `run ${i}: exit ${JSON.stringify(e)} after ${Date.now() - t0} ms (SIGKILLed when the signal was lost)`);
    assert.ok(Date.now() - t0 < 5000, `run ${i}: took ${Date.now() - t0} ms`);
  }
  await stack.gateway.start({});
});

test('SHUTDOWN_DELAY_SECONDS: after SIGTERM, still serving with /health/ready 503 and Connection: close; then the listener closes and the process exits 0', async () => {
  await stack.gateway.restart({ SHUTDOWN_GRACE_SECONDS: '5', SHUTDOWN_DELAY_SECONDS: '1.5' });
  const port = stack.gateway.port;
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await fetch(`${base}/health/ready`)).status, 200);
  const t0 = Date.now();
  const exited = stack.gateway.stop('SIGTERM');
  await sleep(200);
  // A new connection is still accepted: the probe says 503, a request is still answered.
  const ready = await fetch(`${base}/health/ready`);
  assert.equal(ready.status, 503);
  assert.equal((await ready.json()).draining, true);
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.equal(res.headers.get('connection'), 'close');
  const e = await exited;
  assert.equal(e.code, 0, `exit ${JSON.stringify(e)}`);
  const took = Date.now() - t0;
  assert.ok(took >= 1400 && took < 5000, `exited after ${took} ms with a 1.5 s delay`);
  assert.ok(await refused(port), 'the listener must be closed after the delay');
});

// Hardening: database deadlines and shutdown. Defects covered:
// L1 DB_TIMEOUT is only a server-side statement_timeout: with PostgreSQL frozen (SIGSTOP) an admin
//    request hangs far longer than DB_TIMEOUT; after a PostgreSQL restart the first DB_POOL_SIZE
//    requests fail with 503 on the pool's dead connections.
// L2 shutdown while a request is stuck on PostgreSQL, on Redis, or in an upstream TLS handshake:
//    a heap-use-after-free at exit (seen when LLMGW_BIN is the ASan+UBSan build, as ctest's second
//    pass runs it) or no clean exit 0 within ~10 s.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sleep } from './lib/harness.mjs';
import { connect, buildRequest } from './lib/http.mjs';
import { provision, createKey } from './lib/proxy_helpers.mjs';
import { startScriptedUpstream } from './lib/raw_upstream.mjs';
import { restartGateway, startGateway, SETTLE_MS, exchange, expectError, describe as show, freezePostgres, signalAll, providerFor, v1Post } from './lib/hardening_helpers.mjs';

let stack, key;
before(async () => {
  stack = await startStack();
  await sleep(SETTLE_MS);
  ({ key } = await provision(stack));
});
after(async () => { await stack?.stop(); });

const adminGet = (path) => buildRequest('GET', path, { headers: { Authorization: `Bearer ${stack.gateway.adminKey}` } });

describe('L1 database deadlines', () => {
  test('DB_TIMEOUT=1 with PostgreSQL frozen (SIGSTOP) -> GET /admin/keys answers 503 within ~2 s', async () => {
    await restartGateway(stack, { DB_TIMEOUT: '1' });
    const ok = await exchange(stack.gateway.port, adminGet('/admin/keys'));
    assert.equal(ok.res?.statusCode, 200, show(ok));
    let x;
    const pg = freezePostgres(stack);
    try {
      x = await exchange(stack.gateway.port, adminGet('/admin/keys'), { timeoutMs: 4000 });
    } finally {
      pg.resume();
    }
    assert.ok(x.res, `no answer within 4 s with PostgreSQL frozen and DB_TIMEOUT=1: ${show(x)}`);
    expectError(x, 503);
    assert.ok(x.tResponse < 2000, `503 after ${Math.round(x.tResponse)} ms`);
  });

  test('after a PostgreSQL restart the first admin request succeeds', async () => {
    await restartGateway(stack);
    // Use every pool connection first (DB_POOL_SIZE defaults to 4).
    const warm = await Promise.all(Array.from({ length: 8 }, () => exchange(stack.gateway.port, adminGet('/admin/keys'))));
    assert.deepEqual(warm.map((w) => w.res?.statusCode), warm.map(() => 200));
    await stack.pg.stop();
    await stack.pg.start();
    const x = await exchange(stack.gateway.port, adminGet('/admin/keys'), { timeoutMs: 5000 });
    assert.equal(x.res?.statusCode, 200, `first request after the PostgreSQL restart: ${show(x)}`);
  });
});

describe('L2 SIGTERM while a request is stuck (SHUTDOWN_GRACE_SECONDS=1)', () => {
  // Restart with env, make a request get stuck (stick() -> {resume}), SIGTERM; the gateway must exit 0
  // within 10 s with no sanitizer report. Stopped processes are resumed whatever happens.
  async function sigtermWhileStuck(env, stick) {
    await restartGateway(stack, { SHUTDOWN_GRACE_SECONDS: '1', ...env });
    let resume = () => {};
    let conn;
    let e;
    let took;
    try {
      ({ resume, conn } = await stick());
      const t0 = Date.now();
      e = await stack.gateway.stop('SIGTERM', { timeoutMs: 12_000 });
      took = Date.now() - t0;
    } finally {
      resume();
      conn?.destroy();
    }
    const stderr = stack.gateway.stderr();
    await startGateway(stack);
    const report = stderr.split('\n').filter((l) => /AddressSanitizer|runtime error|ERROR: |SUMMARY: /.test(l)).slice(0, 8).join('\n');
    assert.ok(!/AddressSanitizer|runtime error/.test(stderr), `sanitizer report at shutdown:\n${report}`);
    assert.equal(e.code, 0, `exit ${JSON.stringify(e)} after ${took} ms`);
    assert.ok(took < 10_000, `exit took ${took} ms`);
  }

  async function stuckRequest(bytes) {
    const conn = await connect(stack.gateway.port);
    await conn.write(bytes);
    return conn;
  }

  test('(a) an admin request waiting on a frozen PostgreSQL (DB_TIMEOUT=30)', async () => {
    await sigtermWhileStuck({ DB_TIMEOUT: '30' }, async () => {
      const warm = await exchange(stack.gateway.port, adminGet('/admin/keys'));
      assert.equal(warm.res?.statusCode, 200, show(warm));
      const { resume } = freezePostgres(stack);
      try {
        const conn = await stuckRequest(adminGet('/admin/keys'));
        await sleep(300);
        assert.ok(!conn.received.length, `the admin request was answered although PostgreSQL is frozen: ${conn.received.toString('latin1').slice(0, 300)}`);
        return { resume, conn };
      } catch (err) { resume(); throw err; }
    });
  });

  test('(b) a /v1 request waiting on a frozen Redis (REDIS_TIMEOUT=30, a key not seen yet)', async () => {
    await sigtermWhileStuck({ REDIS_TIMEOUT: '30' }, async () => {
      const fresh = (await createKey(stack, 'unseen')).key;
      const pid = stack.pids().redis;
      signalAll([pid], 'SIGSTOP');
      const resume = () => signalAll([pid], 'SIGCONT');
      try {
        const conn = await stuckRequest(v1Post('/v1/chat/completions', { key: fresh, body: { model: 'gpt-test', messages: [] } }));
        await sleep(300);
        assert.ok(!conn.received.length, `the request was answered although Redis is frozen: ${conn.received.toString('latin1').slice(0, 300)}`);
        return { resume, conn };
      } catch (err) { resume(); throw err; }
    });
  });

  test('(c) a /v1 request in an upstream TLS handshake that never completes (UPSTREAM_CONNECT_TIMEOUT=30)', async () => {
    const silent = await startScriptedUpstream(null, { parse: false });  // accepts, reads, never answers
    try {
      const { model } = await providerFor(stack, `https://127.0.0.1:${silent.port}/v1`);
      await sigtermWhileStuck({ UPSTREAM_CONNECT_TIMEOUT: '30' }, async () => {
        const conn = await stuckRequest(v1Post('/v1/chat/completions', { key, body: { model, messages: [] } }));
        await silent.waitFor(() => silent.connections.some((c) => c.bytesReceived > 0), 3000);  // the ClientHello is out
        await sleep(100);
        return { resume: () => {}, conn };
      });
    } finally {
      await silent.close();
    }
  });
});

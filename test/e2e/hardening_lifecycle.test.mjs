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
import { restartGateway, startGateway, SETTLE_MS, exchange, expectError, show, freezePostgres, signalAll, providerFor, v1Post } from './lib/hardening_helpers.mjs';

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
  // Restart with env, make requests get stuck (stick() -> [{resume, conn}]), SIGTERM; the gateway must
  // exit 0 within 10 s with no sanitizer report. Stopped processes are resumed whatever happens.
  async function sigtermWhileStuck(env, stick) {
    await restartGateway(stack, { SHUTDOWN_GRACE_SECONDS: '1', ...env });
    const stuck = [];
    let e;
    let took;
    try {
      await stick(stuck);
      const t0 = Date.now();
      e = await stack.gateway.stop('SIGTERM', { timeoutMs: 12_000 });
      took = Date.now() - t0;
    } finally {
      for (const s of stuck) { s.resume?.(); s.conn?.destroy(); }
    }
    const stderr = stack.gateway.stderr();
    await startGateway(stack);
    const report = stderr.split('\n').filter((l) => /AddressSanitizer|runtime error|ERROR: |SUMMARY: /.test(l)).slice(0, 8).join('\n');
    assert.ok(!/AddressSanitizer|runtime error/.test(stderr), `sanitizer report at shutdown:\n${report}`);
    assert.equal(e.code, 0, `exit ${JSON.stringify(e)} after ${took} ms`);
    assert.ok(took < 10_000, `exit took ${took} ms`);
  }

  async function stuckRequest(stuck, bytes, what) {
    const conn = await connect(stack.gateway.port);
    stuck.push({ conn });
    await conn.write(bytes);
    await sleep(300);
    assert.ok(!conn.received.length, `${what}: answered although it should be stuck: ${conn.received.toString('latin1').slice(0, 300)}`);
  }

  // (a) an admin request on a frozen PostgreSQL.
  async function stuckOnPostgres(stuck) {
    const warm = await exchange(stack.gateway.port, adminGet('/admin/keys'));
    assert.equal(warm.res?.statusCode, 200, show(warm));
    stuck.push(freezePostgres(stack));
    await stuckRequest(stuck, adminGet('/admin/keys'), 'admin request with PostgreSQL frozen');
  }
  // (b) a /v1 request whose key the gateway has not seen, on a frozen Redis.
  async function stuckOnRedis(stuck, freshKey) {
    const pid = stack.pids().redis;
    signalAll([pid], 'SIGSTOP');
    stuck.push({ resume: () => signalAll([pid], 'SIGCONT') });
    await stuckRequest(stuck, v1Post('/v1/chat/completions', { key: freshKey, body: { model: 'gpt-test', messages: [] } }), '/v1 request with Redis frozen');
  }
  // (c) a /v1 request whose upstream (https) accepts and never answers the ClientHello.
  async function stuckInTls(stuck, silent, model) {
    const conn = await connect(stack.gateway.port);
    stuck.push({ conn });
    await conn.write(v1Post('/v1/chat/completions', { key, body: { model, messages: [] } }));
    await silent.waitFor(() => silent.connections.some((c) => c.bytesReceived > 0), 3000);  // the ClientHello is out
    await sleep(100);
  }
  async function silentTlsUpstream() {
    const silent = await startScriptedUpstream(null, { parse: false });  // accepts, reads, never answers
    const { model } = await providerFor(stack, `https://127.0.0.1:${silent.port}/v1`);
    return { silent, model };
  }

  test('(a) an admin request waiting on a frozen PostgreSQL (DB_TIMEOUT=30)', async () => {
    await sigtermWhileStuck({ DB_TIMEOUT: '30' }, (stuck) => stuckOnPostgres(stuck));
  });

  test('(b) a /v1 request waiting on a frozen Redis (REDIS_TIMEOUT=30, a key not seen yet)', async () => {
    const fresh = (await createKey(stack, 'unseen')).key;
    await sigtermWhileStuck({ REDIS_TIMEOUT: '30' }, (stuck) => stuckOnRedis(stuck, fresh));
  });

  test('(c) a /v1 request in an upstream TLS handshake that never completes (UPSTREAM_CONNECT_TIMEOUT=30)', async () => {
    const { silent, model } = await silentTlsUpstream();
    try {
      await sigtermWhileStuck({ UPSTREAM_CONNECT_TIMEOUT: '30' }, (stuck) => stuckInTls(stuck, silent, model));
    } finally {
      await silent.close();
    }
  });

  test('(a), (b) and (c) at once', async () => {
    const fresh = (await createKey(stack, 'unseen-too')).key;
    const { silent, model } = await silentTlsUpstream();
    try {
      await sigtermWhileStuck({ DB_TIMEOUT: '30', REDIS_TIMEOUT: '30', UPSTREAM_CONNECT_TIMEOUT: '30' }, async (stuck) => {
        await stuckInTls(stuck, silent, model);  // first: it needs Redis for its key and route
        await stuckOnPostgres(stuck);
        await stuckOnRedis(stuck, fresh);
      });
    } finally {
      await silent.close();
    }
  });
});

// Hardening, client side. Order of checks in the fixed gateway: framing, then a declared
// Content-Length over MAX_BODY_BYTES (413), then the key (401), and only then the body is read.
// Defects covered:
// C1 Transfer-Encoding smuggling: with "chunked, identity", "gzip" or "identity" the body is taken
//    as empty (400 invalid_json) and the connection kept, so the "body" (a second request) is then
//    executed; "gzip, chunked" gets a 400 but the connection stays open.
// C2 unbounded memory and work before authentication: a never-ending chunk extension or trailer
//    section is buffered; a wrong key is only answered after the whole body arrived; no
//    MAX_CONNECTIONS; no process-wide budget for buffered request bodies (MAX_BUFFERED_BODY_BYTES).
//    (Keep: 80 KiB of header fields -> 431; a declared Content-Length over MAX_BODY_BYTES -> 413;
//    Content-Length with Transfer-Encoding, or two Content-Lengths -> 400.)
// C3 deadlines: a next request trickled on a keep-alive connection lives on KEEPALIVE_TIMEOUT, not
//    HEADER_TIMEOUT; BODY_TIMEOUT closes silently instead of answering 408.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, sleep } from './lib/harness.mjs';
import { connect, buildRequest } from './lib/http.mjs';
import { provision, sawRequest } from './lib/proxy_helpers.mjs';
import {
  restartGateway, SETTLE_MS, smallAsanQuarantine,
  exchange, collect, expectError, show, rssSampler, pump, uid, v1Post,
} from './lib/hardening_helpers.mjs';

let stack, key;
before(async () => {
  stack = await startStack({ env: smallAsanQuarantine() });
  await sleep(SETTLE_MS);
  ({ key } = await provision(stack));
});
after(async () => { await stack?.stop(); });

const chat = (extra = {}) => ({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], ...extra });
const head = (lines) => Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${lines.map((l) => l + '\r\n').join('')}\r\n`, 'latin1');

describe('C1 Transfer-Encoding smuggling', () => {
  // The "body" is a second complete request: a POST that would reach the upstream, or a GET.
  const inner = {
    post: (id) => buildRequest('POST', '/v1/chat/completions', { headers: { Authorization: `Bearer ${key}`, 'X-Request-Id': id, Connection: 'keep-alive' }, body: chat() }),
    get: (id) => buildRequest('GET', '/v1/models', { headers: { Authorization: `Bearer ${key}`, 'X-Request-Id': id, Connection: 'keep-alive' } }),
  };
  for (const te of ['chunked, identity', 'gzip', 'identity']) {
    for (const kind of ['post', 'get']) {
      test(`Transfer-Encoding: ${te} with a smuggled ${kind.toUpperCase()} -> 400, closed, nothing smuggled runs`, async () => {
        const id = uid('smuggled');
        const x = await exchange(stack.gateway.port, Buffer.concat([
          head([`Authorization: Bearer ${key}`, 'Content-Type: application/json', `Transfer-Encoding: ${te}`, 'Connection: keep-alive']),
          inner[kind](id),
        ]), { waitClose: true, timeoutMs: 1500 });
        await sleep(100);
        assert.equal(sawRequest(stack.mock, id), false, `the smuggled request reached the upstream; client got ${show(x)}`);
        assert.equal(x.responses.length, 1, `${x.responses.length} responses on the socket: ${show(x)}`);
        expectError(x, 400);
        assert.equal(x.closed, true, `connection left open after the 400: ${show(x)}`);
      });
    }
  }

  test('Transfer-Encoding: gzip, chunked -> 501 or 400, then close', async () => {
    const x = await exchange(stack.gateway.port, Buffer.concat([
      head([`Authorization: Bearer ${key}`, 'Content-Type: application/json', 'Transfer-Encoding: gzip, chunked', 'Connection: keep-alive']),
      Buffer.from('5\r\nhello\r\n0\r\n\r\n'),
    ]), { waitClose: true, timeoutMs: 1500 });
    assert.ok([400, 501].includes(x.res?.statusCode), show(x));
    expectError(x, x.res.statusCode);
    assert.equal(x.closed, true, `connection left open: ${show(x)}`);
  });

  test('keep: Content-Length together with Transfer-Encoding -> 400', async () => {
    const id = uid('smuggled');
    const body = inner.post(id);
    const x = await exchange(stack.gateway.port, Buffer.concat([
      head([`Authorization: Bearer ${key}`, 'Content-Type: application/json', 'Transfer-Encoding: chunked', `Content-Length: ${body.length}`, 'Connection: keep-alive']),
      body,
    ]), { timeoutMs: 3000 });
    expectError(x, 400);
    await sleep(100);
    assert.equal(sawRequest(stack.mock, id), false);
  });

  test('keep: two different Content-Length values -> 400', async () => {
    const body = JSON.stringify(chat());
    const x = await exchange(stack.gateway.port, Buffer.concat([
      head([`Authorization: Bearer ${key}`, 'Content-Type: application/json', `Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`]),
      Buffer.from(body + ' '),
    ]), { timeoutMs: 3000 });
    expectError(x, 400);
  });
});

describe('C2 bounded memory and work before authentication', () => {
  // Sends head, then `first`, then pumps fill bytes for up to 4 s; -> {x, mem, sent}
  async function endless(headBuf, first, { fill = 0x61, total = 64 << 20, line } = {}) {
    const rss = rssSampler(stack.pids().gateway);
    const conn = await connect(stack.gateway.port);
    try {
      await conn.write(Buffer.concat([headBuf, Buffer.from(first, 'latin1')]));
      let sent = 0;
      const writer = line
        // Yields to the event loop between writes, as any real client does: a loop of writes that
        // complete at once would never let node read the answer before the gateway's lingering
        // close ends (it then resets the connection, destroying the unread answer).
        ? (async () => { const b = Buffer.from(line, 'latin1'); while (sent < total && !conn.closed && await Promise.race([conn.write(b), sleep(4000).then(() => false)])) { sent += b.length; await new Promise(setImmediate); } })()
        : pump(conn, { total, byte: fill, deadlineMs: 4000 }).then((n) => { sent = n; });
      const x = await collect(conn, { waitClose: true, timeoutMs: 5000 });
      conn.destroy();
      await writer;
      return { x, mem: rss.stop(), sent };
    } finally {
      conn.destroy();
    }
  }
  const chunkedHead = (auth) => head([...(auth ? [`Authorization: Bearer ${auth}`] : []), 'Content-Type: application/json', 'Transfer-Encoding: chunked']);

  test('no key, a chunk-size line with a never-ending 64 MiB extension -> 400/401 and close, RSS +< 8 MiB', async () => {
    const { x, mem, sent } = await endless(chunkedHead(null), '5;');
    const facts = `VmRSS +${mem.grewKiB} KiB, client wrote ${sent} bytes; ${show(x)}`;
    assert.ok([400, 401].includes(x.res?.statusCode), facts);
    assert.ok(x.tResponse < 2000, `answered after ${x.tResponse} ms: ${facts}`);
    assert.equal(x.closed, true, `not closed: ${facts}`);
    assert.ok(x.tClosed < 3000, `closed after ${x.tClosed} ms: ${facts}`);
    assert.ok(mem.grewKiB < 8 * 1024, facts);
  });

  test('a wrong key, a never-ending trailer section -> 400/401 and close, RSS +< 8 MiB', async () => {
    const { x, mem, sent } = await endless(chunkedHead('sk-wrong-key-0000000000000000000000'), '5\r\nhello\r\n0\r\n', { line: `X-Trailer: ${'t'.repeat(1000)}\r\n` });
    const facts = `VmRSS +${mem.grewKiB} KiB, client wrote ${sent} bytes; ${show(x)}`;
    assert.ok([400, 401].includes(x.res?.statusCode), facts);
    assert.ok(x.tResponse < 2000, `answered after ${x.tResponse} ms: ${facts}`);
    assert.equal(x.closed, true, `not closed: ${facts}`);
    assert.ok(x.tClosed < 3000, `closed after ${x.tClosed} ms: ${facts}`);
    assert.ok(mem.grewKiB < 8 * 1024, facts);
  });

  test('a valid key, a chunk-size line with a never-ending 64 MiB extension -> 400/413 and close, RSS +< 8 MiB', async () => {
    const { x, mem, sent } = await endless(chunkedHead(key), '5;');
    const facts = `VmRSS +${mem.grewKiB} KiB, client wrote ${sent} bytes; ${show(x)}`;
    assert.ok([400, 413].includes(x.res?.statusCode), facts);
    assert.ok(x.tResponse < 2000, `answered after ${x.tResponse} ms: ${facts}`);
    assert.equal(x.closed, true, `not closed: ${facts}`);
    assert.ok(mem.grewKiB < 8 * 1024, facts);
  });

  test('keep: 80 header fields of 1 KiB (80 KiB in all, each under 64 KiB) -> 431', async () => {
    const pads = Array.from({ length: 80 }, (_, i) => `X-Pad-${String(i).padStart(2, '0')}: ${'h'.repeat(1024 - 12)}`);
    const x = await exchange(stack.gateway.port, Buffer.concat([head([`Authorization: Bearer ${key}`, 'Content-Type: application/json', ...pads, 'Content-Length: 2']), Buffer.from('{}')]), { timeoutMs: 3000 });
    expectError(x, 431);
  });

  test('keep: no key and a declared Content-Length of 20 MiB -> 413 before any body byte', async () => {
    const x = await exchange(stack.gateway.port, head(['Content-Type: application/json', `Content-Length: ${20 << 20}`]), { timeoutMs: 2000 });
    expectError(x, 413);
  });

  test('a wrong key with Content-Length: 5242880 -> 401 before any body byte; closed within ~1.5 s while the client trickles', async () => {
    const conn = await connect(stack.gateway.port);
    try {
      await conn.write(head(['Authorization: Bearer sk-wrong-key-1111111111111111111111', 'Content-Type: application/json', 'Content-Length: 5242880']));
      const x = await collect(conn, { timeoutMs: 2000 });
      expectError(x, 401, 'invalid_api_key');
      const t401 = Date.now();
      await pump(conn, { total: 5242880, piece: 4096, intervalMs: 50, deadlineMs: 3000 });
      await conn.waitForClose(100).catch(() => {});
      const closedAfter = Date.now() - t401;
      assert.equal(conn.closed, true, `still open ${closedAfter} ms after the 401 while the client trickled`);
      assert.ok(closedAfter < 2000, `closed ${closedAfter} ms after the 401`);
    } finally {
      conn.destroy();
    }
  });

  test('MAX_CONNECTIONS=20: the 21st connection gets 503 overloaded with Retry-After and is closed; closing some frees room', async () => {
    await restartGateway(stack, { MAX_CONNECTIONS: '20' });
    const idle = [];
    try {
      for (let i = 0; i < 20; i++) idle.push(await connect(stack.gateway.port));
      await sleep(200);
      const extra = await connect(stack.gateway.port);
      let x;
      try {
        await sleep(300);  // a gateway may answer at accept time; otherwise it answers the request
        if (!extra.closed && !extra.received.length) await extra.write(buildRequest('GET', '/health/live', { headers: { Connection: 'keep-alive' } }));
        x = await collect(extra, { waitClose: true, timeoutMs: 2000 });
      } finally {
        extra.destroy();
      }
      expectError(x, 503, 'overloaded');
      assert.ok(x.res.headers['retry-after'], `no Retry-After: ${show(x)}`);
      assert.equal(x.closed, true, `the 21st connection was not closed: ${show(x)}`);
      for (const c of idle.splice(0, 5)) c.destroy();
      await sleep(300);
      const ok = await exchange(stack.gateway.port, buildRequest('GET', '/health/live'), { timeoutMs: 2000 });
      assert.equal(ok.res?.statusCode, 200, `after closing 5 of the 20: ${show(ok)}`);
    } finally {
      for (const c of idle) c.destroy();
      await restartGateway(stack);
    }
  });

  describe('MAX_BUFFERED_BODY_BYTES=16 MiB', () => {
    before(async () => { await restartGateway(stack, { MAX_BUFFERED_BODY_BYTES: '16777216', MAX_BODY_BYTES: '10485760' }); });
    after(async () => { await restartGateway(stack); });

    const DECLARED = 8_000_000;
    const prefix = '{"model":"gpt-test","messages":[],"pad":"';
    // A valid-key upload declaring DECLARED bytes that sends `send` of them and stalls.
    async function stalled(send) {
      const conn = await connect(stack.gateway.port);
      await conn.write(Buffer.concat([head([`Authorization: Bearer ${key}`, 'Content-Type: application/json', `Content-Length: ${DECLARED}`]), Buffer.from(prefix)]));
      if (send > prefix.length) await pump(conn, { total: send - prefix.length, deadlineMs: 4000 });
      return conn;
    }

    test('two stalled 8 MB uploads hold the budget: a third gets 503 overloaded at once; after they close, an 8 MB request succeeds', async () => {
      const held = [];
      try {
        held.push(await stalled(DECLARED / 2), await stalled(DECLARED / 2));
        await sleep(300);
        const third = await connect(stack.gateway.port);
        let x;
        try {
          await third.write(head([`Authorization: Bearer ${key}`, 'Content-Type: application/json', `Content-Length: ${DECLARED}`]));
          x = await collect(third, { timeoutMs: 2000 });
        } finally {
          third.destroy();
        }
        expectError(x, 503, 'overloaded');
        assert.ok(x.res.headers['retry-after'], `no Retry-After: ${show(x)}`);
        assert.ok(x.tResponse < 1000, `503 after ${x.tResponse} ms`);
      } finally {
        for (const c of held) c.destroy();
      }
      await sleep(300);
      const body = JSON.stringify(chat({ pad: 'p'.repeat(DECLARED - JSON.stringify(chat({ pad: '' })).length) }));
      assert.equal(body.length, DECLARED);
      const ok = await exchange(stack.gateway.port, v1Post('/v1/chat/completions', { key, body }), { timeoutMs: 10_000 });
      assert.equal(ok.res?.statusCode, 200, `after the stalled uploads closed: ${show(ok)}`);
    });

    test('8 stalled uploads (7 MB sent of 8 MB each) raise VmRSS by less than 40 MiB', async () => {
      const rss = rssSampler(stack.pids().gateway);
      const conns = [];
      try {
        for (let i = 0; i < 8; i++) conns.push(await stalled(7_000_000));
        await sleep(500);
      } finally {
        for (const c of conns) c.destroy();
      }
      const mem = rss.stop();
      assert.ok(mem.grewKiB < 40 * 1024, `VmRSS grew by ${mem.grewKiB} KiB across 8 stalled uploads`);
    });
  });
});

describe('C3 deadlines (HEADER_TIMEOUT=1, BODY_TIMEOUT=1, KEEPALIVE_TIMEOUT=10)', () => {
  before(async () => { await restartGateway(stack, { HEADER_TIMEOUT: '1', BODY_TIMEOUT: '1', KEEPALIVE_TIMEOUT: '10' }); });
  after(async () => { await restartGateway(stack); });

  test('a next request trickled on a keep-alive connection -> 408 or closed 1-2 s after its first byte', async () => {
    const conn = await connect(stack.gateway.port);
    try {
      await conn.write(buildRequest('GET', '/health/live', { headers: { Connection: 'keep-alive' } }));
      const first = await collect(conn, { timeoutMs: 2000 });
      assert.equal(first.res?.statusCode, 200, show(first));
      conn.received = Buffer.alloc(0);
      await sleep(500);
      const t0 = Date.now();
      const next = Buffer.from('GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
      let endedAt = null;
      for (let i = 0; i < 20 && endedAt == null; i++) {  // 20 bytes over 4 s: the head never completes
        if (conn.closed || conn.received.length) { endedAt = Date.now() - t0; break; }
        await conn.write(next.subarray(i, i + 1));
        await sleep(200);
      }
      if (endedAt == null) { await conn.waitFor(() => conn.closed || conn.received.length > 0, 1000).catch(() => {}); }
      if (endedAt == null && (conn.closed || conn.received.length)) endedAt = Date.now() - t0;
      assert.ok(endedAt != null, 'the trickled request was neither answered nor closed within 5 s');
      if (conn.received.length) {
        const x = await collect(conn, { timeoutMs: 1000 });
        expectError(x, 408, 'request_timeout');
      }
      assert.ok(endedAt >= 800 && endedAt <= 2000, `ended ${endedAt} ms after the first trickled byte`);
    } finally {
      conn.destroy();
    }
  });

  test('Content-Length: 100 with 50 bytes sent -> 408 request_timeout after ~1 s', async () => {
    const x = await exchange(stack.gateway.port, Buffer.concat([
      head([`Authorization: Bearer ${key}`, 'Content-Type: application/json', 'Content-Length: 100']), Buffer.from(('{"model":"gpt-test","pad":"' + 'a'.repeat(50)).slice(0, 50)),
    ]), { timeoutMs: 3000 });
    expectError(x, 408, 'request_timeout');
    assert.ok(x.tResponse >= 800 && x.tResponse < 2000, `408 after ${x.tResponse} ms`);
  });
});

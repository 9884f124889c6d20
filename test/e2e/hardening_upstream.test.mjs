// Hardening, upstream side (scripted raw-TCP upstreams, lib/raw_upstream.mjs). Defects covered:
// U1 interim responses (103 Early Hints, 100 Continue) relayed as the final answer, leaving the real
//    200 in the pooled connection for the next caller (another user); 101 from an upstream relayed.
// U2 unsolicited bytes on an idle pooled connection served to the next caller; a POST written on a
//    reused connection that the upstream closes (FIN or RST) without answering is sent a second time;
//    (an idle pooled connection the upstream closed is replaced transparently: keep).
// U3 status codes unknown to Beast (529, 520, 299) become "HTTP/1.1 0 <unknown-status>"; (599: keep).
// U4 unbounded upstream buffers: a never-ending chunk extension is buffered whole (RSS +48 MiB); a
//    70 KiB response head is accepted; a 1 MiB chunk extension mid-stream is accepted.
// U5 request ids: an invalid client id is forwarded upstream; without a client id nothing is
//    forwarded and the provider's id is adopted, so ids collide and raw 0xFF bytes reach the logs;
//    (a valid client id is used and forwarded: keep).
// U6 a request whose client has already gone (half-closed) is still sent upstream.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startStack, sleep } from './lib/harness.mjs';
import { connect } from './lib/http.mjs';
import { createKey } from './lib/proxy_helpers.mjs';
import { startScriptedUpstream, act, httpResponse, echo, echoBody, echoResponse, chunk } from './lib/raw_upstream.mjs';
import {
  restartGateway, SETTLE_MS, smallAsanQuarantine,
  exchange, expectError, show, statusLine, rssSampler, signalAll, providerFor, v1Post, uid, jsonSince,
} from './lib/hardening_helpers.mjs';

let stack, keyA, keyB;
const upstreams = [];
before(async () => {
  // One worker: the upstream pool is per worker, and the pooled-connection cases need the second
  // request to find the first one's connection.
  stack = await startStack({ env: { ...smallAsanQuarantine(), WORKERS: '1' } });
  await sleep(SETTLE_MS);
  keyA = (await createKey(stack, 'a')).key;
  keyB = (await createKey(stack, 'b')).key;
});
after(async () => {
  for (const up of upstreams) await up.close();
  await stack?.stop();
});

// A scripted upstream with its own provider and model (so each test has its own upstream pool).
async function scripted(handler, opts) {
  const up = await startScriptedUpstream(handler, opts);
  upstreams.push(up);
  const { model } = await providerFor(stack, up.url);
  return { up, model };
}
const chat = (model, extra = {}) => ({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });
const send = (key, model, { id, extra, headers = {}, timeoutMs = 5000, waitClose } = {}) => exchange(stack.gateway.port,
  v1Post('/v1/chat/completions', { key, body: chat(model, extra), headers: id ? { 'X-Request-Id': id, ...headers } : headers }), { timeoutMs, waitClose });

// The client got status 200 and exactly the echo body of the upstream request tagged `id`.
function assertOwnAnswer(x, up, id, what) {
  assert.ok(x.res, `${what}: no final response: ${show(x)}`);
  assert.equal(x.res.statusCode, 200, `${what}: ${show(x)}`);
  const mine = up.requestsFor(id);
  assert.ok(mine.length >= 1, `${what}: the upstream never saw request ${id}`);
  assert.equal(x.res.text, echoBody(mine.at(-1)), `${what}: the client got someone else's body`);
}

describe('U1 interim responses', () => {
  for (const [name, interim] of [
    ['103 Early Hints', 'HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n'],
    ['100 Continue', 'HTTP/1.1 100 Continue\r\n\r\n'],
  ]) {
    test(`${name} then 200 on the same connection: the client gets the 200 and its body; the next caller (another key) gets its own`, async () => {
      const { up, model } = await scripted((req) => (req.index === 0
        ? [act.write(interim), act.sleep(50), act.write(echoResponse(req))]
        : echo(req)));
      const id1 = uid('first');
      const x1 = await send(keyA, model, { id: id1 });
      assertOwnAnswer(x1, up, id1, 'first caller');
      const id2 = uid('second');
      const x2 = await send(keyB, model, { id: id2 });
      assertOwnAnswer(x2, up, id2, 'second caller');
    });
  }

  test('101 Switching Protocols from the upstream -> 502 upstream_protocol_error', async () => {
    const { model } = await scripted(() => [act.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'), act.hold()]);
    expectError(await send(keyA, model, { timeoutMs: 3000 }), 502, 'upstream_protocol_error');
  });
});

describe('U2 pooled connections', () => {
  test('unsolicited bytes on an idle pooled connection never reach the next caller', async () => {
    const stolen = 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nSTOLEN!';
    const { up, model } = await scripted((req) => (req.seq === 0 ? [act.write(echoResponse(req)), act.later(100, act.write(stolen))] : echo(req)));
    const id1 = uid('first');
    assertOwnAnswer(await send(keyA, model, { id: id1 }), up, id1, 'first caller');
    await sleep(300); // the unsolicited response is now sitting on the idle pooled connection
    const id2 = uid('second');
    const x2 = await send(keyB, model, { id: id2 });
    assert.ok(!x2.raw.includes('STOLEN!'), `the next caller got the unsolicited bytes: ${show(x2)}`);
    assertOwnAnswer(x2, up, id2, 'second caller');
  });

  for (const how of ['end', 'reset']) {
    test(`a POST is never sent twice: a reused connection closed by the upstream (${how === 'end' ? 'FIN' : 'RST'}) after reading the request -> 502 upstream_unavailable, received once`, async () => {
      const victim = uid('victim');
      // The victim request dies when it arrives on a reused connection; anything else is answered.
      const { up, model } = await scripted((req) => (req.json?.tag === victim && req.seq > 0 ? [act[how]()] : echo(req)));
      const warm = uid('warm');
      assertOwnAnswer(await send(keyA, model, { id: warm }), up, warm, 'warm-up');
      const x = await send(keyB, model, { id: victim, extra: { tag: victim } });
      const got = up.requestsFor(victim);
      assert.ok(got.length >= 1 && got[0].seq > 0, `precondition: the request should have arrived on the reused pooled connection; arrivals: ${JSON.stringify(got.map((r) => [r.conn, r.seq]))}`);
      assert.equal(got.length, 1, `the upstream received the POST ${got.length} times (connection, seq): ${JSON.stringify(got.map((r) => [r.conn, r.seq]))}; client got ${show(x)}`);
      expectError(x, 502, 'upstream_unavailable');
    });
  }

  test('keep: an idle pooled connection closed by the upstream -> the next request succeeds on a new connection, received once', async () => {
    const { up, model } = await scripted((req) => (req.seq === 0 ? [act.write(echoResponse(req)), act.later(100, act.end())] : echo(req)));
    const id1 = uid('first');
    assertOwnAnswer(await send(keyA, model, { id: id1 }), up, id1, 'first');
    await sleep(300);
    const id2 = uid('second');
    const x2 = await send(keyB, model, { id: id2 });
    assertOwnAnswer(x2, up, id2, 'second');
    assert.equal(up.requestsFor(id2).length, 1);
    assert.ok(up.requestsFor(id2)[0].conn > 0, 'served on a new connection');
  });
});

describe('U3 status codes', () => {
  const anthropic = JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
  for (const [code, reason, body] of [
    [529, 'Overloaded', anthropic],
    [520, 'Unknown Error', '{"error":{"message":"unknown","type":"server_error","param":null,"code":null}}'],
    [299, 'Custom Thing', '{"custom":true}'],
    [599, 'Network Connect Timeout Error', '{"error":{"message":"timeout"}}'],
  ]) {
    test(`${code === 599 ? 'keep: ' : ''}HTTP/1.1 ${code} ${reason} passes through with its number, reason phrase and body`, async () => {
      const { model } = await scripted(() => [act.write(httpResponse(code, reason, { headers: { 'Content-Type': 'application/json' }, body }))]);
      const x = await send(keyA, model);
      assert.equal(statusLine(x.raw), `HTTP/1.1 ${code} ${reason}`, show(x));
      assert.ok(x.res?.complete, show(x));
      assert.equal(x.res.text, body);
    });
  }

  test('an empty reason phrase (HTTP/1.1 529 \\r\\n) -> status 529', async () => {
    const body = anthropic;
    const { model } = await scripted(() => [act.write(httpResponse(529, '', { headers: { 'Content-Type': 'application/json' }, body }))]);
    const x = await send(keyA, model);
    assert.ok(['HTTP/1.1 529 ', 'HTTP/1.1 529'].includes(statusLine(x.raw)), show(x));
    assert.equal(x.res?.statusCode, 529, show(x));
    assert.equal(x.res.text, body);
  });
});

describe('U4 bounded upstream buffers', () => {
  test('a first chunk-size line with a never-ending 48 MiB extension -> 502 upstream_protocol_error quickly, RSS +< 8 MiB', async () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5;';
    const { model } = await scripted(() => [
      act.write(head + 'a'.repeat(64 * 1024)),  // the head and the start of the extension arrive together
      act.fill(0x61, 48 << 20),
      act.hold(),
    ]);
    const pid = stack.pids().gateway;
    const rss = rssSampler(pid);
    const t0 = Date.now();
    const x = await send(keyA, model, { timeoutMs: 4000 });
    const took = Date.now() - t0;
    await sleep(300);  // let an old-style gateway keep buffering a little longer
    const mem = rss.stop();
    const facts = `after ${took} ms; VmRSS grew by ${mem.grewKiB} KiB; ${show(x)}`;
    assert.equal(x.res?.statusCode, 502, facts);
    expectError(x, 502, 'upstream_protocol_error');
    assert.ok(took < 3000, `502 only ${facts}`);
    assert.ok(mem.grewKiB < 8 * 1024, `RSS grew too much: ${facts}`);
  });

  test('a 70 KiB upstream response head (70 headers of 1000 bytes) -> 502', async () => {
    const headers = Array.from({ length: 70 }, (_, i) => [`X-Pad-${i}`, 'p'.repeat(1000)]);
    const { model } = await scripted(() => [act.write(httpResponse(200, 'OK', { headers, body: '{"ok":true}' }))]);
    expectError(await send(keyA, model), 502);
  });

  test('mid-stream, a chunk-size line with a 1 MiB extension -> the client stream is cut without the terminating chunk', async () => {
    const head = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n';
    const frame = 'data: {"choices":[{"delta":{"content":"one"}}]}\n\n';
    const { model } = await scripted(() => [
      act.write(head + chunk(frame).toString('latin1')),
      act.sleep(200),
      act.write(chunk('data: [DONE]\n\n', ';' + 'e'.repeat(1 << 20))),
      act.write('0\r\n\r\n'),
      act.hold(),
    ]);
    const x = await send(keyA, model, { extra: { stream: true }, timeoutMs: 5000, waitClose: true });
    assert.ok(x.res, show(x));
    assert.equal(x.res.statusCode, 200, show(x));
    assert.ok(x.res.text.startsWith(frame), `the first chunk should have reached the client: ${show(x)}`);
    assert.equal(x.res.complete, false, `the stream ended cleanly although the upstream sent a 1 MiB chunk extension: ${show(x)}`);
    assert.equal(x.closed, true, `connection left open: ${show(x)}`);
  });
});

describe('U5 request ids', () => {
  const idRe = /^[A-Za-z0-9._:-]{1,128}$/;
  let up, model;
  let upstreamIdHeader = null;  // the x-request-id the upstream sends back, if any
  before(async () => {
    ({ up, model } = await scripted((req) => [act.write(echoResponse(req, upstreamIdHeader ? { 'x-request-id': upstreamIdHeader } : {}))]));
  });

  // Sends one request (extra headers as latin1 bytes) tagged in its body; -> {x, upReq, logged}
  async function tagged(headers = {}) {
    const tag = uid('tag');
    const x = await exchange(stack.gateway.port, v1Post('/v1/chat/completions', { key: keyA, body: chat(model, { tag }), headers }));
    assert.ok(x.res, show(x));
    const upReq = await up.waitFor(() => up.requestsFor(tag)[0], 3000);
    const rid = x.res.headers['x-request-id'];
    const logged = rid ? await stack.gateway.waitForLog((l) => l.msg === 'request' && l.request_id === rid, 1500).catch(() => null) : null;
    return { x, upReq, rid, logged };
  }

  function assertConsistent({ x, upReq, rid, logged }, what) {
    assert.equal(x.res.statusCode, 200, `${what}: ${show(x)}`);
    assert.ok(rid, `${what}: no X-Request-Id in the response`);
    assert.match(rid, idRe, `${what}: response X-Request-Id ${JSON.stringify(rid)}`);
    assert.equal(upReq.headers['x-request-id'], rid, `${what}: the upstream received x-request-id ${JSON.stringify(upReq.headers['x-request-id'])}, the client got ${JSON.stringify(rid)}`);
    assert.ok(logged, `${what}: no "request" log line with request_id ${JSON.stringify(rid)}`);
  }

  test('keep: a valid client id (128 chars of [A-Za-z0-9._:-]) is used as is and forwarded', async () => {
    const id = ('Ab9._:-' + 'x'.repeat(121)).slice(0, 128);
    const r = await tagged({ 'X-Request-Id': id });
    assertConsistent(r, 'valid id');
    assert.equal(r.rid, id);
  });

  test('without a client id the response carries the id that was logged and forwarded upstream', async () => {
    assertConsistent(await tagged(), 'no client id');
  });

  for (const [what, bad] of [
    ['129 chars', 'a'.repeat(129)],
    ['a space', 'bad id'],
    ['a 0xFF byte', 'bad\xffid'],
  ]) {
    test(`an invalid client id (${what}) is replaced by a gateway id, which is what the upstream receives`, async () => {
      const r = await tagged({ 'X-Request-Id': bad });
      assert.notEqual(r.upReq.headers['x-request-id'], bad, 'the invalid client id reached the upstream');
      assert.ok(!r.upReq.head.includes(bad), 'the invalid client id reached the upstream');
      assertConsistent(r, what);
      assert.notEqual(r.rid, bad);
    });
  }

  test('an upstream sending x-request-id: dup-1 every time does not make gateway ids collide', async () => {
    upstreamIdHeader = 'dup-1';
    try {
      const a = await tagged();
      const b = await tagged();
      assert.notEqual(a.rid, b.rid, `two requests got the same X-Request-Id ${JSON.stringify(a.rid)}`);
      for (const r of [a, b]) {
        assertConsistent(r, 'dup-1');
        assert.equal(r.x.res.headers['x-upstream-request-id'], 'dup-1', show(r.x));
      }
    } finally {
      upstreamIdHeader = null;
    }
  });

  test('an upstream x-request-id with a 0xFF byte is not echoed, and the log stays valid UTF-8 JSON', async () => {
    const logFile = path.join(stack.dir, 'gateway.log');
    const offset = fs.statSync(logFile).size;
    const mark = stack.gateway.logs().length;
    upstreamIdHeader = 'up\xffid';
    let r;
    try { r = await tagged(); } finally { upstreamIdHeader = null; }
    const head = r.x.raw.subarray(0, r.x.res.headBytes);
    assert.ok(!head.includes(0xff), `a 0xFF byte reached the client's response head: ${show(r.x)}`);
    assert.ok(!/up.id/.test(r.x.res.headers['x-upstream-request-id'] ?? ''), `x-upstream-request-id echoed: ${show(r.x)}`);
    assertConsistent(r, '0xFF upstream id');
    await sleep(200);  // the harness copies stdout to gateway.log asynchronously
    for (const l of stack.gateway.logs().slice(mark)) assert.doesNotThrow(() => JSON.parse(l), `log line is not JSON: ${l}`);
    const bytes = fs.readFileSync(logFile).subarray(offset);
    assert.ok(!bytes.includes(0xff), `gateway.log contains a raw 0xFF byte: ${JSON.stringify(bytes.toString('latin1').split('\n').find((l) => l.includes('\xff')))}`);
  });
});

describe('U6 clients that are already gone', () => {
  test('a request whose client half-closed before the upstream write is not sent upstream (20 of them, logged 499)', async () => {
    const { up, model } = await scripted(echo);
    await restartGateway(stack, { REDIS_TIMEOUT: '1' });
    const keys = [];
    for (let i = 0; i < 20; i++) keys.push((await createKey(stack, `gone-${i}`)).key);  // not yet seen by the gateway
    const mark = stack.gateway.logs().length;
    const ids = keys.map(() => uid('gone'));
    const redisPid = stack.pids().redis;
    const conns = [];
    signalAll([redisPid], 'SIGSTOP');  // authentication now waits ~1 s on Redis while the FINs arrive
    try {
      for (let i = 0; i < keys.length; i++) {
        const c = await connect(stack.gateway.port);
        conns.push(c);
        c.socket.end(v1Post('/v1/chat/completions', { key: keys[i], body: chat(model, { tag: ids[i] }), headers: { 'X-Request-Id': ids[i] } }));
      }
      await sleep(1500);
    } finally {
      signalAll([redisPid], 'SIGCONT');
    }
    const logged = () => jsonSince(stack, mark).filter((l) => l.msg === 'request' && ids.includes(l.request_id));
    await stack.gateway.waitForLog(() => logged().length === ids.length, 5000).catch(() => {});
    await sleep(200);
    for (const c of conns) c.destroy();
    const sent = ids.filter((id) => up.requestsFor(id).length > 0);
    assert.equal(sent.length, 0, `${sent.length} of ${ids.length} requests from clients that had already gone were sent upstream`);
    const statuses = logged().map((l) => l.status);
    assert.deepEqual(statuses, ids.map(() => 499), `logged statuses: ${JSON.stringify(statuses)}`);
    await restartGateway(stack);
  });
});

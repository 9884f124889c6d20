// Small helpers for the hardening_*.test.mjs files: a raw exchange that never throws (so a test can
// assert on exactly what came back, including nothing), every response on a socket, RSS sampling,
// stopping/resuming daemons, psql, floods over keep-alive connections, scripted-upstream providers.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { sleep } from './harness.mjs';
import { connect, buildRequest, parseResponse, decodeChunked } from './http.mjs';
import { adminOk, UPSTREAM_SECRET, withJson } from './proxy_helpers.mjs';

// ---- raw exchanges ---------------------------------------------------------------------------

// Every complete response in buf, in order (interim 1xx responses are skipped by parseResponse).
// A last response that is incomplete (or close-delimited) is included with complete: false.
export function parseAll(buf) {
  const out = [];
  let off = 0;
  while (off < buf.length) {
    let r;
    try { r = parseResponse(buf.subarray(off)); } catch (e) { out.push({ parseError: e.message }); break; }
    if (!r) break;
    out.push(withJson(r));
    if (!r.complete) break;
    off += r.headBytes + (r.chunked ? decodeChunked(r.rawBody).consumed : r.body.length);
  }
  return out;
}

// The first status line in raw bytes (latin1), or null.
export const statusLine = (raw) => { const i = raw.indexOf('\r\n'); return i < 0 ? null : raw.subarray(0, i).toString('latin1'); };

// Send `data` (Buffer, or array of Buffers written `delayMs` apart) on a new connection, then wait
// for one complete response (or, with waitClose, for the connection to close), at most timeoutMs.
// Never throws once connected: -> {res (first final response or null), responses, raw, closed, error, timedOut,
// tResponse (ms from the first write to a complete first response), tClosed}.
export async function exchange(port, data, { timeoutMs = 5000, waitClose = false, delayMs = 0, head = false } = {}) {
  const conn = await connect(port);
  try {
    const parts = Array.isArray(data) ? data : [data];
    for (let i = 0; i < parts.length; i++) {
      if (i && delayMs) await sleep(delayMs);
      await conn.write(parts[i]);
    }
    return await collect(conn, { timeoutMs, waitClose, head });
  } finally {
    conn.destroy();
  }
}

// Wait on an open RawConnection as exchange() does (does not destroy it).
export async function collect(conn, { timeoutMs = 5000, waitClose = false, head = false } = {}) {
  const t0 = conn.firstWriteAt ?? conn.t0;
  let tResponse = null;
  let tClosed = null;
  const done = (b) => {
    if (tResponse == null) { try { if (parseResponse(b, { head })?.complete) tResponse = performance.now() - t0; } catch { /* garbage */ } }
    if (conn.closed && tClosed == null) tClosed = performance.now() - t0;
    return conn.closed || (!waitClose && tResponse != null);
  };
  let timedOut = false;
  await conn.waitFor(done, timeoutMs).catch(() => { timedOut = !conn.closed; });
  done(conn.received);
  let res = null;
  let parseError = null;
  try { const r = parseResponse(conn.received, { head }); res = r ? withJson(r) : null; } catch (e) { parseError = e.message; }
  return { res, responses: parseAll(conn.received), raw: conn.received, closed: conn.closed, error: conn.error, timedOut, tResponse, tClosed, parseError };
}

export const preview = (buf, n = 300) => JSON.stringify(buf.toString('latin1').slice(0, n));

// Describes an exchange result for assertion messages.
export function show(x) {
  return `status line ${JSON.stringify(statusLine(x.raw))}, closed=${x.closed}, timedOut=${x.timedOut}, ${x.raw.length} bytes: ${preview(x.raw)}`;
}

// Status, OpenAI error shape and code of a gateway error in an exchange result.
export function expectError(x, status, code) {
  assert.ok(x.res, `no HTTP response: ${show(x)}`);
  assert.equal(x.res.statusCode, status, show(x));
  const e = x.res.json?.error;
  assert.ok(e && typeof e === 'object', `not an OpenAI error body: ${show(x)}`);
  for (const f of ['message', 'type']) assert.equal(typeof e[f], 'string', `error.${f}: ${show(x)}`);
  assert.ok('param' in e && 'code' in e, `error lacks param/code: ${show(x)}`);
  if (code !== undefined) assert.equal(e.code, code, show(x));
  return e;
}

// ---- memory ----------------------------------------------------------------------------------

export function rssKiB(pid) {
  return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
}

// Samples VmRSS every intervalMs; stop() -> {startKiB, maxKiB, lastKiB, grewKiB (max - start)}.
export function rssSampler(pid, intervalMs = 10) {
  const startKiB = rssKiB(pid);
  let maxKiB = startKiB;
  let lastKiB = startKiB;
  const sample = () => { try { lastKiB = rssKiB(pid); maxKiB = Math.max(maxKiB, lastKiB); } catch { /* exited */ } };
  const timer = setInterval(sample, intervalMs);
  return {
    sample,
    stop() { clearInterval(timer); sample(); return { startKiB, maxKiB, lastKiB, grewKiB: maxKiB - startKiB }; },
  };
}

// ---- processes -------------------------------------------------------------------------------

export function childPids(pid) {
  const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

export function signalAll(pids, sig) {
  for (const p of pids) { try { process.kill(p, sig); } catch { /* gone */ } }
}

// SIGSTOP the postmaster first (so it forks no new backend), then every child, looking again until
// no new one shows up. -> {pids, resume()} ; resume() SIGCONTs them all (call it in a finally).
export function freezePostgres(stack) {
  const pm = stack.pids().pg;
  assert.ok(pm, 'no postmaster pid');
  const pids = [pm];
  signalAll([pm], 'SIGSTOP');
  for (let round = 0; round < 5; round++) {
    const fresh = childPids(pm).filter((p) => !pids.includes(p));
    if (!fresh.length) break;
    signalAll(fresh, 'SIGSTOP');
    pids.push(...fresh);
  }
  return { pids, resume: () => signalAll(pids, 'SIGCONT') };
}

// ---- PostgreSQL ------------------------------------------------------------------------------

export function psql(stack, sql) {
  return new Promise((resolve, reject) => {
    const p = spawn('psql', ['-h', '127.0.0.1', '-p', String(stack.pg.port), '-U', 'postgres', '-d', 'llmgw', '-XtAc', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { err += b; });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`psql ${sql}: exit ${code}: ${err}`))));
  });
}

// ---- load ------------------------------------------------------------------------------------

// Send `total` requests (makeRequest(i) -> request bytes with Connection: keep-alive) over
// `connections` keep-alive connections; a connection the gateway closes is replaced.
// -> array of {statusCode, code, text} in request order.
export async function flood(port, total, makeRequest, { connections = 32, timeoutMs = 10_000 } = {}) {
  const results = new Array(total);
  let next = 0;
  async function worker() {
    let conn = null;
    try {
      while (next < total) {
        const i = next++;
        if (!conn || conn.closed) { conn?.destroy(); conn = await connect(port); }
        conn.received = Buffer.alloc(0);
        await conn.write(makeRequest(i));
        const r = await conn.waitForResponse({ timeoutMs });
        const res = withJson(r);
        results[i] = { statusCode: res.statusCode, code: res.json?.error?.code ?? null, text: res.text };
        if (/close/i.test(res.headers.connection ?? '')) { conn.destroy(); conn = null; }
      }
    } finally {
      conn?.destroy();
    }
  }
  await Promise.all(Array.from({ length: Math.min(connections, total) }, worker));
  return results;
}

// Counts of values, for assertion messages: {"401 invalid_api_key": 1990, "503 db_unavailable": 10}.
export function tally(results) {
  const t = {};
  for (const r of results) { const k = `${r?.statusCode} ${r?.code ?? ''}`.trim(); t[k] = (t[k] ?? 0) + 1; }
  return t;
}

// ---- provisioning ----------------------------------------------------------------------------

export const uid = (tag = 'x') => `${tag}-${crypto.randomBytes(5).toString('hex')}`;

// A provider for baseUrl and a model routed to it. -> {provider, model (its name)}
export async function providerFor(stack, baseUrl, { model = uid('m'), upstreamModel = 'raw-model' } = {}) {
  const provider = await adminOk(stack, 'POST', '/admin/providers', { name: uid('p'), kind: 'openai', api_key: UPSTREAM_SECRET, base_url: baseUrl }, 201);
  await adminOk(stack, 'POST', '/admin/models', { name: model, provider_id: provider.id, provider_model_name: upstreamModel }, 201);
  return { provider, model };
}

// Request bytes for a /v1 POST. body: object/string/Buffer.
export function v1Post(path, { key, body, headers = {}, keepAlive = false } = {}) {
  const h = { 'Content-Type': 'application/json', ...headers };
  if (key) h.Authorization = `Bearer ${key}`;
  if (keepAlive && !Object.keys(h).some((k) => k.toLowerCase() === 'connection')) h.Connection = 'keep-alive';
  return buildRequest('POST', path, { headers: h, body });
}

// Gateway stdout lines from index `mark` on (stack.gateway.logs().length taken earlier).
export const linesSince = (stack, mark) => stack.gateway.logs().slice(mark);
export const jsonSince = (stack, mark) => linesSince(stack, mark).flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } });

// Write `total` bytes of `byte` on conn in pieces, with back-pressure, until done, the connection
// closes, or deadlineMs passes (a write the peer never drains does not hang the test). intervalMs
// between pieces trickles. -> bytes handed to the kernel.
export async function pump(conn, { total, piece = 256 << 10, byte = 0x61, deadlineMs = 10_000, intervalMs = 0 } = {}) {
  const buf = Buffer.alloc(Math.min(piece, total), byte);
  const end = Date.now() + deadlineMs;
  let sent = 0;
  while (sent < total && !conn.closed && !conn.socket.destroyed && Date.now() < end) {
    const n = Math.min(buf.length, total - sent);
    let timer;
    const ok = await Promise.race([
      conn.write(buf.subarray(0, n)),
      new Promise((r) => { timer = setTimeout(() => r(false), Math.max(0, end - Date.now())); }),
    ]);
    clearTimeout(timer);
    if (!ok) break;
    sent += n;
    if (intervalMs) await sleep(intervalMs);
  }
  return sent;
}

// ---- gateway restarts ------------------------------------------------------------------------

// A SIGTERM that lands right after the "listening" line is sometimes lost (the gateway then runs
// until the harness SIGKILLs it 30 s later), so every (re)start here is followed by a short pause
// before anything may stop the gateway again.
export const SETTLE_MS = 250;
export async function restartGateway(stack, env = {}) { await stack.gateway.restart(env); await sleep(SETTLE_MS); }
export async function startGateway(stack, env = {}) { await stack.gateway.start(env); await sleep(SETTLE_MS); }

// For files that assert on the gateway's RSS: under ASan (ctest's second pass) freed memory sits in
// a 256 MiB quarantine, so RSS would grow with every freed request buffer even in a gateway that
// holds nothing. A small quarantine keeps RSS meaningful and still catches most use-after-free.
// Ignored by a binary built without ASan; the caller's ASAN_OPTIONS are kept.
export const smallAsanQuarantine = () => ({ ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=4'].filter(Boolean).join(':') });

// Helpers for admin.test.mjs: direct Redis / PostgreSQL inspection, error-shape assertions and a
// second gateway process sharing one stack's PostgreSQL and Redis.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { gatewayBin, sleep } from './harness.mjs';

export const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

// redis-cli against the stack's Redis; returns trimmed stdout (throws if redis-cli fails).
export function redisCli(stack, ...args) {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(stack.redis.port), '--no-raw', ...args.map(String)], {
    encoding: 'utf8', timeout: 10_000,
  });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}
// Raw (unquoted) reply, e.g. for HGET of a JSON value.
export function redisRaw(stack, ...args) {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(stack.redis.port), '--raw', ...args.map(String)], {
    encoding: 'utf8', timeout: 10_000,
  });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.replace(/\n$/, '');
}
// Key records live in the HASH llmgw:key_records (key hash -> {"id","name"}).
export const KEY_RECORDS = 'llmgw:key_records';
export const inKeySet = (stack, key) => redisCli(stack, 'HEXISTS', KEY_RECORDS, sha256(key)) === '(integer) 1';
// llmgw:routes holds {"model_id","model","strategy","routes":[{route_id, provider_id, provider, kind,
// base_url, upstream_model, api_version, priority, weight}, ...]}. routeOf returns the first route
// with the model's fields (what a single-route model has); routesOf the whole entry.
export function routesOf(stack, model) {
  const v = redisRaw(stack, 'HGET', 'llmgw:routes', model);
  return v === '' ? null : JSON.parse(v);
}
export function routeOf(stack, model) {
  const entry = routesOf(stack, model);
  return entry ? { model_id: entry.model_id, model: entry.model, strategy: entry.strategy, ...entry.routes[0] } : null;
}
export const keySetSize = (stack) => Number(redisRaw(stack, 'HLEN', KEY_RECORDS));
export const routeCount = (stack) => Number(redisRaw(stack, 'HLEN', 'llmgw:routes'));

// psql -XAt against the stack's database; returns trimmed stdout.
export function sql(stack, query) {
  const r = spawnSync('psql', [stack.pg.url, '-XAtc', query], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`psql failed for ${query}: ${r.stderr}`);
  return r.stdout.trim();
}
export const rowCount = (stack, table) => Number(sql(stack, `SELECT count(*) FROM ${table}`));
export const rowCounts = (stack) => ({
  providers: rowCount(stack, 'providers'), models: rowCount(stack, 'models'), user_keys: rowCount(stack, 'user_keys'),
});

export function pgDumpData(stack) {
  const r = spawnSync('pg_dump', ['--data-only', stack.pg.url], { encoding: 'utf8', timeout: 30_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`pg_dump failed: ${r.stderr}`);
  return r.stdout;
}

// Asserts an OpenAI-shape error {"error":{"message","type","param","code"}} with the given status/code.
export function assertError(r, status, code, what = '') {
  const ctx = `${what ? what + ': ' : ''}HTTP ${r.status} ${r.text}`;
  assert.equal(r.status, status, ctx);
  assert.ok(r.json && typeof r.json === 'object', `body is not JSON: ${ctx}`);
  assert.deepEqual(Object.keys(r.json), ['error'], ctx);
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type'], ctx);
  assert.equal(typeof r.json.error.message, 'string', ctx);
  assert.ok(r.json.error.message.length > 0, ctx);
  assert.equal(typeof r.json.error.type, 'string', ctx);
  assert.ok(r.json.error.param === null || typeof r.json.error.param === 'string', ctx);
  if (code !== undefined) assert.equal(r.json.error.code, code, ctx);
}

// Polls fn() (sync or async) until it returns a truthy value; throws with the last value otherwise.
export async function eventually(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await sleep(50);
  }
}

// Starts one more gateway process with the stack's environment (same PG, Redis, keys) on a free
// port; `env` adds or overrides variables (null/undefined unsets one). -> {url, port, proc, lines,
// jsonLogs(), exited, kill(signal), stop()}
export async function startExtraGateway(stack, { timeoutMs = 20_000, env: extraEnv = {} } = {}) {
  const env = { ...stack.env(), LISTEN_ADDR: '127.0.0.1:0', ...extraEnv };
  for (const k of Object.keys(env)) if (env[k] === undefined || env[k] === null) delete env[k];
  const proc = spawn(gatewayBin(), [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let stderr = '';
  let partial = '';
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`extra gateway did not listen:\n${lines.join('\n')}\n${stderr}`)); }, timeoutMs);
    proc.stderr.on('data', (b) => { stderr += b; });
    proc.stdout.on('data', (b) => {
      const parts = (partial + b.toString('utf8')).split('\n');
      partial = parts.pop();
      for (const l of parts) {
        lines.push(l);
        try {
          const o = JSON.parse(l);
          if (o.msg === 'listening') { clearTimeout(timer); resolve(`http://${o.addr}`); }
        } catch { /* not JSON */ }
      }
    });
    exited.then((e) => { clearTimeout(timer); reject(new Error(`extra gateway exited (${JSON.stringify(e)}):\n${stderr}`)); });
  });
  return {
    url,
    port: Number(url.slice(url.lastIndexOf(':') + 1)),
    proc,
    lines,
    exited,
    jsonLogs: () => lines.flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } }),
    // Signal without waiting (e.g. SIGKILL); -> the exit promise.
    kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

// GET /v1/models with a user key against a gateway base url.
export async function listModels(baseUrl, key) {
  const res = await fetch(`${baseUrl}/v1/models`, { headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

// Starts a whole stack for an end-to-end test on free ports: PostgreSQL + Redis (through
// scripts/lib/services.sh), the mock upstream (in-process) and the gateway binary.
// Everything started is stopped by stack.stop(), and also when the process exits or is
// interrupted, so a throwing test never leaves daemons behind.
// Set LLMGW_E2E_KEEP=1 to keep the temp dir (pg.log, redis.log, gateway.log) for debugging.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMockUpstream } from '../../mock_upstream/server.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SERVICES = path.join(REPO, 'scripts/lib/services.sh');
export const gatewayBin = (bin) => bin || process.env.LLMGW_BIN || path.join(REPO, 'build/gateway/llm-gateway');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// True if pid is a live process. A daemon (postgres, redis) is re-parented to PID 1, which
// may reap it late: a zombie counts as gone.
export function isAlive(pid) {
  if (!pid) return false;
  try { process.kill(pid, 0); } catch { return false; }
  try { return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z'; } catch { return false; }
}

const bashArgs = (fn, args) => ['-c', 'source "$0" && "$@"', SERVICES, fn, ...args.map(String)];

// Run a function of services.sh; rejects with its stderr on failure.
function svc(fn, ...args) {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', bashArgs(fn, args), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { out += b; });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${fn} ${args.join(' ')} failed (exit ${code}):\n${out}`))));
  });
}
const svcSync = (fn, ...args) => spawnSync('bash', bashArgs(fn, args), { stdio: 'ignore', timeout: 30_000 });

// ---- cleanup on exit ------------------------------------------------------------------------
const live = new Set();
let handlersInstalled = false;
function installExitHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // 'exit' allows only synchronous work: SIGKILL the gateway, stop daemons with spawnSync.
  process.on('exit', () => { for (const s of live) s._killSync(); });
  for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
    process.on(sig, () => { for (const s of live) s._killSync(); process.exit(128 + num); });
  }
}

function toEnv(base, overrides = {}) {
  const env = { ...base, ...overrides };
  for (const k of Object.keys(env)) if (env[k] === undefined || env[k] === null) delete env[k]; // null/undefined = unset
  return env;
}

function spawnGateway(bin, env, logFile) {
  if (!fs.existsSync(bin)) throw new Error(`gateway binary not found at ${bin} (build it, or set LLMGW_BIN)`);
  const proc = spawn(bin, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { proc, lines: [], stderr: '', exit: null };
  let partial = '';
  const log = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : null;
  proc.stdout.on('data', (b) => {
    log?.write(b);
    const parts = (partial + b.toString('utf8')).split('\n');
    partial = parts.pop();
    for (const l of parts) if (l) { out.lines.push(l); out.onLine?.(l); }
  });
  proc.stderr.on('data', (b) => { log?.write(b); out.stderr += b; });
  out.exited = new Promise((resolve) => proc.on('close', (code, signal) => {
    if (partial) { out.lines.push(partial); out.onLine?.(partial); partial = ''; }
    log?.end();
    out.exit = { code, signal };
    resolve(out.exit);
  }));
  proc.on('error', (e) => { out.stderr += `spawn error: ${e.message}\n`; });
  return out;
}

const describeRun = (run) => `--- stdout ---\n${run.lines.join('\n')}\n--- stderr ---\n${run.stderr}`;

async function fetchJson(url, method, headers, body) {
  const h = { ...headers };
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) {
    body = JSON.stringify(body);
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
  }
  const res = await fetch(url, { method, headers: h, body });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

export async function startStack(opts = {}) {
  installExitHandlers();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgw-e2e-'));
  const pgPort = await freePort();
  let redisPort = await freePort();
  while (redisPort === pgPort) redisPort = await freePort();
  let stopped = false;
  let run = null; // the current gateway process (see spawnGateway)
  const allLines = []; // gateway stdout over all of its runs

  const bin = gatewayBin(opts.bin);
  const adminKey = crypto.randomBytes(16).toString('hex');
  const encryptionKey = crypto.randomBytes(32).toString('hex');
  const pg = {
    port: pgPort,
    url: `postgresql://postgres@127.0.0.1:${pgPort}/llmgw`,
    start: () => svc('pg_start', dir, pgPort),
    stop: () => svc('pg_stop', dir),
  };
  const redis = {
    port: redisPort,
    url: `redis://127.0.0.1:${redisPort}/0`,
    start: () => svc('redis_start', dir, redisPort),
    stop: () => svc('redis_stop', dir),
  };
  const baseEnv = () => toEnv(process.env, {
    LISTEN_ADDR: '127.0.0.1:0',
    DATABASE_URL: pg.url,
    REDIS_URL: redis.url,
    ADMIN_KEY: adminKey,
    ENCRYPTION_KEY: encryptionKey,
    LOG_LEVEL: 'info',
    // Two workers whatever the machine: cross-worker paths (invalidations, /metrics, drain) are
    // always exercised. Tests that count per-worker state (pool, cooldowns) ask for one.
    WORKERS: '2',
    ...opts.env,
  });

  const gateway = {
    url: null,
    port: null,
    adminKey,
    encryptionKey,
    proc: null,
    logs: () => allLines.slice(),
    // Parsed JSON log lines (lines that are not JSON are skipped).
    jsonLogs: () => allLines.flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } }),
    stderr: () => run?.stderr ?? '',
    exit: () => run?.exit ?? null, // {code, signal} once the current process has exited
    // Resolves with the first log line (parsed JSON) for which pred is true.
    async waitForLog(pred, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = gateway.jsonLogs().find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no matching gateway log line within ${timeoutMs} ms\n${allLines.join('\n')}`);
        await sleep(25);
      }
    },
    // Start (or start again) with extra env overrides; waits for the "listening" log line.
    async start(envOverrides = {}, { timeoutMs = 20_000 } = {}) {
      if (run && !run.exit) throw new Error('gateway already running');
      run = spawnGateway(bin, toEnv(baseEnv(), envOverrides), path.join(dir, 'gateway.log'));
      gateway.proc = run.proc;
      const r = run;
      const port = await new Promise((resolve, reject) => {
        let settled = false;
        const timer = setTimeout(() => fail(`did not log "listening" within ${timeoutMs} ms`), timeoutMs);
        const fail = (why) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          r.proc.kill('SIGKILL');
          reject(new Error(`gateway ${why}\n${describeRun(r)}`));
        };
        r.onLine = (line) => {
          allLines.push(line);
          let o;
          try { o = JSON.parse(line); } catch { return; }
          if (!settled && o?.msg === 'listening' && typeof o.addr === 'string') {
            settled = true;
            clearTimeout(timer);
            resolve(Number(o.addr.slice(o.addr.lastIndexOf(':') + 1)));
          }
        };
        r.exited.then((e) => fail(`exited early (code ${e.code}, signal ${e.signal})`));
      });
      gateway.port = port;
      gateway.url = `http://127.0.0.1:${port}`;
      return gateway;
    },
    // Signal the gateway and wait for it to exit; SIGKILL after timeoutMs. -> {code, signal}
    async stop(signal = 'SIGTERM', { timeoutMs = 30_000 } = {}) {
      if (!run) return null;
      if (run.exit) return run.exit;
      run.proc.kill(signal);
      const timer = setTimeout(() => run.proc.kill('SIGKILL'), timeoutMs);
      const e = await run.exited;
      clearTimeout(timer);
      return e;
    },
    // Stop, then start with the same env (+ overrides). The port changes: re-read gateway.url.
    async restart(envOverrides = {}) {
      await gateway.stop();
      return gateway.start(envOverrides);
    },
  };

  const stack = {
    dir,
    pg,
    redis,
    mock: null,
    gateway,
    env: baseEnv, // the gateway's base environment (function: reflects later changes)
    admin: (method, p, body) => fetchJson(gateway.url + p, method, { authorization: `Bearer ${adminKey}` }, body),
    request: (method, p, { headers = {}, body } = {}) => fetchJson(gateway.url + p, method, headers, body),
    // Run the gateway binary once with env overrides and wait for it to exit (for startup-failure
    // tests). It is SIGKILLed after timeoutMs (timedOut: true). -> {code, signal, stdout, stderr, timedOut}
    async runGatewayOnce(envOverrides = {}, { timeoutMs = 10_000 } = {}) {
      const r = spawnGateway(bin, toEnv(baseEnv(), envOverrides));
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; r.proc.kill('SIGKILL'); }, timeoutMs);
      const e = await r.exited;
      clearTimeout(timer);
      return { ...e, stdout: r.lines.join('\n'), stderr: r.stderr, timedOut };
    },
    pids() {
      const read = (f) => { try { return Number(fs.readFileSync(path.join(dir, f), 'utf8').split('\n')[0]) || null; } catch { return null; } };
      return { pg: read('pg/postmaster.pid'), redis: read('redis.pid'), gateway: run && !run.exit ? run.proc.pid : null };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const errors = [];
      await gateway.stop().catch((e) => errors.push(e));
      await stack.mock?.close().catch((e) => errors.push(e));
      await Promise.all([redis.stop(), pg.stop()].map((p) => p.catch((e) => errors.push(e))));
      if (!process.env.LLMGW_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
      live.delete(stack);
      if (errors.length) throw new AggregateError(errors, 'stack.stop() had errors');
    },
    _killSync() {
      if (run && !run.exit) run.proc.kill('SIGKILL');
      svcSync('redis_stop', dir);
      svcSync('pg_stop', dir);
      if (!process.env.LLMGW_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
      live.delete(stack);
    },
  };
  live.add(stack);

  try {
    await Promise.all([pg.start(), redis.start()]);
    stack.mock = await startMockUpstream(opts.mock);
    if (opts.gateway !== false) await gateway.start();
  } catch (e) {
    await stack.stop().catch(() => {});
    throw e;
  }
  return stack;
}

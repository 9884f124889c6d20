// scripts/dev.sh as a newcomer runs it: PostgreSQL, Redis, the mock upstream and the gateway
// from a fresh state directory, a demo provider/model/key registered, and the printed curl line
// and Node snippet work as printed (a streamed completion arrives). Ctrl-C (SIGINT/SIGTERM)
// stops everything; a second run keeps the demo (new mock port written into the provider);
// --no-demo / LLMGW_NO_DEMO=1 turn it off. Install and build are skipped (LLMGW_SKIP_BUILD=1):
// the binary under test is used (LLMGW_BIN).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, freePort, gatewayBin, sleep } from './lib/harness.mjs';
import { connect } from './lib/http.mjs';

const DEMO_CONTENT = 'Hello from llm-gateway! This answer streams from the local mock provider: no account, no network.';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgw-first-run-'));
const started = new Set();

// Whatever happens, nothing dev.sh started outlives the test.
function killAll() {
  for (const r of started) {
    try { process.kill(-r.proc.pid, 'SIGKILL'); } catch { /* gone */ }
    const services = path.join(REPO, 'scripts/lib/services.sh');
    spawnSync('bash', ['-c', 'source "$0"; redis_stop "$1"; pg_stop "$1"', services, r.state], { stdio: 'ignore', timeout: 30_000 });
  }
}
process.on('exit', killAll);
after(() => { killAll(); fs.rmSync(root, { recursive: true, force: true }); });

// Starts scripts/dev.sh in its own process group; resolves once it printed its banner.
async function startDev({ state, args = [], env = {} }) {
  const port = await freePort();
  const childEnv = { ...process.env, LLMGW_SKIP_BUILD: '1', LLMGW_BIN: gatewayBin(), LLMGW_STATE_DIR: state,
    LISTEN_ADDR: `127.0.0.1:${port}`, ...env };
  delete childEnv.ADMIN_KEY;
  delete childEnv.LLMGW_NO_DEMO;
  Object.assign(childEnv, env);
  const proc = spawn('bash', [path.join(REPO, 'scripts/dev.sh'), ...args], { env: childEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const run = { proc, state, port, url: `http://127.0.0.1:${port}`, stdout: '', stderr: '' };
  run.exited = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
  proc.stdout.on('data', (b) => { run.stdout += b; });
  proc.stderr.on('data', (b) => { run.stderr += b; });
  started.add(run);
  const deadline = Date.now() + 90_000;
  while (!run.stdout.includes('more:  deploy/admin-examples.sh')) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      throw new Error(`dev.sh did not print its banner (exit ${proc.exitCode}):\n${run.stdout}\n${run.stderr}`);
    }
    await sleep(100);
  }
  run.lines = run.stdout.split('\n');
  run.adminKey = run.stdout.match(/^ {2}ADMIN_KEY=(\S+)$/m)[1];
  return run;
}

// Ctrl-C: SIGINT to dev.sh (a terminal would send it to the whole group; the script alone must
// be enough). It exits, and PostgreSQL, Redis, the mock and the gateway are gone.
async function stopDev(run, signal = 'SIGINT') {
  const mockPort = run.stdout.match(/mock upstream on :(\d+)/)?.[1];
  process.kill(run.proc.pid, signal);
  const e = await Promise.race([run.exited, sleep(40_000).then(() => null)]);
  assert.ok(e, `dev.sh did not exit after ${signal}:\n${run.stderr}`);
  assert.equal(e.code, signal === 'SIGINT' ? 130 : 143, `exit ${JSON.stringify(e)}\n${run.stderr}`);
  assert.ok(!fs.existsSync(path.join(run.state, 'pg/postmaster.pid')), 'PostgreSQL stopped');
  assert.ok(!fs.existsSync(path.join(run.state, 'redis.pid')), 'Redis stopped');
  for (const port of [run.port, mockPort].filter(Boolean)) {
    await assert.rejects(connect(Number(port), '127.0.0.1', { timeoutMs: 1000 }), /ECONNREFUSED/, `port ${port} still open`);
  }
  // Nothing left in its process group either.
  let left = true;
  for (let i = 0; i < 50 && left; i++) {
    try { process.kill(-run.proc.pid, 0); await sleep(100); } catch { left = false; }
  }
  assert.equal(left, false, 'processes of dev.sh still running');
  started.delete(run);
}

const admin = async (run, method, p, body) => {
  const res = await fetch(run.url + p, { method, headers: { authorization: `Bearer ${run.adminKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json().catch(() => undefined) };
};

// Runs the printed curl line as a shell would; -> {status, stdout, times: [ms of each output chunk]}.
function runCurl(line) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn('bash', ['-c', line], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const times = [];
    p.stdout.on('data', (b) => { stdout += b; times.push(Date.now() - t0); });
    p.on('close', (status) => resolve({ status, stdout, times }));
  });
}

function assertStreamedDemo(res) {
  assert.equal(res.status, 0, res.stdout);
  const events = res.stdout.split('\n\n').filter((e) => e.startsWith('data: '));
  assert.equal(events.at(-1), 'data: [DONE]');
  const text = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)).choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, DEMO_CONTENT);
  // Streamed: the pieces came over time (the mock sends one every 60 ms), not in one piece.
  assert.ok(res.times.length >= 4, `arrived in ${res.times.length} piece(s)`);
  assert.ok(res.times.at(-1) - res.times[0] >= 300, `arrivals ${res.times}`);
}

const snippet = (run, title) => {
  const i = run.lines.findIndex((l) => l.startsWith(`  ${title}`));
  assert.ok(i >= 0, `no ${title} snippet`);
  return run.lines.slice(i + 2, i + 5);
};

let state1, key1;

test('first run: demo provider, model and key on a fresh state directory; the printed curl line streams a completion; the Node snippet runs', async () => {
  state1 = path.join(root, 'state');
  const run = await startDev({ state: state1 });
  try {
    const curl = run.lines.filter((l) => l.startsWith('curl -N '));
    assert.equal(curl.length, 1, run.stdout);
    key1 = curl[0].match(/Bearer (sk-\S+)"/)[1];
    assertStreamedDemo(await runCurl(curl[0]));

    // What was registered: one provider "demo" (openai_compatible, at the mock), model demo-chat.
    const providers = (await admin(run, 'GET', '/admin/providers')).json;
    assert.equal(providers.length, 1);
    assert.equal(providers[0].name, 'demo');
    assert.equal(providers[0].kind, 'openai_compatible');
    assert.equal(providers[0].base_url, `http://127.0.0.1:${run.stdout.match(/mock upstream on :(\d+)/)[1]}/v1`);
    const models = (await admin(run, 'GET', '/admin/models')).json;
    assert.deepEqual(models.map((m) => m.name), ['demo-chat']);

    // The three-line snippets carry the base URL and the key; the Node one runs as printed.
    const py = snippet(run, 'Python');
    assert.equal(py[0], 'from openai import OpenAI');
    assert.equal(py[1], `client = OpenAI(base_url="${run.url}/v1", api_key="${key1}")`);
    assert.match(py[2], /^print\(client\.chat\.completions\.create\(model="demo-chat"/);
    const py3 = spawnSync('python3', ['-c', 'import ast,sys; ast.parse(sys.stdin.read())'], { input: py.join('\n'), encoding: 'utf8' });
    assert.equal(py3.status, 0, py3.stderr);
    const js = snippet(run, 'Node');
    assert.equal(js[0], 'import OpenAI from "openai";');
    assert.equal(js[1], `const client = new OpenAI({ baseURL: "${run.url}/v1", apiKey: "${key1}" });`);
    // In test/e2e so that "openai" resolves from its node_modules.
    const file = path.join(REPO, 'test/e2e', `.first-run-snippet-${crypto.randomBytes(4).toString('hex')}.mjs`);
    fs.writeFileSync(file, js.join('\n') + '\n');
    try {
      const r = spawnSync('node', [file], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `${DEMO_CONTENT}\n`);
    } finally {
      fs.rmSync(file, { force: true });
    }
  } finally {
    await stopDev(run, 'SIGINT');
  }
});

test('second run on the same state: the same demo key works again (the new mock port is written into the provider), nothing duplicated', async () => {
  assert.ok(state1, 'needs the first run');
  const run = await startDev({ state: state1 });
  try {
    const curl = run.lines.find((l) => l.startsWith('curl -N '));
    assert.ok(curl.includes(`Bearer ${key1}"`), 'the same key');
    assertStreamedDemo(await runCurl(curl));
    const providers = (await admin(run, 'GET', '/admin/providers')).json;
    assert.deepEqual(providers.map((p) => p.name), ['demo']);
    assert.equal(providers[0].base_url, `http://127.0.0.1:${run.stdout.match(/mock upstream on :(\d+)/)[1]}/v1`);
    assert.equal((await admin(run, 'GET', '/admin/keys')).json.length, 1);
    // The printed removal line removes it: then the key's model is gone.
    const remove = run.lines.find((l) => l.startsWith('  Remove the demo: '));
    const del = spawnSync('bash', ['-c', remove.replace('  Remove the demo: ', '') + ' -s -o /dev/null -w "%{http_code}"'], { encoding: 'utf8' });
    assert.match(del.stdout, /^20[04]$/, del.stderr);
    const after = await runCurl(curl.replace('curl -N ', 'curl -s -o /dev/null -w "%{http_code}" '));
    assert.notEqual(after.stdout, '200');
  } finally {
    await stopDev(run, 'SIGTERM');
  }
  // Deleted stays deleted: a third run does not bring it back.
  const again = await startDev({ state: state1 });
  try {
    assert.ok(!again.stdout.includes('curl -N '), again.stdout);
    assert.match(again.stdout, /the demo provider was deleted/);
    assert.equal((await admin(again, 'GET', '/admin/providers')).json.length, 0);
  } finally {
    await stopDev(again);
  }
});

test('--no-demo and LLMGW_NO_DEMO=1: no mock upstream, nothing registered', async () => {
  for (const opts of [{ args: ['--no-demo'] }, { env: { LLMGW_NO_DEMO: '1' } }]) {
    const run = await startDev({ state: path.join(root, `state-${crypto.randomBytes(3).toString('hex')}`), ...opts });
    try {
      assert.ok(!run.stdout.includes('curl -N '), run.stdout);
      assert.ok(!run.stdout.includes('Demo:'), run.stdout);
      assert.equal(spawnSync('pgrep', ['-g', String(run.proc.pid), '-f', 'mock_upstream/server.mjs']).status, 1, 'a mock upstream runs');
      assert.equal((await fetch(`${run.url}/health/ready`)).status, 200);
      assert.deepEqual((await admin(run, 'GET', '/admin/providers')).json, []);
      assert.equal((await admin(run, 'GET', '/admin/keys')).json.length, 0);
    } finally {
      await stopDev(run);
    }
  }
});

// The deployment shape: nginx (deploy/nginx/gateway.conf.template, rendered as in the nginx image)
// in front of the gateway. Tokens must still flow as they are produced, byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startStack, freePort, sleep, REPO } from './lib/harness.mjs';
import { connect, buildRequest } from './lib/http.mjs';
import { provision } from './lib/proxy_helpers.mjs';

let stack, nginx, nginxPort, key;

async function startNginx(dir, gatewayPort) {
  const port = await freePort();
  const template = fs.readFileSync(path.join(REPO, 'deploy/nginx/gateway.conf.template'), 'utf8');
  const site = template.replaceAll('${NGINX_PORT}', `127.0.0.1:${port}`)
    .replaceAll('${GATEWAY_ADDR}', `127.0.0.1:${gatewayPort}`);
  const prefix = path.join(dir, 'nginx');
  fs.mkdirSync(prefix, { recursive: true });
  fs.writeFileSync(path.join(prefix, 'site.conf'), site);
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), `
    worker_processes 1;
    pid ${prefix}/nginx.pid;
    error_log ${prefix}/error.log warn;
    events { worker_connections 256; }
    http {
      access_log off;
      client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy;
      fastcgi_temp_path ${prefix}/fcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;
      include ${prefix}/site.conf;
    }`);
  const proc = spawn('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'inherit' });
  for (let i = 0; i < 100; i++) {
    try { (await connect(port)).destroy(); return { proc, port }; } catch { await sleep(50); }
  }
  proc.kill('SIGKILL');
  throw new Error('nginx did not start');
}

before(async () => {
  stack = await startStack();
  ({ proc: nginx, port: nginxPort } = await startNginx(stack.dir, stack.gateway.port));
  ({ key } = await provision(stack));
});

after(async () => {
  if (nginx && nginx.exitCode === null) {
    nginx.kill('SIGQUIT');
    await new Promise((r) => { nginx.once('exit', r); setTimeout(r, 5000); });
  }
  await stack?.stop();
});

function chat(body) {
  return buildRequest('POST', '/v1/chat/completions', {
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body),
  });
}

test('health through nginx', async () => {
  const c = await connect(nginxPort);
  await c.write(buildRequest('GET', '/health/ready', { headers: { connection: 'close' } }));
  const r = await c.waitForResponse();
  c.destroy();
  assert.equal(r.statusCode, 200, r.text);
});

test('a stream through nginx arrives incrementally and byte-identical', async () => {
  const parts = ['data: {"a":"é', 'ü"}\n', '\n', 'data: {"b":1}\n\n', 'data: [DONE]\n\n'];
  const c = await connect(nginxPort);
  // include_usage: the client asked for usage, so the gateway forwards every byte as it arrives.
  // (Without it the gateway filters out the usage chunk it asked for, and an event split across
  // writes, like the first one here, waits for its end.)
  await c.write(chat({ model: 'gpt-test', stream: true, stream_options: { include_usage: true }, messages: [],
    mock: { raw_chunks: parts, chunk_interval_ms: 250 } }));
  const r = await c.waitForResponse({ timeoutMs: 10_000 });
  c.destroy();
  assert.equal(r.statusCode, 200, r.text);
  assert.equal(r.body.toString('utf8'), parts.join(''));
  // The first event must reach the client well before the upstream finished (~1 s of writes).
  const last = r.arrivals.at(-1).t;
  assert.ok(r.timeToFirstBodyByte < last - 600, `first body byte at ${r.timeToFirstBodyByte} ms, last at ${last} ms`);
});

test('errors keep their status and OpenAI shape through nginx', async () => {
  const c = await connect(nginxPort);
  await c.write(chat({ model: 'no-such-model', messages: [] }));
  const r = await c.waitForResponse();
  c.destroy();
  assert.equal(r.statusCode, 404);
  assert.equal(JSON.parse(r.body).error.code, 'model_not_found');
});

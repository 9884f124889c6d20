// Upstream TLS: certificates are verified against the trust store (plus UPSTREAM_CA_FILE), the host
// name must match, and SNI is sent. A throw-away CA is made with the openssl CLI for each run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { startStack } from './lib/harness.mjs';
import { adminOk, createKey, v1 } from './lib/proxy_helpers.mjs';

let stack, dir, key;
const servers = [];
const seen = [];  // {servername, authorization, body}

function openssl(...args) { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }); }

// A CA, and a server certificate for `name` signed by it.
function makeCerts() {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=llmgw test CA',
    '-keyout', 'ca.key', '-out', 'ca.pem');
  for (const name of ['localhost', 'wrong.example']) {
    fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=DNS:${name}\n`);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  }
}

function startTlsUpstream(certName) {
  const server = https.createServer({
    key: fs.readFileSync(path.join(dir, `${certName}.key`)),
    cert: fs.readFileSync(path.join(dir, `${certName}.pem`)),
  }, (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push({ servername: req.socket.servername, authorization: req.headers.authorization, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'chatcmpl-tls', object: 'chat.completion', model: JSON.parse(body).model, choices: [] }));
    });
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

async function providerFor(name, baseUrl) {
  const p = await adminOk(stack, 'POST', '/admin/providers', { name, kind: 'openai', api_key: 'sk-tls-upstream-key', base_url: baseUrl }, 201);
  await adminOk(stack, 'POST', '/admin/models', { name: `m-${name}`, provider_id: p.id, provider_model_name: 'up' }, 201);
}

const chat = (model) => v1(stack, 'POST', '/v1/chat/completions', {
  key, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [] }),
});

before(async () => {
  dir = fs.mkdtempSync(path.join((await import('node:os')).tmpdir(), 'llmgw-tls-'));
  makeCerts();
  stack = await startStack({ env: { UPSTREAM_CA_FILE: path.join(dir, 'ca.pem'), UPSTREAM_CONNECT_TIMEOUT: '3' } });
  const good = await startTlsUpstream('localhost');
  const wrong = await startTlsUpstream('wrong.example');
  await providerFor('good', `https://localhost:${good}/v1`);
  await providerFor('mismatch', `https://localhost:${wrong}/v1`);
  key = (await createKey(stack)).key;
});

after(async () => {
  await stack?.stop();
  for (const s of servers) s.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a certificate from a trusted CA for the right name: relayed, with SNI and the provider key', async () => {
  const r = await chat('m-good');
  assert.equal(r.statusCode, 200, r.text);
  assert.equal(r.json.id, 'chatcmpl-tls');
  const last = seen.at(-1);
  assert.equal(last.servername, 'localhost');
  assert.equal(last.authorization, 'Bearer sk-tls-upstream-key');
  assert.equal(JSON.parse(last.body).model, 'up');
});

test('a certificate for another host name is refused: 502 upstream_unavailable', async () => {
  const before = seen.length;
  const r = await chat('m-mismatch');
  assert.equal(r.statusCode, 502, r.text);
  assert.equal(r.json.error.code, 'upstream_unavailable');
  assert.equal(seen.length, before, 'no request may reach an unverified upstream');
});

test('without the CA in the trust store the same upstream is refused', async () => {
  await stack.gateway.restart({ UPSTREAM_CA_FILE: null });
  const before = seen.length;
  const r = await chat('m-good');
  assert.equal(r.statusCode, 502, r.text);
  assert.equal(r.json.error.code, 'upstream_unavailable');
  assert.equal(seen.length, before);
});

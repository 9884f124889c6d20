// Starts the e2e stack (PostgreSQL, Redis, the in-repo mock upstream, the gateway at WORKERS=1,
// request log on), makes one provider, one model and one key, warms up, then sends N non-stream
// chat completions one after another on one keep-alive connection, and stops everything.
// Used by bench/instr/run.sh under callgrind; LLMGW_BIN picks the binary (or a wrapper).
// STREAM_CHUNKS=n makes each request a stream of n events (see below).
import http from 'node:http';
import { startStack } from '../../test/e2e/lib/harness.mjs';
import { adminOk } from '../../test/e2e/lib/proxy_helpers.mjs';

const N = Number(process.env.N || 1000);
const stack = await startStack({ env: { WORKERS: '1' } });
try {
  const p = await adminOk(stack, 'POST', '/admin/providers', { name: 'oa', kind: 'openai', api_key: 'sk-up', base_url: stack.mock.url }, 201);
  await adminOk(stack, 'POST', '/admin/models', { name: 'm1', provider_id: p.id }, 201);
  // INSTR_KEY_LIMITS='{"rpm":...}': the key's limits (the cost of admission and reconcile).
  const limits = JSON.parse(process.env.INSTR_KEY_LIMITS || '{}');
  const k = await adminOk(stack, 'POST', '/admin/keys', { name: 'k', ...limits }, 201);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  // STREAM_CHUNKS=n: a streamed completion instead, n content events 1 ms apart (each its own read
  // at the gateway, as an LLM's tokens are), then the usage event and [DONE]. The mock makes them:
  // the request body stays small.
  const chunks = Number(process.env.STREAM_CHUNKS || 0);
  const streamed = chunks > 0 && {
    stream: true,
    stream_options: { include_usage: true },
    mock: { chunks, chunk_interval_ms: 1 },
  };
  const body = JSON.stringify({ model: 'm1', messages: [{ role: 'user', content: 'hi' }], ...(streamed || {}) });
  const headers = { authorization: `Bearer ${k.key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  const one = () => new Promise((resolve, reject) => {
    const r = http.request(`${stack.gateway.url}/v1/chat/completions`, { method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    r.on('error', reject);
    r.end(body);
  });
  for (let i = 0; i < 50; i++) await one();
  let ok = 0;
  for (let i = 0; i < N; i++) if ((await one()) === 200) ok++;
  if (ok !== N) throw new Error(`${N - ok} of ${N} requests failed`);
  console.log(`ok ${ok}`);
  agent.destroy();
} finally {
  await stack.stop();
}

// The relay never holds a whole body: relaying large responses, several at once, must not grow the
// gateway's peak memory (VmHWM) by anything near their size.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startStack } from './lib/harness.mjs';
import { connect, buildRequest } from './lib/http.mjs';
import { provision } from './lib/proxy_helpers.mjs';

let stack, key;
before(async () => {
  stack = await startStack();
  ({ key } = await provision(stack));
});
after(async () => { await stack?.stop(); });

const peakKiB = () => Number(fs.readFileSync(`/proc/${stack.gateway.proc.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]);

// Reads the response as it comes and keeps only its length, so the client is not the bottleneck.
async function download(bytes) {
  const c = await connect(stack.gateway.port);
  await c.write(buildRequest('POST', '/v1/chat/completions', {
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify({ model: 'gpt-test', messages: [], mock: { large_bytes: bytes, no_content_length: true } }),
  }));
  let total = 0;
  c.socket.removeAllListeners('data');
  c.socket.on('data', (b) => { total += b.length; });
  await new Promise((resolve) => c.socket.once('close', resolve));
  return total;
}

test('relaying 4 x 32 MiB at once raises peak RSS by less than 16 MiB', async () => {
  await download(1 << 20);  // warm-up: pools, buffers, first allocations
  const before = peakKiB();
  const sizes = await Promise.all([0, 1, 2, 3].map(() => download(32 << 20)));
  for (const n of sizes) assert.ok(n > 32 << 20, `short response: ${n} bytes`);
  const grew = peakKiB() - before;
  assert.ok(grew < 16 * 1024, `VmHWM grew by ${grew} KiB while relaying 128 MiB`);
});

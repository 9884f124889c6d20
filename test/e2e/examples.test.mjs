// deploy/admin-examples.sh is documentation that runs: every curl in it must keep working.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startStack, REPO } from './lib/harness.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { await stack?.stop(); });

test('deploy/admin-examples.sh runs top to bottom, twice', () => {
  for (let i = 0; i < 2; i++) {
    const r = spawnSync('bash', [path.join(REPO, 'deploy/admin-examples.sh')], {
      env: { ...process.env, GATEWAY: stack.gateway.url, ADMIN_KEY: stack.gateway.adminKey },
      encoding: 'utf8', timeout: 60_000,
    });
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /"key":"sk-[0-9a-f-]{36}"/);  // the key shown once, on create/rotate
    assert.doesNotMatch(r.stdout, /"error"/);
  }
});

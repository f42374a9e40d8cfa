// The worker pool's start-up check: a module that does not load is a fallback with a reason, not a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { rebuildSoftsegError, startPool } from '../src/worker-pool.js';

test('startPool: workers of a missing module are reported, with the reason, instead of trusted', async () => {
  const caller = pathToFileURL(join(process.cwd(), 'src', 'cache', 'encoder.ts')).href;
  const { pool, reason } = await startPool(caller, 'no-such-worker', 1, rebuildSoftsegError);
  assert.equal(pool, null);
  assert.match(reason ?? '', /no-such-worker/);
  const ok = await startPool(caller, 'encode-worker', 2, rebuildSoftsegError);
  assert.equal(ok.pool?.size, 2, ok.reason);
  await ok.pool!.close();
});

/**
 * The background re-encryption's waiting side. Its run paces itself with unref'd timers (it
 * must never hold a process open on its own), so `idle()` has to: a caller awaiting the end
 * of a run in a process with nothing else pending would otherwise see the process exit in the
 * middle of a pause, the awaited promise never settled (seen as a flaky ROT-01 test that was
 * cancelled with "Promise resolution is still pending but the event loop has already resolved").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

test('idle() keeps the process alive through the run\'s paced pause until the run ends', () => {
  const mod = new URL('./reencrypt.js', import.meta.url).href;
  // A custody whose first step re-seals one record (the run then pauses 50 ms at 20 records/s)
  // and whose second finds nothing left; nothing else in the process keeps it alive.
  const script = `
    import { Reencryptor } from ${JSON.stringify(mod)};
    let steps = 0;
    const custody = {
      keyring: { storage: { ids: () => (steps < 2 ? [1, 2] : [2]), current: 2 } },
      reencryptStep: async () => (++steps === 1 ? { found: 1, written: 1, failed: 0 } : { found: 0, written: 0, failed: 0 }),
      eraseOlder: async () => [1],
    };
    const job = new Reencryptor(() => custody, { ratePerSecond: 20 });
    job.kick();
    await job.idle();
    process.stdout.write('idle after ' + steps + ' steps');
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(out, 'idle after 2 steps');
});

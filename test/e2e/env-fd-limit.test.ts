/**
 * ENV-05: Nexus under `ulimit -n 128` and a connection flood. Expected: new connections fail
 * while the descriptors are gone (EMFILE at accept is handled, not a crash), an existing
 * client connection keeps working, and the service recovers once the flood stops.
 * Short form: one flood of 400 idle sockets from 8 other source addresses (one address alone
 * is capped at 32 handshaking sockets, which never reaches the limit).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Stack } from '../helpers/stack.js';
import { SocketPool, warnLines } from '../helpers/flood.js';
import { waitFor } from './secrets-helpers.js';

const FD_LIMIT = 128;
let stack: Stack;

before(async () => {
  stack = await Stack.start({ keepers: 3, threshold: 2 });
  await stack.killNexus();
  await stack.startNexus(1, { wrapper: ['sh', '-c', `ulimit -n ${FD_LIMIT} && exec "$@"`, 'sh'] });
  await stack.waitReady(60_000);
});
after(async () => {
  await stack?.stop();
});

function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

test('ENV-05: ulimit -n 128 plus a connection flood: EMFILE handled, the existing connection keeps working, the service recovers', { timeout: 120_000 }, async (t) => {
  const pid = stack.pid('nexus')!;
  assert.match(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'), new RegExp(`Max open files\\s+${FD_LIMIT}\\s`), 'Nexus runs under the limit');
  const warm = await stack.client('pilot');
  await warm.putSecret('env05/warm', { v: 'before' });
  const logFrom = stack.logs('nexus').length;

  const port = Number(new URL(stack.nexusUrl).port);
  const pools = Array.from({ length: 8 }, (_, i) => new SocketPool({ port, localAddress: `127.0.0.${i + 3}`, size: 50, maxPerSecond: 200 }));
  for (const p of pools) p.start();
  const opened = (): number => pools.reduce((n, p) => n + p.opened, 0);
  try {
    // The descriptors run out: Nexus holds (almost) all it may open.
    await waitFor(() => openFds(pid) >= FD_LIMIT - 2, 30_000, 'Nexus at its descriptor limit');
    await waitFor(() => opened() >= 400, 30_000, 'the flood running');
    // The warm connection keeps working while no new descriptor can be had.
    for (let i = 0; i < 10; i++) {
      await warm.putSecret('env05/warm', { v: `during-${i}` });
      assert.equal((await warm.getSecret('env05/warm'))['v'], `during-${i}`);
    }
  } finally {
    for (const p of pools) p.stop();
  }
  assert.equal(stack.nexusProcess()?.exitCode, null, 'Nexus is still running');
  // Recovered: a brand-new connection works again.
  await waitFor(async () => {
    const c = await stack.client('pilot', { timeoutMs: 5_000 });
    try {
      return (await c.getSecret('env05/warm'))['v'] === 'during-9';
    } catch {
      return false;
    } finally {
      await c.close();
    }
  }, 30_000, 'a new client connection after the flood');
  const warns = warnLines(stack.logs('nexus').slice(logFrom));
  t.diagnostic(`flood opened ${opened()}, shed ${pools.reduce((n, p) => n + p.closedByServer, 0)}; Nexus WARN+ lines ${warns.length}`);
  assert.ok(warns.length <= 20, `the log stays small: ${warns.length} lines, e.g. ${JSON.stringify(warns.slice(0, 3))}`);
});

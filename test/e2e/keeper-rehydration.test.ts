/**
 * Keeper re-hydration on real processes (issue 16 §5): a Keeper killed with SIGKILL and
 * started empty holds its share again within 10 s — through Nexus's status probe, not the
 * periodic re-push (left at its 5-minute default). That it is the RIGHT share is proven by
 * recovery: with the third Keeper gone, a restarted Nexus rebuilds the root key from the
 * re-hydrated Keeper and one other (threshold 2), each share verified against the stored
 * commitments, and reads a secret written before.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { KEEPER_DOWN_TIMERS, Stack } from '../helpers/stack.js';

const stacks: Stack[] = [];
after(async () => {
  for (const s of stacks) await s.stop();
});

async function keeperReady(stack: Stack, i: number): Promise<boolean> {
  try {
    return (await fetch(`${stack.keeperOpsUrl(i)}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

test('P12 a Keeper restarted empty holds its share again within 10 s, and recovery works from it', async () => {
  const stack = await Stack.start({ ops: true, nexusEnv: KEEPER_DOWN_TIMERS }); // Nexus restarts with Keeper 3 down
  stacks.push(stack);
  const c = await stack.client('pilot');
  await c.putSecret('rehydrate/a', { v: 'before' });
  for (let i = 1; i <= 3; i++) assert.equal(await keeperReady(stack, i), true, `keeper ${i} holds a share`);

  await stack.killKeeper(1, 'SIGKILL');
  const spawned = Date.now();
  await stack.startKeeper(1);
  const up = Date.now();
  assert.equal(await keeperReady(stack, 1), false, 'a restarted keeper starts empty');
  // Generous overall deadline; the assertion is on the measured time.
  const deadline = up + 60_000;
  while (!(await keeperReady(stack, 1))) {
    assert.ok(Date.now() < deadline, `keeper 1 never re-hydrated: ${stack.logs(stack.nexusName()).slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const took = Date.now() - up;
  process.stderr.write(`keeper re-hydrated ${took} ms after it listened (${Date.now() - spawned} ms after spawn)\n`);
  assert.ok(took < 10_000, `re-hydrated after ${took} ms`);
  // Nexus logs it once the Keeper's answer is in (just after the Keeper holds the share).
  while (!/keeper re-hydrated/.test(stack.logs(stack.nexusName()))) {
    assert.ok(Date.now() < deadline, 'nexus logged the re-hydration');
    await new Promise((r) => setTimeout(r, 100));
  }

  // The right share: recover with keeper 3 gone.
  await stack.killKeeper(3, 'SIGKILL');
  await stack.killNexus('SIGKILL');
  await stack.startNexus();
  await stack.waitReady(90_000);
  assert.equal((await (await stack.client('pilot')).getSecret('rehydrate/a'))['v'], 'before');
});

/**
 * FI-04 (short form) on the same stack: two of three Keepers stopped (below the threshold of
 * 2) while Nexus serves. Nexus holds its key in memory, so reads and writes go on with 0
 * errors; the status probe names each lost Keeper at WARN and raises the
 * `keepers_below_threshold` alarm once; Nexus does not exit; once restarted empty, both Keepers are
 * re-hydrated by the status probe within 10 s, and the writes made during the outage read
 * back. (The catalogue's full form holds the outage for 2 min and watches RSS; not here.)
 */
test('FI-04: Keepers below threshold while Nexus runs: 0 client errors, warnings name the lost Keepers, no crash, both re-hydrated after restart', async () => {
  const stack = stacks[0];
  assert.ok(stack, 'the stack of the test above');
  // The test above left Keeper 3 down; bring it back so the outage starts from 3 of 3.
  await stack.startKeeper(3);
  const deadline = Date.now() + 60_000;
  while (!(await keeperReady(stack, 3))) {
    assert.ok(Date.now() < deadline, 'keeper 3 re-hydrated before the outage');
    await new Promise((r) => setTimeout(r, 100));
  }
  const c = await stack.client('pilot');
  const logFrom = stack.logs(stack.nexusName()).length;
  await stack.killKeeper(2, 'SIGTERM');
  await stack.killKeeper(3, 'SIGTERM');

  const failures: string[] = [];
  let ops = 0;
  const loadUntil = Date.now() + 4_000;
  for (let i = 0; Date.now() < loadUntil && i < 2_000; i++) {
    try {
      await c.putSecret(`fi04/p${i % 8}`, { v: `outage-${i}` });
      const got = await c.getSecret(`fi04/p${i % 8}`);
      if (got['v'] !== `outage-${i}`) failures.push(`round ${i}: read ${String(got['v'])}`);
      ops += 2;
    } catch (e) {
      failures.push(`round ${i}: ${(e as { code?: string }).code ?? String(e)}`);
    }
  }
  assert.deepEqual(failures, [], 'serving unaffected');
  assert.ok(ops >= 20, `only ${ops} operations in 4 s`);
  assert.equal(stack.nexusProcess()?.exitCode, null, 'Nexus still running');
  const warned = (): string[] => stack.logs(stack.nexusName()).slice(logFrom).split('\n')
    .filter((l) => /"level":"warn"/.test(l) && /"msg":"keeper not answering"/.test(l));
  const alarm = (): boolean => stack.logs(stack.nexusName()).slice(logFrom).includes('"alarm":"keepers_below_threshold"');
  // Keeper 2 is named; Keeper 3 too unless its line from the test above (it was down then)
  // is within the 30 s log throttle, which then counts it into a "(repeated)" line.
  while (!warned().some((l) => l.includes('"keeperId":2,')) || !alarm()) {
    assert.ok(Date.now() < deadline, `no WARN lines for the lost keepers: ${stack.logs(stack.nexusName()).slice(logFrom).slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  await stack.startKeeper(2);
  await stack.startKeeper(3);
  const up = Date.now();
  while (!(await keeperReady(stack, 2)) || !(await keeperReady(stack, 3))) {
    assert.ok(Date.now() - up < 10_000, 'keepers 2 and 3 re-hydrated within 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (let j = 0; j < 8; j++) assert.match(String((await c.getSecret(`fi04/p${j}`))['v']), /^outage-\d+$/);
  await c.close();
});

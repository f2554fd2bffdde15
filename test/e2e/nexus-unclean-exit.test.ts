/**
 * FI-19 (error-log count equals the injected faults): a Nexus killed with SIGKILL is reported
 * once, at ERROR, by the next run on the same SQLite data folder (src/nexus/run-marker.ts); a
 * run stopped with SIGTERM is not reported, and neither is a first start.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Stack } from '../helpers/stack.js';

let stack: Stack;

before(async () => {
  stack = await Stack.start({});
});
after(async () => {
  await stack?.stop();
});

/** The current Nexus run's ERROR lines, as `event` fields. */
function errorEvents(): unknown[] {
  return stack.logLines('nexus', 'error').map((l) => l['event']);
}

test('FI-19: SIGKILL of Nexus is one ERROR line at the next start; SIGTERM and a first start are none', async () => {
  assert.deepEqual(errorEvents(), [], 'a first start reports nothing');
  assert.equal(fs.readFileSync(path.join(stack.dir, 'data', 'nexus.running'), 'utf8'), `${stack.pid('nexus')}\n`, 'the marker holds the pid only');

  await stack.killNexus('SIGKILL');
  await stack.startNexus();
  await stack.waitReady();
  assert.deepEqual(errorEvents(), ['unclean_exit']);

  await stack.killNexus('SIGTERM');
  assert.equal(fs.existsSync(path.join(stack.dir, 'data', 'nexus.running')), false, 'a clean shutdown removes the marker');
  await stack.startNexus();
  await stack.waitReady();
  assert.deepEqual(errorEvents(), [], 'after a clean shutdown: nothing');
});

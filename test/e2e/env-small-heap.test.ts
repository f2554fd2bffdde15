/**
 * ENV-06: Nexus with `--max-old-space-size=96` and 50 concurrent 900 KiB bodies. Expected:
 * every request gets an answer (stored, or refused with 413/429/503), never an
 * out-of-memory exit; Nexus serves normally afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Stack } from '../helpers/stack.js';
import { type RawHttps, rawHttps } from './attack-helpers.js';
import { warnLines } from '../helpers/flood.js';

const NEXUS_ID = 'spiffe://spike.ist/spike/nexus';
const BODIES = 50;
const KiB = 1024;
let stack: Stack;
let pilot: RawHttps;

before(async () => {
  stack = await Stack.start({ keepers: 3, threshold: 2 });
  await stack.killNexus();
  await stack.startNexus(1, { env: { NODE_OPTIONS: '--max-old-space-size=96' } });
  await stack.waitReady(60_000);
  pilot = await rawHttps(stack, 'pilot', NEXUS_ID);
});
after(async () => {
  pilot?.close();
  await stack?.stop();
});

function body(i: number): Buffer {
  const head = `{"path":"env06/big-${i}","values":{"v":"`;
  const tail = '"}}';
  const fill = 900 * KiB - head.length - tail.length;
  return Buffer.concat([Buffer.from(head), Buffer.alloc(fill, 0x61 + (i % 26)), Buffer.from(tail)]);
}

test('ENV-06: --max-old-space-size=96 and 50 concurrent 900 KiB bodies: answered (stored or 413/429/503), no out-of-memory exit', { timeout: 120_000 }, async (t) => {
  const pid = stack.pid('nexus')!;
  assert.match(fs.readFileSync(`/proc/${pid}/environ`, 'latin1'), /NODE_OPTIONS=--max-old-space-size=96/, 'Nexus runs with the small heap');
  const outcomes = await Promise.all(Array.from({ length: BODIES }, (_, i) =>
    pilot.send(stack.nexusUrl, { path: '/v1/store/secrets', body: body(i), contentType: 'application/json', timeoutMs: 60_000 })));
  const byStatus = new Map<string, number>();
  for (const o of outcomes) {
    const k = o.kind === 'answer' ? String(o.status) : `${o.kind}:${o.code ?? ''}`;
    byStatus.set(k, (byStatus.get(k) ?? 0) + 1);
  }
  t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(byStatus))}`);
  t.diagnostic(`nexus warnings: ${JSON.stringify(warnLines(stack.logs('nexus')).slice(0, 5))}`);
  assert.equal(stack.nexusProcess()?.exitCode, null, 'Nexus is still running');
  assert.ok(!/heap out of memory|FATAL ERROR/i.test(stack.logs('nexus')), 'no out-of-memory in the log');
  for (const o of outcomes) {
    assert.equal(o.kind, 'answer', `every request is answered: ${JSON.stringify(o)}`);
    assert.ok([200, 413, 429, 503].includes(o.status!), `status ${o.status}: ${o.body?.slice(0, 200)}`);
  }
  // Still serving: a small write and read.
  const ok = await pilot.send(stack.nexusUrl, { path: '/v1/store/secrets', body: Buffer.from('{"path":"env06/after","values":{"k":"v"}}') });
  assert.equal(ok.status, 200, ok.body);
});

// test-lane: waiting (mostly waits on trickled bodies and deadlines: scripts/run-tests.mjs runs it in the second lane)
/**
 * The Keeper API against real spike-keeper processes that hold no share yet (Bootstrap not
 * run), over real mTLS:
 * - KPR-07: the share GET before any share exists is SPIKE's "no shard" answer (400
 *   `{"shard":null,"Err":"api_bad_request"}`), never a zero array;
 * - KPR-02 / TLS-22: only Nexus reads a share: Bootstrap gets 401 in the Keeper's `Err` shape;
 *   the recover and restore roles, the Pilot superuser and another Keeper's SVID are refused
 *   at the handshake (no HTTP answer at all);
 * - KPR-11: a share sent to a Keeper never appears in its logs or in any error answer, in any
 *   encoding (hex either case, base64, base64url, the decimal JSON array, the BigInt decimal),
 *   across its error paths;
 * - KPR-12 (short form): 300 share PUTs from the Nexus identity in a burst: the last write
 *   wins, the Keeper stays up and its peak RSS stays bounded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { request, type Dispatcher } from 'undici';
import { Stack, TD } from '../helpers/stack.js';
import { WorkloadX509Source, authorizeIf, createMtlsDispatcher } from '../../src/spiffe/index.js';
import { trickle } from './attack-helpers.js';

const IDS = {
  'nexus-probe': `spiffe://${TD}/spike/nexus/probe`,
  'keeper-probe': `spiffe://${TD}/spike/keeper/probe`,
};
const isKeeperId = authorizeIf((id) => id.path === '/spike/keeper' || id.path.startsWith('/spike/keeper/'));

let stack: Stack;
const opened: Array<{ close(): Promise<void> | void }> = [];

before(async () => {
  stack = await Stack.start({ bootstrap: false, identities: IDS });
});
after(async () => {
  for (const o of opened.reverse()) await o.close();
  await stack?.stop();
});

async function dispatcherFor(identity: string): Promise<Dispatcher> {
  const source = await WorkloadX509Source.open({ endpoint: stack.socket(identity), timeoutMs: 15_000 });
  const d = createMtlsDispatcher({ source, authorizeServer: isKeeperId });
  opened.push({ close: () => source.close() }, { close: () => d.close() });
  return d;
}

async function post(d: Dispatcher, keeper: number, path: string, body: string): Promise<{ status: number; text: string }> {
  const r = await request(stack.keeperUrls[keeper - 1]! + path, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: d });
  return { status: r.statusCode, text: await r.body.text() };
}

/** A valid share value (non-zero, below the P-256 order): first byte 0x11, then `fill`. */
function shareValue(fill: number): number[] {
  return [0x11, ...new Array<number>(31).fill(fill)];
}

test('KPR-07: the share GET before any share exists is 400 {"shard":null,"Err":"api_bad_request"}, never a zero array', async () => {
  const nexus = await dispatcherFor('nexus-probe');
  for (const k of [1, 2, 3]) {
    const r = await post(nexus, k, '/v1/store/shard', '{}');
    assert.equal(r.status, 400, `keeper ${k}`);
    const j = JSON.parse(r.text) as Record<string, unknown>;
    assert.equal(j['shard'], null);
    assert.equal(j['Err'], 'api_bad_request');
  }
});

test('KPR-02 / TLS-22: Bootstrap gets 401 on the share GET; recover, restore, Pilot and another Keeper\'s SVID are refused at the handshake', async () => {
  const nexus = await dispatcherFor('nexus-probe');
  assert.equal((await post(nexus, 1, '/v1/store/contribute', JSON.stringify({ shard: shareValue(0x22) }))).status, 200);
  const boot = await dispatcherFor('bootstrap');
  const r = await post(boot, 1, '/v1/store/shard', '{}');
  assert.equal(r.status, 401);
  assert.deepEqual(JSON.parse(r.text), { shard: null, Err: 'access_unauthorized' });
  for (const who of ['recover', 'restore', 'pilot', 'keeper-probe']) {
    const d = await dispatcherFor(who);
    await assert.rejects(post(d, 1, '/v1/store/shard', '{}'), (e: unknown) => e instanceof Error, who);
    await assert.rejects(post(d, 1, '/v1/store/contribute', JSON.stringify({ shard: shareValue(0x33) })), (e: unknown) => e instanceof Error, who);
  }
  // Nothing those callers did changed the share.
  const held = JSON.parse((await post(nexus, 1, '/v1/store/shard', '{}')).text) as { shard: number[] };
  assert.deepEqual(held.shard, shareValue(0x22));
});

test('KPR-11: a share never appears in Keeper logs or error answers, in any encoding, across its error paths', async () => {
  const canary = [0x11, 0x5a, 0xc3, 0x07, 0xe9, 0x42, 0x9d, 0x18, 0x6b, 0xf0, 0x2e, 0x83, 0x71, 0xb4, 0x0c, 0xd6,
    0x39, 0xa8, 0x55, 0x1f, 0xe2, 0x67, 0x90, 0x4b, 0xcd, 0x26, 0x7e, 0xb1, 0x08, 0xf5, 0x63, 0x9a];
  const nexus = await dispatcherFor('nexus-probe');
  const boot = await dispatcherFor('bootstrap');
  const answers: string[] = [];
  const k = 2;
  answers.push((await post(nexus, k, '/v1/store/contribute', JSON.stringify({ shard: canary }))).text);
  const bad = [
    JSON.stringify({ shard: [...canary, 1] }),
    JSON.stringify({ shard: canary.slice(0, 31) }),
    JSON.stringify({ shard: canary, epoch: 0 }),
    JSON.stringify({ shard: canary, epoch: 1, id: 2, commitments: 'AQ==' }),
    JSON.stringify({ shard: canary, pending: true }),
    JSON.stringify({ shard: canary, shard2: canary }).replace('shard2', 'shard'),
    `{"shard":${JSON.stringify(canary)}`,
  ];
  for (const body of bad) {
    for (const d of [nexus, boot]) {
      const r = await post(d, k, '/v1/store/contribute', body);
      assert.ok(r.status >= 400 && r.status < 500, `${r.status} for ${body.slice(0, 40)}`);
      answers.push(r.text);
    }
  }
  answers.push((await post(boot, k, '/v1/store/shard', '{}')).text);
  const v = Buffer.from(canary);
  const encodings = [
    v.toString('hex'), v.toString('hex').toUpperCase(), v.toString('base64'), v.toString('base64url'),
    canary.join(','), BigInt('0x' + v.toString('hex')).toString(10),
  ];
  const logs = stack.logs(`keeper-${k}`);
  assert.ok(logs.length > 0, 'the Keeper logged something');
  for (const e of encodings) {
    assert.ok(!logs.includes(e), `the share reached the Keeper log (${e.slice(0, 8)}…)`);
    for (const a of answers) assert.ok(!a.includes(e), 'the share reached an error answer');
  }
});

test('KPR-12 (short form): 300 share PUTs from the Nexus identity in a burst: the last one wins, the Keeper stays up, RSS bounded', async () => {
  const nexus = await dispatcherFor('nexus-probe');
  const k = 3;
  const pid = stack.pid(`keeper-${k}`);
  assert.ok(pid !== undefined);
  const peakMiB = (): number => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  const before = peakMiB();
  const N = 300;
  const t0 = Date.now();
  for (let i = 0; i < N; i += 30) {
    await Promise.all(Array.from({ length: 30 }, (_, j) => post(nexus, k, '/v1/store/contribute', JSON.stringify({ shard: shareValue((i + j) % 250 + 1) })))
      .map(async (p) => assert.equal((await p).status, 200)));
  }
  const last = shareValue(251);
  assert.equal((await post(nexus, k, '/v1/store/contribute', JSON.stringify({ shard: last }))).status, 200);
  assert.ok(Date.now() - t0 < 60_000, 'the burst did not finish in a minute');
  const held = JSON.parse((await post(nexus, k, '/v1/store/shard', '{}')).text) as { shard: number[] };
  assert.deepEqual(held.shard, last, 'the last write wins');
  const growth = peakMiB() - before;
  assert.ok(before > 0 && growth < 32, `Keeper peak RSS grew ${growth.toFixed(1)} MiB over the burst`);
});

test('KPR-09 / SEC-02: a share PUT trickled at 1 byte/s gets 408 within 15 s and the connection is closed; the held share is unchanged', async () => {
  const nexus = await dispatcherFor('nexus-probe');
  const k = 1;
  const before = (await post(nexus, k, '/v1/store/shard', '{}')).text;
  const source = await WorkloadX509Source.open({ endpoint: stack.socket('nexus-probe'), timeoutMs: 15_000 });
  opened.push({ close: () => source.close() });
  const r = await trickle({ source, url: stack.keeperUrls[k - 1]!, serverId: `spiffe://${TD}/spike/keeper/${k}`, path: '/v1/store/contribute',
    body: JSON.stringify({ shard: shareValue(0x44) }), everyMs: 1_000, giveUpMs: 40_000 });
  assert.match(r.answer, /^HTTP\/1\.1 408 /, r.answer.slice(0, 80));
  assert.ok(r.answeredAfterMs > 0 && r.answeredAfterMs < 15_000, `answered after ${r.answeredAfterMs.toFixed(0)} ms`);
  assert.equal((await post(nexus, k, '/v1/store/shard', '{}')).text, before);
});

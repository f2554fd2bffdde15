/**
 * Hostile Keeper contribute bodies through the real Keeper router, guards and share slot
 * (in-process plain HTTP; the same bodies over real mTLS: test/e2e/recovery.test.ts):
 *   KPR-04  share elements 256, -1, 1.5, "7", null (and true, [], {}, 0x07) → 400;
 *   KPR-05  the all-zero share → 400;
 *   KPR-06  `shard` missing or null, a share beside an extra field that is itself bad, a
 *           duplicated `shard` member → 400.
 * Each refusal is `{"err":"api_bad_request"}` from Nexus and from Bootstrap alike; the share
 * the Keeper holds is unchanged (read back through the shard route as Nexus); neither the
 * answer nor the log carries the submitted or the held share in any encoding.
 *
 * Unknown extra fields next to a valid share are ignored, not refused: Keeper messages stay
 * extensible (additive fields from a newer Nexus, SPIKE senders; src/protocol/keeper.ts), a
 * deliberate difference from the catalogue's "extra fields → 400". The last test pins that.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/log.js';
import { loadTrustRoots, recognisers, PATHS } from '../protocol/index.js';
import { splitSecret, RootKey } from '../crypto/index.js';
import { keeperRouter } from './server.js';
import { ShareSlot } from './slot.js';
import { serveRouterAsTestPeer } from '../../test/helpers/router-server.js';

const NEXUS = 'spiffe://spike.ist/spike/nexus';
const BOOTSTRAP = 'spiffe://spike.ist/spike/bootstrap';

const logged: string[] = [];
const logger = createLogger({ component: 'keeper-test', level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => { logged.push(c.toString('utf8')); cb(); } }) });
const slot = new ShareSlot();
const router = keeperRouter(slot, recognisers(loadTrustRoots({})), logger);
const served = await serveRouterAsTestPeer(router);
const port = served.port;
after(() => served.close());

function post(path: string, body: string, peer: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json', 'x-test-peer': peer } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// The held share: Nexus's share 1 of a real sharing.
const root = RootKey.generate();
const sharing = splitSecret(root, 2, 3);
root.destroy();
const held = Uint8Array.from(sharing.shares[0]!.value);
const commitments = Buffer.from(sharing.commitments.toBytes()).toString('base64');
const heldBody = JSON.stringify({ shard: [...held], id: 1, epoch: 1, commitments });

/** A recognisable share-like canary: 31 elements 200..230 after the hostile first one. */
const CANARY = Array.from({ length: 31 }, (_, i) => 200 + i);
const withFirst = (first: string): string => `{"shard":[${first},${CANARY.join(',')}],"id":1,"epoch":1}`;

/** The held share as Nexus reads it back (hex). */
async function heldHex(): Promise<string> {
  const r = await post(PATHS.keeperShard, '{}', NEXUS);
  assert.equal(r.status, 200, r.text);
  return Buffer.from((JSON.parse(r.text) as { shard: number[] }).shard).toString('hex');
}

/** Every encoding of `bytes` a leak could take. */
function encodings(bytes: readonly number[]): string[] {
  const b = Buffer.from(bytes);
  return [bytes.join(','), bytes.join(', '), b.toString('hex'), b.toString('base64'), BigInt(`0x${b.toString('hex')}`).toString(10)];
}

async function assertRefused(bodies: readonly string[]): Promise<void> {
  assert.equal((await post(PATHS.keeperContribute, heldBody, NEXUS)).status, 200, 'the held share is in place');
  const before = await heldHex();
  const logStart = logged.length;
  for (const peer of [NEXUS, BOOTSTRAP]) {
    for (const body of bodies) {
      const r = await post(PATHS.keeperContribute, body, peer);
      assert.equal(r.status, 400, `${peer} ${body.slice(0, 60)} → ${r.text}`);
      assert.equal((JSON.parse(r.text) as { err: string }).err, 'api_bad_request');
      for (const enc of [...encodings(CANARY), ...encodings([...held])]) assert.ok(!r.text.includes(enc), 'no share in the answer');
    }
  }
  assert.equal(await heldHex(), before, 'the held share is unchanged');
  const lines = logged.slice(logStart).join('');
  for (const enc of [...encodings(CANARY), ...encodings([...held]), ...encodings(CANARY.slice(0, 8))]) {
    assert.ok(!lines.includes(enc), `no share in the log (${enc.slice(0, 16)}…)`);
  }
}

test('KPR-04: share elements 256, -1, 1.5, "7", null (and true, [], {}, 0x07) → 400, the held share unchanged, nothing echoed', async () => {
  await assertRefused(['256', '-1', '1.5', '"7"', 'null', 'true', '[]', '{}', '0x07'].map(withFirst));
});

test('KPR-05: the all-zero share → 400 (with or without id, epoch and commitments), the held share unchanged', async () => {
  const zero = new Array(32).fill(0).join(',');
  await assertRefused([
    `{"shard":[${zero}]}`,
    `{"shard":[${zero}],"id":1,"epoch":1}`,
    `{"shard":[${zero}],"id":1,"epoch":2,"commitments":"${commitments}"}`,
    `{"shard":[${zero}],"id":1,"epoch":2,"commitments":"${commitments}","pending":true}`,
  ]);
});

test('KPR-06: `shard` missing, null, or beside a bad extra field; `shard` twice → 400, the held share unchanged', async () => {
  const ok = `[${CANARY.join(',')},1]`;
  await assertRefused([
    '{}',
    '{"id":1,"epoch":1}',
    '{"shard":null}',
    '{"shard":null,"id":1,"epoch":1}',
    `{"Shard":${ok}}`,
    `{"shard":${ok},"id":"1"}`,
    `{"shard":${ok},"epoch":0}`,
    `{"shard":${ok},"pending":"yes"}`,
    `{"shard":${ok},"staged":1}`,
    `{"shard":${ok},"commitments":"***"}`,
    `{"shard":${ok},"shard":${ok}}`,
    `[${ok}]`,
    'null',
    '',
  ]);
});

test('KPR-06 (deliberate): an unknown extra field beside a valid share is ignored, so additive fields keep working', async () => {
  const r = await post(PATHS.keeperContribute, JSON.stringify({ shard: [...held], id: 1, epoch: 1, commitments, futureField: { x: 1 } }), NEXUS);
  assert.equal(r.status, 200, r.text);
  assert.equal(await heldHex(), Buffer.from(held).toString('hex'));
});

/**
 * The Keeper's additive routes through the real router and guards: `/v1/store/status` and
 * `/v1/store/anchor` answer Nexus only (Bootstrap and anyone else: 401); status never carries
 * a share value; an anchor is kept and shows in status and in the shard response; an
 * oversized anchor is refused (400) and changes nothing. A pending share without Feldman
 * commitments is refused (400) through the contribute route. Nexus's status poll (every few
 * seconds) is logged at debug when answered, a refused one at info.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/log.js';
import { loadTrustRoots, recognisers, MAX_ANCHOR_BYTES, PATHS } from '../protocol/index.js';
import { splitSecret, RootKey } from '../crypto/index.js';
import { keeperRouter } from './server.js';
import { ShareSlot } from './slot.js';
import { serveRouterAsTestPeer } from '../../test/helpers/router-server.js';
import { AnchorHolder } from './anchor.js';

const NEXUS = 'spiffe://spike.ist/spike/nexus';
const BOOTSTRAP = 'spiffe://spike.ist/spike/bootstrap';
const OTHER = 'spiffe://spike.ist/workload/app';

const ids = recognisers(loadTrustRoots({}));
const logLines: Array<Record<string, unknown>> = [];
const logger = createLogger({
  component: 'keeper-test',
  level: 'info',
  destination: new Writable({
    write: (c: Buffer, _e, cb) => {
      for (const line of c.toString('utf8').split('\n')) if (line !== '') logLines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  }),
});
const slot = new ShareSlot();
const anchor = new AnchorHolder();
const router = keeperRouter(slot, ids, logger, undefined, anchor);
const served = await serveRouterAsTestPeer(router);
const port = served.port;
after(() => served.close());

function post(path: string, body: unknown, peer: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json', 'x-test-peer': peer } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(parts).toString('utf8') || '{}') as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

test('keeper status: empty keeper → epoch/id null, pending null, no anchor', async () => {
  const r = await post(PATHS.keeperStatus, {}, NEXUS);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { epoch: null, id: null, pending: null });
});

test('keeper status and anchor: Nexus only (bootstrap and workloads get 401, nothing changes)', async () => {
  for (const peer of [BOOTSTRAP, OTHER]) {
    assert.equal((await post(PATHS.keeperStatus, {}, peer)).status, 401);
    assert.equal((await post(PATHS.keeperAnchor, { anchor: Buffer.from([1]).toString('base64') }, peer)).status, 401);
  }
  assert.equal(anchor.base64(), undefined);
});

test('keeper status poll: an answered poll writes no info line (it comes every few seconds); a refused or malformed one and other routes do', async () => {
  const requestLines = (route: string): Array<Record<string, unknown>> => logLines.filter((l) => l['msg'] === 'request' && l['route'] === route);
  logLines.length = 0;
  for (let i = 0; i < 3; i++) assert.equal((await post(PATHS.keeperStatus, {}, NEXUS)).status, 200);
  assert.deepEqual(requestLines(PATHS.keeperStatus), []);
  assert.equal((await post(PATHS.keeperStatus, {}, OTHER)).status, 401);
  assert.deepEqual(requestLines(PATHS.keeperStatus).map((l) => [l['level'], l['status'], l['caller']]), [['info', 401, OTHER]]);
  assert.equal((await post(PATHS.keeperStatus, [], NEXUS)).status, 400);
  assert.equal(requestLines(PATHS.keeperStatus).length, 2, 'a malformed poll is logged');
  assert.equal((await post(PATHS.keeperShard, {}, NEXUS)).status !== 0, true);
  assert.equal(requestLines(PATHS.keeperShard).length, 1, 'other routes keep their info line');
});

test('keeper anchor: kept, shown in status and in the shard response; status never has a share value', async () => {
  const root = RootKey.generate();
  const { shares, commitments } = splitSecret(root, 2, 3);
  const s1 = shares[0]!;
  slot.contribute('nexus', { value: s1.value, id: 1, epoch: 4, commitments });
  const a = Buffer.from('anchor-bytes').toString('base64');
  assert.equal((await post(PATHS.keeperAnchor, { anchor: a }, NEXUS)).status, 200);
  const st = await post(PATHS.keeperStatus, {}, NEXUS);
  assert.deepEqual(st.json, { epoch: 4, id: 1, pending: null, confirmed: true, anchor: a }, 'confirmed: Nexus sent the held share');
  assert.equal('shard' in st.json, false);
  const sh = await post(PATHS.keeperShard, {}, NEXUS);
  assert.equal(sh.json['anchor'], a);
  assert.equal(sh.json['epoch'], 4);
  root.destroy();
  slot.clear();
});

test('keeper anchor: oversized or malformed → 400, the held anchor stays', async () => {
  const held = anchor.base64();
  assert.equal((await post(PATHS.keeperAnchor, { anchor: Buffer.alloc(MAX_ANCHOR_BYTES + 1, 1).toString('base64') }, NEXUS)).status, 400);
  assert.equal((await post(PATHS.keeperAnchor, { anchor: '***' }, NEXUS)).status, 400);
  assert.equal((await post(PATHS.keeperAnchor, {}, NEXUS)).status, 400);
  assert.equal(anchor.base64(), held);
});

test('KPR-PENDING-COMMIT over HTTP: a pending share without commitments → 400 with one stable message, nothing held; with them it is kept', async () => {
  const root = RootKey.generate();
  const cur = splitSecret(root, 2, 3);
  const next = splitSecret(root, 2, 3);
  slot.contribute('nexus', { value: cur.shares[0]!.value, id: 1, epoch: 1, commitments: cur.commitments });
  const body = { shard: [...next.shares[0]!.value], id: 1, epoch: 2, pending: true };
  const r = await post(PATHS.keeperContribute, body, NEXUS);
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { err: 'api_bad_request', message: 'a pending share needs its share id and the Feldman commitments of its sharing' });
  assert.equal(slot.getPending(), undefined);
  const ok = await post(PATHS.keeperContribute, { ...body, commitments: Buffer.from(next.commitments.toBytes()).toString('base64') }, NEXUS);
  assert.equal(ok.status, 200);
  assert.equal(slot.getPending()?.epoch, 2);
  root.destroy();
  slot.clear();
});

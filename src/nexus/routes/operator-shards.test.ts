/**
 * `operator restore` refusing shards that are well formed but wrong, through the real router,
 * guards and restore route on a real SQLite store that holds a sharing and its key-check
 * record, with Nexus not ready (as after a crash with every Keeper lost). The same over real
 * processes, with a second deployment's shards: test/e2e/operator-restore.test.ts.
 *   OPR-06  a shard of another deployment (same id, any id) → 400, not counted, logged with
 *           the caller's SPIFFE ID and never the value; the collected set is kept; Nexus stays
 *           not ready; the store's records are unchanged; no Keeper push is started.
 *   OPR-09  a share value ≥ the group order n → 400, never reduced: the test's sharing has a
 *           share whose value v is small, so v + n ≡ v (mod n) would verify if it were
 *           reduced; v itself is then accepted (the refusal was the range check).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type RouteHarness, startRouteHarness } from '../../../test/helpers/route-harness.js';
import { Commitments, RootKey, splitSecret, type Share } from '../../crypto/index.js';
import { ORDER, randomNonZeroScalar, scalarToBytes } from '../../crypto/field.js';
import { PATHS } from '../../protocol/index.js';
import { KEY_CHECK_RECORD, SqliteStore } from '../../store/index.js';
import { KeyState, type SharingInfo } from '../keys/state.js';
import { SHARING_RECORD, adoptKey } from '../keys/sharing.js';
import { operatorRoutes } from './operator.js';

const RESTORE = 'spiffe://spike.ist/spike/pilot/role/restore';

interface Deployment { root: RootKey; shares: Share[]; commitments: Commitments }

/** A real 2-of-3 sharing of a random key. */
function deployment(): Deployment {
  const root = RootKey.generate();
  const { shares, commitments } = splitSecret(root, 2, 3);
  return { root, shares, commitments };
}

/** A 2-of-3 sharing whose share 1 has the value 5 (the line through (1, 5) and (2, r)). */
function smallShareDeployment(): Deployment {
  const r = randomNonZeroScalar();
  const mod = (x: bigint): bigint => ((x % ORDER) + ORDER) % ORDER;
  const a1 = mod(r - 5n);
  const a0 = mod(5n - a1);
  const f = (x: bigint): bigint => mod(a0 + a1 * x);
  const shares = [1n, 2n, 3n].map((x) => ({ id: Number(x), value: scalarToBytes(f(x)) }));
  assert.equal(f(1n), 5n);
  return { root: RootKey.fromScalar(a0), shares, commitments: Commitments.fromCoefficients([a0, a1]) };
}

interface Rig {
  h: RouteHarness;
  store: SqliteStore;
  pushes: () => number;
  audit: Array<[string, Record<string, unknown>]>;
  records: () => Promise<string>;
  done: () => Promise<void>;
}

/** A store initialised with `d`'s key and sharing; Nexus not ready; pushes and audit events counted. */
async function rig(d: Deployment): Promise<Rig> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-opr-'));
  const file = path.join(dir, 'spike.db');
  const first = new SqliteStore({ file });
  const sharing: SharingInfo = { epoch: 1, threshold: 2, shares: 3, commitments: d.commitments };
  const setup = new KeyState();
  await adoptKey(first, setup, RootKey.fromBytes(d.root.bytes()), d.shares.slice(0, 2), sharing);
  setup.clear();
  await first.close();
  const store = new SqliteStore({ file }); // reopened: locked, as after a restart
  const h = await startRouteHarness({ modules: [operatorRoutes], store, keyless: true });
  let pushes = 0;
  const audit: Array<[string, Record<string, unknown>]> = [];
  Object.assign(h.ctx, {
    sync: { pushNow: () => { pushes++; return Promise.resolve(); } },
    audit: { event: (name: string, fields: Record<string, unknown>) => { audit.push([name, fields]); } },
  });
  const records = async (): Promise<string> => {
    const [k, s] = await Promise.all([store.getSystem(KEY_CHECK_RECORD), store.getSystem(SHARING_RECORD)]);
    return `${Buffer.from(k ?? []).toString('hex')}/${Buffer.from(s ?? []).toString('hex')}`;
  };
  return {
    h, store, pushes: () => pushes, audit, records,
    done: async () => {
      await h.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const body = (s: Share): { id: number; shard: number[] } => ({ id: s.id, shard: [...s.value] });

/** Every encoding a leaked share value could take in an answer or a log. */
function encodings(v: Uint8Array): string[] {
  const b = Buffer.from(v);
  return [[...b].join(','), b.toString('hex'), b.toString('base64'), BigInt(`0x${b.toString('hex')}`).toString(10)];
}

async function refused(r: Rig, b: unknown, label: string): Promise<void> {
  const res = await r.h.post(PATHS.restore, b, RESTORE);
  assert.equal(res.status, 400, `${label}: ${res.body}`);
  assert.equal((res.json as { err: string }).err, 'api_bad_request', label);
  assert.equal(r.h.ctx.keys.isReady(), false, `${label}: Nexus stays not ready`);
}

test('OPR-06: a well-formed shard of another deployment → 400, not counted, logged with the caller and never the value; the collected set is kept; no key, no store change, no Keeper push', async () => {
  const a = deployment();
  const b = deployment();
  const r = await rig(a);
  try {
    const before = await r.records();
    const logStart = r.h.logs().length;
    for (const s of b.shares) await refused(r, body(s), `other deployment, id ${s.id}`);
    // Nothing was counted: the first right shard is 1 of 2.
    const first = await r.h.post(PATHS.restore, body(a.shares[0]!), RESTORE);
    assert.deepEqual(first.json, { collected: 1, remaining: 1, restored: false });
    // A wrong shard after a right one: refused, and the right one is kept.
    await refused(r, body(b.shares[1]!), 'other deployment after one collected');
    await refused(r, body(b.shares[0]!), 'other deployment, id already collected');
    const again = await r.h.post(PATHS.restore, body(a.shares[0]!), RESTORE);
    assert.deepEqual(again.json, { collected: 1, remaining: 1, restored: false }, 'the collected set is kept');
    assert.equal(r.pushes(), 0, 'no Keeper push while refusing');
    assert.equal(await r.records(), before, 'the store\'s key-check and sharing records are unchanged');

    const logs = r.h.logs().slice(logStart);
    const lines = logs.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const refusals = lines.filter((l) => l['msg'] === 'restore shard refused');
    assert.equal(refusals.length, 5);
    for (const l of refusals) {
      assert.equal(l['caller'], RESTORE, 'logged with the submitter\'s SPIFFE ID');
      assert.equal(l['reason'], 'shard_unverified');
    }
    assert.equal(r.audit.filter(([n]) => n === 'restore.shard_refused').length, 5);
    for (const s of [...b.shares, ...a.shares]) {
      for (const enc of encodings(s.value)) assert.ok(!logs.includes(enc), 'no shard value in the log');
    }

    // The right second shard completes the restore with A's key; then (only then) the push.
    const done = await r.h.post(PATHS.restore, body(a.shares[2]!), RESTORE);
    assert.deepEqual(done.json, { collected: 2, remaining: 0, restored: true });
    assert.ok(r.h.ctx.keys.root().equals(a.root), 'the restored key is this deployment\'s');
    assert.equal(r.pushes(), 1);
  } finally {
    await r.done();
  }
});

test('OPR-09: a share value ≥ the group order is refused, never reduced mod n; the value itself is accepted', async () => {
  const d = smallShareDeployment();
  const r = await rig(d);
  try {
    const small = d.shares[0]!;
    const high = (v: bigint): number[] => [...Buffer.from(v.toString(16).padStart(64, '0'), 'hex')];
    for (const [label, v] of [['5 + n', 5n + ORDER], ['n', ORDER], ['n + 1', ORDER + 1n], ['2^256 − 1', (1n << 256n) - 1n]] as const) {
      const res = await r.h.post(PATHS.restore, { id: 1, shard: high(v) }, RESTORE);
      assert.equal(res.status, 400, `${label}: ${res.body}`);
      assert.equal((res.json as { err: string }).err, 'api_bad_request');
      assert.ok(!res.body.includes(high(v).join(',')), 'no echo');
    }
    assert.equal(r.pushes(), 0);
    // 5 itself verifies and is counted as the first shard: the refusals were the range check.
    const ok = await r.h.post(PATHS.restore, body(small), RESTORE);
    assert.deepEqual(ok.json, { collected: 1, remaining: 1, restored: false });
    const done = await r.h.post(PATHS.restore, body(d.shares[1]!), RESTORE);
    assert.deepEqual(done.json, { collected: 2, remaining: 0, restored: true });
    assert.ok(r.h.ctx.keys.root().equals(d.root));
  } finally {
    await r.done();
  }
});

test('OPR-06 backup before a refresh: shards of another sharing of the same key are refused with the recorded epoch and what to use instead', async () => {
  const a = deployment();
  const r = await rig(a);
  try {
    const later = splitSecret(a.root, 2, 3); // what a share refresh gives: the same key, new shares
    const res = await r.h.post(PATHS.restore, body(later.shares[0]!), RESTORE);
    assert.equal(res.status, 400);
    const msg = (res.json as { message?: string }).message ?? res.body;
    assert.match(msg, /sharing epoch 1;/);
    assert.match(msg, /exported before that refresh/);
    for (const enc of encodings(later.shares[0]!.value)) assert.ok(!res.body.includes(enc), 'no shard value in the answer');
    assert.equal(r.h.ctx.keys.isReady(), false);
  } finally {
    await r.done();
  }
});

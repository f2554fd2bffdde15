/**
 * ATTACK planted anchor counter, and rollbacks under a running Nexus: the rollback anchor's
 * counter continues only from a MAC-verified stored value that never goes back. A record
 * planted in the database (a huge counter, or a plausible one, with a MAC Nexus did not
 * make), a record that vanished, or a verified record older than one already read back is a
 * rollback: the chain reports it (the guard then refuses to serve) and refuses the write as
 * retryable; nothing is laundered into a sealed record and nothing overflows. Real sqlite
 * store, real anchor key.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../crypto/index.js';
import { createLogger } from '../../lib/log.js';
import { ANCHOR_RECORD, MAX_ANCHOR_COUNTER, SqliteStore, StoreError, anchorPrefix } from '../../store/index.js';
import { AnchorKey } from './mac.js';
import { AnchorChain, type RuntimeRollback } from './sealer.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const silent = createLogger({ component: 't', level: 'silent', destination: new Writable({ write(_c, _e, cb) { cb(); } }) });

/** A record with `counter` and a MAC nobody computed under the anchor key. */
const planted = (counter: bigint): Uint8Array => Buffer.concat([anchorPrefix(counter), randomBytes(32)]);

async function armedStore(): Promise<{ s: SqliteStore; root: RootKey; key: AnchorKey; chain: AnchorChain; refusals: [RuntimeRollback, bigint | undefined][] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-anchor-attack-'));
  dirs.push(dir);
  const s = new SqliteStore({ file: path.join(dir, 'spike.db') });
  const root = RootKey.generate();
  await s.unlock(root);
  const key = new AnchorKey(root);
  const refusals: [RuntimeRollback, bigint | undefined][] = [];
  const chain = new AnchorChain({ key, logger: silent, committed: 0n, onRollback: (c, n) => { refusals.push([c, n]); } });
  s.anchor.arm(chain.seal);
  return { s, root, key, chain, refusals };
}

/** The attacker writes the database behind Nexus's back (the store's own write path, unarmed). */
async function plant(s: SqliteStore, chain: AnchorChain, record: Uint8Array): Promise<void> {
  s.anchor.disarm();
  await s.putSystem(ANCHOR_RECORD, record);
  s.anchor.arm(chain.seal);
}

const refusedBusy = (e: unknown): boolean => e instanceof StoreError && e.code === 'store_busy';

test('ATTACK planted anchor counter: a huge or plausible unverified counter is a rollback: reported, the write refused (retryable), nothing laundered or overflowed', async () => {
  for (const fake of [MAX_ANCHOR_COUNTER, MAX_ANCHOR_COUNTER - 1n, 1000n]) {
    const { s, root, key, chain, refusals } = await armedStore();
    await s.putSecret('a/1', { k: 'v' });
    await s.putSecret('a/2', { k: 'v' });
    assert.equal(key.open(await s.anchor.read()), 2n);
    await plant(s, chain, planted(fake));
    await assert.rejects(s.putSecret('a/3', { k: 'v' }), refusedBusy);
    assert.deepEqual(refusals, [['unverified', undefined]]);
    assert.equal(await s.getSecret('a/3'), null, 'the refused write changed nothing');
    assert.equal(key.open(await s.anchor.read()), undefined, 'nothing sealed over the planted record');
    await s.close();
    root.destroy();
  }
});

test('anchor chain: a record that vanished, or a verified one older than one read back, is a rollback; a record never stored is a fresh start', () => {
  const root = RootKey.generate();
  const key = new AnchorKey(root);
  const refusals: RuntimeRollback[] = [];
  const chain = new AnchorChain({ key, logger: silent, committed: 0n, onRollback: (c) => { refusals.push(c); } });
  assert.equal(key.open(chain.seal(null, 0n)), 1n, 'a store that never had a record starts at 1');
  assert.equal(key.open(chain.seal(null, 0n)), 1n, 'a first record whose transaction rolled back: still a fresh start');
  const r40 = key.seal(40n);
  assert.equal(key.open(chain.seal(r40, 0n)), 41n, 'continues from the verified stored value');
  assert.equal(chain.committed, 40n);
  assert.equal(key.open(chain.seal(r40, 45n)), 45n, 'at least min (accept-rollback)');
  assert.throws(() => chain.seal(key.seal(10n), 0n), refusedBusy);
  assert.throws(() => chain.seal(null, 0n), refusedBusy);
  assert.throws(() => chain.seal(key.seal(40n), 0n), refusedBusy, 'another record at the counter read: another history');
  assert.deepEqual(refusals, ['behind', 'vanished', 'diverged']);
  key.destroy();
  root.destroy();
});

test('anchor chain: an adopted record (start-up check, accept-rollback) is the base once; after a rotation the old key still verifies', () => {
  const root = RootKey.generate();
  const key = new AnchorKey(root);
  const odd = planted(7n);
  const refusals: RuntimeRollback[] = [];
  const adopted = new AnchorChain({ key, logger: silent, committed: 3n, adopt: odd, onRollback: (c) => { refusals.push(c); } });
  assert.equal(key.open(adopted.seal(odd, 20n)), 20n, 'accept-rollback: the unverified record is the base, min wins');
  assert.equal(key.open(adopted.seal(odd, 0n)), 8n, 'the same record again (the first transaction rolled back): counting continues above the 7 it claims');
  assert.equal(key.open(adopted.seal(key.seal(20n), 0n)), 21n);
  assert.throws(() => adopted.seal(odd, 0n), refusedBusy, 'once a verified record was seen, the adopted one is history');
  assert.deepEqual(refusals, ['unverified']);

  const newKey = new AnchorKey(RootKey.generate());
  const rotated = new AnchorChain({ key: newKey, previous: key, logger: silent, committed: 21n, onRollback: () => assert.fail('no rollback') });
  assert.equal(newKey.open(rotated.seal(key.seal(22n), 0n)), 23n, 'a record under the old key (a write during the re-key) verifies');
  assert.equal(newKey.open(rotated.seal(newKey.seal(23n), 0n)), 24n);
  key.destroy();
  newKey.destroy();
  root.destroy();
});

test('attack-rollback-one-write-behind: a copy put back only one write behind is refused, at the next write and at the periodic look (the store tells the chain each record it committed)', async () => {
  const { s, root, key, chain, refusals } = await armedStore();
  s.anchor.arm(chain.seal, chain.noteCommitted);
  await s.putSecret('a/1', { k: '1' });
  const copy = await s.anchor.read(); // the record of a copy taken now
  await s.putSecret('a/2', { k: '2' }); // one write after the copy
  assert.equal(chain.committed, key.open((await s.anchor.read())!), 'the committed record is known without reading it back');
  // the copy put back under the running Nexus (only its anchor matters here)
  s.anchor.disarm();
  await s.putSystem(ANCHOR_RECORD, copy!);
  s.anchor.arm(chain.seal, chain.noteCommitted);
  assert.throws(() => chain.check(copy), refusedBusy, 'the periodic look refuses it');
  await assert.rejects(s.putSecret('a/3', { k: '3' }), refusedBusy, 'and so does the next write');
  assert.deepEqual(refusals.map(([c]) => c), ['behind', 'behind']);
  await s.close();
  key.destroy();
  root.destroy();
});

test('anchor chain: a read answered after a fresher one was applied (a slow postgres connection) is no rollback; one older than what was known when it was issued is', () => {
  const root = RootKey.generate();
  const key = new AnchorKey(root);
  const refusals: RuntimeRollback[] = [];
  const chain = new AnchorChain({ key, logger: silent, committed: 0n, onRollback: (c) => { refusals.push(c); } });
  const r1 = key.seal(1n);
  chain.check(r1);
  const issuedAt = chain.mark(); // an advance's read is issued now (it will answer r1, late)
  chain.check(key.seal(2n)); // the periodic look's read, issued later, answered first
  assert.equal(key.open(chain.seal(r1, 0n, issuedAt)), 2n, 'sealed on what was read (its swap then finds the store moved on)');
  assert.equal(chain.committed, 2n, 'nothing learnt from the late answer');
  assert.deepEqual(refusals, []);
  assert.throws(() => chain.seal(key.seal(0n), 0n, issuedAt), refusedBusy, 'older than what was known when issued');
  assert.throws(() => chain.seal(r1, 0n), refusedBusy, 'a read issued now is held to everything known');
  assert.deepEqual(refusals, ['behind', 'behind']);
  key.destroy();
  root.destroy();
});

test('anchor chain: after a crash between a root switch and its re-key, counting continues above the adopted old-key record, also past one more an old-root process wrote meanwhile; an older one, or a planted counter near the top, is not a base', () => {
  const oldRoot = RootKey.generate();
  const oldKey = new AnchorKey(oldRoot);
  const root = RootKey.generate();
  const key = new AnchorKey(root);
  const refusals: RuntimeRollback[] = [];
  const o1000 = oldKey.seal(1000n);
  const chain = new AnchorChain({ key, logger: silent, committed: 0n, adopt: o1000, onRollback: (c) => { refusals.push(c); } });
  const o1001 = oldKey.seal(1001n); // another instance, still on the old root, advanced once more
  assert.equal(key.open(chain.seal(o1001, 0n)), 1002n, 'no counter used twice: other processes\' evidence and the history stay true');
  assert.equal(refusals.length, 0);
  const back = new AnchorChain({ key, logger: silent, committed: 0n, adopt: o1000, onRollback: (c) => { refusals.push(c); } });
  assert.throws(() => back.seal(oldKey.seal(999n), 0n), refusedBusy, 'an older unverifiable record is no base');
  assert.deepEqual(refusals, ['unverified']);
  const top = planted(MAX_ANCHOR_COUNTER - 5n);
  const planted0 = new AnchorChain({ key, logger: silent, committed: 0n, adopt: top, onRollback: (c) => { refusals.push(c); } });
  assert.equal(key.open(planted0.seal(top, 0n)), 1n, 'a counter without room above it is not continued');
  for (const k of [oldKey, key]) k.destroy();
  oldRoot.destroy();
  root.destroy();
});

/**
 * ATTACK planted anchor counter: the rollback anchor's counter continues only from a
 * MAC-verified stored value. A record planted in the database (a huge counter, or a plausible
 * one, with a MAC Nexus did not make) is never trusted: writes go on, the counter continues
 * from the last verified value, the record is replaced by a verified one, and an ERROR alarm
 * says so. Real sqlite store, real anchor key.
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
import { ANCHOR_RECORD, MAX_ANCHOR_COUNTER, SqliteStore, anchorCounter, anchorPrefix } from '../../store/index.js';
import { AnchorKey } from './mac.js';
import { AnchorChain } from './sealer.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => string } {
  const chunks: string[] = [];
  const logger = createLogger({ component: 't', level: 'debug', destination: new Writable({ write(c: Buffer, _e, cb) { chunks.push(c.toString()); cb(); } }) });
  return { logger, lines: () => chunks.join('') };
}

/** A record with `counter` and a MAC nobody computed under the anchor key. */
const planted = (counter: bigint): Uint8Array => Buffer.concat([anchorPrefix(counter), randomBytes(32)]);

async function armedStore(): Promise<{ s: SqliteStore; root: RootKey; key: AnchorKey; chain: AnchorChain; lines: () => string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-anchor-attack-'));
  dirs.push(dir);
  const s = new SqliteStore({ file: path.join(dir, 'spike.db') });
  const root = RootKey.generate();
  await s.unlock(root);
  const key = new AnchorKey(root);
  const { logger, lines } = capture();
  const chain = new AnchorChain({ key, logger, floor: 0n });
  s.anchor.arm(chain.seal);
  return { s, root, key, chain, lines };
}

/** The attacker writes the database behind Nexus's back (the store's own write path, unarmed). */
async function plant(s: SqliteStore, chain: AnchorChain, record: Uint8Array): Promise<void> {
  s.anchor.disarm();
  await s.putSystem(ANCHOR_RECORD, record);
  s.anchor.arm(chain.seal);
}

test('ATTACK planted anchor counter: a huge unverified counter does not break writes; the counter continues from the last verified value; alarm', async () => {
  const { s, root, key, chain, lines } = await armedStore();
  await s.putSecret('a/1', { k: 'v' });
  await s.putSecret('a/2', { k: 'v' });
  assert.equal(key.open(await s.anchor.read()), 2n);
  for (const huge of [MAX_ANCHOR_COUNTER, MAX_ANCHOR_COUNTER - 1n]) {
    await plant(s, chain, planted(huge));
    const before = chain.floor;
    await s.putSecret('a/3', { k: 'v' }); // before the fix: RangeError in the batch → every write failed
    const after = await s.anchor.read();
    assert.equal(key.open(after), before + 1n, 'verified, one above the last verified value');
    assert.equal(anchorCounter(after), before + 1n);
  }
  assert.deepEqual({ ...(await s.getSecret('a/3'))?.values }, { k: 'v' });
  assert.match(lines(), /"alarm":"anchor_record_unverified"/);
  assert.equal(lines().match(/anchor_record_unverified/g)?.length, 1, 'at most one alarm a minute');
  await s.close();
  root.destroy();
});

test('ATTACK planted anchor counter: a plausible unverified counter is not laundered into a sealed one', async () => {
  const { s, root, key, chain } = await armedStore();
  await s.putSecret('a/1', { k: 'v' });
  await plant(s, chain, planted(1000n));
  await s.putSecret('a/2', { k: 'v' });
  assert.equal(key.open(await s.anchor.read()), 2n, 'not 1001');
  // advance(min) (accept-rollback) still jumps to at least min (its own batch is a write too)
  assert.ok((key.open(await s.anchor.advance(50n)) ?? 0n) >= 50n);
  await s.close();
  root.destroy();
});

test('anchor chain: continues from a verified stored value (even below its floor: a store that went back is not hidden); a vanished record is an alarm', () => {
  const root = RootKey.generate();
  const key = new AnchorKey(root);
  const { logger, lines } = capture();
  const chain = new AnchorChain({ key, logger, floor: 0n });
  assert.equal(key.open(chain.seal(null, 0n)), 1n, 'a store that never had a record starts at 1');
  assert.equal(key.open(chain.seal(key.seal(40n), 0n)), 41n);
  assert.equal(key.open(chain.seal(key.seal(10n), 0n)), 11n, 'the verified store value, not the floor');
  assert.equal(chain.floor, 41n);
  assert.equal(lines(), '');
  assert.equal(key.open(chain.seal(null, 0n)), 42n, 'the record vanished: continue from the floor');
  assert.match(lines(), /anchor_record_unverified/);
  // a rotation's re-key: the old key's record, named as known, is no alarm
  const newKey = new AnchorKey(RootKey.generate());
  const oldRecord = key.seal(42n);
  const quiet = capture();
  const next = new AnchorChain({ key: newKey, logger: quiet.logger, floor: 42n, known: { record: oldRecord, counter: 42n } });
  assert.equal(newKey.open(next.seal(oldRecord, 0n)), 43n);
  assert.equal(quiet.lines(), '');
  key.destroy();
  newKey.destroy();
  root.destroy();
});

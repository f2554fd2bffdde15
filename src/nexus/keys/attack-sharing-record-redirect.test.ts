/**
 * Attack: a database writer redirects Nexus's share pushes. The sharing record says which
 * Keeper URL holds which share; whoever can write the database (a leaked PostgreSQL
 * credential, write access to the SQLite file or to a backup put back) rewrote its Keeper
 * list, so that after the next restart Nexus rebuilt the key from the real Keepers and then
 * pushed every share to URLs the attacker controls (a Keeper SVID is all such a URL needs to
 * show): the whole root key from one below-threshold Keeper plus the database.
 *
 * Now the record carries a tag under the root key (sharing-tag.ts), and a sharing read from
 * the database is installed only when its tag verifies (or, for a record written before tags,
 * when it names exactly the configured Keepers). Real SQLite files, real recovery and re-push
 * (KeeperSync), Keepers as real share slots behind a fake client (test/helpers/fake-keepers.ts).
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { RootKey, splitSecret, wipeShare } from '../../crypto/index.js';
import { createLogger } from '../../lib/log.js';
import { SqliteStore } from '../../store/index.js';
import { FakeKeepers, bootstrapped, logger, mover, urls } from '../../../test/helpers/fake-keepers.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { waitFor } from '../../../test/helpers/mtls-harness.js';
import { KeeperSync } from './recovery.js';
import { resyncSharing } from './resync.js';
import { AdoptError, SHARING_RECORD, adoptKey, encodeSharing, loadSharing } from './sharing.js';
import { KeyState } from './state.js';

const PEERS = urls(3);
const EVIL = ['https://evil-a', 'https://evil-b', 'https://evil-c'];

/** A bootstrapped SQLite file: its root key, and Keepers holding the epoch-1 shares of `peers`. */
async function bootstrappedFile(peers = PEERS): Promise<{ file: string; root: RootKey; k: FakeKeepers }> {
  const file = path.join(tempDir('spike-redirect-'), 'spike.db');
  const root = RootKey.generate();
  const split = splitSecret(root, 2, 3);
  const store = new SqliteStore({ file });
  await adoptKey(store, new KeyState(), RootKey.fromBytes(root.bytes()), split.shares.slice(0, 2), { epoch: 1, threshold: 2, shares: 3, commitments: split.commitments, peers });
  await store.close();
  const k = new FakeKeepers();
  peers.forEach((u, i) => k.slot(u).contribute('nexus', { value: split.shares[i]!.value, id: i + 1, epoch: 1, commitments: split.commitments }));
  split.shares.forEach(wipeShare);
  return { file, root, k };
}

/** The attacker: rewrites the stored sharing record with plain database access. */
function rewriteRecord(file: string, edit: (record: Record<string, unknown>) => void): void {
  const db = new Database(file);
  try {
    const row = db.prepare('SELECT value FROM system WHERE key = ?').get(SHARING_RECORD) as { value: Buffer };
    const record = JSON.parse(row.value.toString('utf8')) as Record<string, unknown>;
    edit(record);
    db.prepare('UPDATE system SET value = ? WHERE key = ?').run(Buffer.from(JSON.stringify(record)), SHARING_RECORD);
  } finally {
    db.close();
  }
}

/** A Nexus start on `file` configured with `peers`; resolves once the key is installed or refused (then stopped). */
async function restart(file: string, k: FakeKeepers, peers = PEERS, acceptUntaggedSharing = false, done?: (lines: string[]) => boolean): Promise<{ keys: KeyState; refused: boolean }> {
  const lines: string[] = [];
  const log = createLogger({ component: 't', level: 'info', destination: new Writable({ write(c: Buffer, _e, cb) { lines.push(c.toString()); cb(); } }) });
  const store = new SqliteStore({ file });
  const keys = new KeyState();
  const sync = new KeeperSync({ peers, threshold: 2, shares: 3, client: k.client(), store, keys, logger: log, initialBackoffMs: 5, maxBackoffMs: 10, pushIntervalMs: 60_000, acceptUntaggedSharing });
  const refused = (): boolean => lines.some((l) => /sharing_record_(untrusted|untagged|missing)/.test(l));
  sync.start();
  try {
    await waitFor(() => (keys.isReady() && (done ? done(lines) : k.sent.length >= peers.length)) || refused(), 'the key installed and pushed, or refused', 10_000);
    return { keys, refused: refused() };
  } finally {
    await sync.stop();
    await store.close();
  }
}

test('control: an untouched record is adopted and the shares go back to the configured Keepers', async () => {
  const { file, root, k } = await bootstrappedFile();
  const { keys, refused } = await restart(file, k);
  assert.equal(refused, false);
  assert.ok(keys.root().equals(root));
  assert.deepEqual([...new Set(k.sent.map((s) => s.url))].sort(), [...PEERS].sort());
});

for (const [name, edit] of [
  ['Keeper list replaced, tag kept', (r: Record<string, unknown>) => { r['peers'] = EVIL; }],
  ['Keeper list permuted (each Keeper would get a second share), tag kept', (r: Record<string, unknown>) => { r['peers'] = [PEERS[1], PEERS[2], PEERS[0]]; }],
  ['Keeper list replaced and the tag removed (passes for a record written before tags)', (r: Record<string, unknown>) => { r['peers'] = EVIL; delete r['tag']; }],
  // Downgraded to look like a record written before tags, naming the configured list (or no
  // list): Nexus would push by configured position, which differs from where the Keepers are
  // whenever the configuration changed and the reshare has not run yet.
  ['tag removed, Keeper list kept as configured', (r: Record<string, unknown>) => { delete r['tag']; }],
  ['tag and Keeper list removed', (r: Record<string, unknown>) => { delete r['tag']; delete r['peers']; }],
  ['Keeper list replaced and tagged under another root key', (r: Record<string, unknown>) => {
    const other = RootKey.generate();
    const split = splitSecret(other, 2, 3);
    const forged = JSON.parse(Buffer.from(encodeSharing({ epoch: 1, threshold: 2, shares: 3, commitments: split.commitments, peers: EVIL }, other)).toString('utf8')) as Record<string, unknown>;
    r['peers'] = EVIL;
    r['tag'] = forged['tag'];
    split.shares.forEach(wipeShare);
  }],
] as const) {
  test(`attack-sharing-record-redirect: ${name}: no key installed, no share sent anywhere`, async () => {
    const { file, k } = await bootstrappedFile();
    rewriteRecord(file, edit);
    const { keys, refused } = await restart(file, k);
    assert.equal(refused, true, 'the adoption was refused as untrusted');
    assert.equal(keys.isReady(), false);
    assert.deepEqual(k.sent, [], 'no share was pushed to any Keeper');
  });
}

test('attack-sharing-record-replay: a validly tagged record naming a Keeper no longer configured (decommissioned, or an old record put back) gets that Keeper no share', async () => {
  // The record was written by Nexus itself when https://k9 was one of its Keepers; the
  // configuration has since replaced it by https://k3 (the start-up reshare moves the
  // sharing later). Whoever holds k9's address and a Keeper SVID now must get nothing.
  const old = [PEERS[0]!, PEERS[1]!, 'https://k9'];
  const { file, root, k } = await bootstrappedFile(old);
  k.recipients = new Set(PEERS); // KeeperClient's shareRecipients: the configured Keepers
  const { keys, refused } = await restart(file, k, PEERS, false, (lines) => lines.some((l) => l.includes('outside SPIKE_NEXUS_KEEPER_PEERS')));
  assert.equal(refused, false, 'the record itself is genuine');
  assert.ok(keys.root().equals(root));
  assert.ok(k.sent.length > 0, 'the configured Keepers it names were sent their shares');
  assert.deepEqual(k.sent.filter((x) => x.url === 'https://k9'), [], 'no share went to the Keeper outside the configuration');
});

test('attack-sharing-record-redirect: the sharing record deleted (the key-check record kept) is damage, not a first start', async () => {
  const { file, k } = await bootstrappedFile();
  const db = new Database(file);
  db.prepare('DELETE FROM system WHERE key = ?').run(SHARING_RECORD);
  db.close();
  const { keys, refused } = await restart(file, k);
  assert.equal(refused, true);
  assert.equal(keys.isReady(), false);
  assert.deepEqual(k.sent, []);
});

test('upgrade: a record written before tags is adopted only with SPIKE_NEXUS_ACCEPT_UNTAGGED_SHARING, and only naming the configured Keepers; it is then tagged', async () => {
  const { file, root, k } = await bootstrappedFile();
  rewriteRecord(file, (r) => { delete r['tag']; });
  const { keys, refused } = await restart(file, k, PEERS, true);
  assert.equal(refused, false);
  assert.ok(keys.root().equals(root));
  assert.deepEqual(keys.sharing()?.peers, PEERS);
  const db = new Database(file);
  const row = db.prepare('SELECT value FROM system WHERE key = ?').get(SHARING_RECORD) as { value: Buffer };
  db.close();
  assert.equal(typeof (JSON.parse(row.value.toString('utf8')) as { tag?: unknown }).tag, 'string', 'written back with its tag');
  k.sent.length = 0;
  const again = await restart(file, k);
  assert.equal(again.refused, false, 'the next start needs no opt-in');
  const other = await bootstrappedFile();
  rewriteRecord(other.file, (r) => { delete r['tag']; r['peers'] = EVIL; });
  assert.equal((await restart(other.file, other.k, PEERS, true)).refused, true, 'never one naming other Keepers');
});

test('a changed Keeper list in the configuration still adopts the tagged record (the move to the new list follows)', async () => {
  const { file, root, k } = await bootstrappedFile();
  const configured = [PEERS[0]!, PEERS[1]!, 'https://k9'];
  const { keys, refused } = await restart(file, k, configured);
  assert.equal(refused, false);
  assert.ok(keys.root().equals(root));
  assert.deepEqual(keys.sharing()?.peers, PEERS, 'the stored (tagged) list is the live one until the reshare');
});

test('attack-sharing-record-redirect: several Nexus on one database: a moved sharing whose Keeper list was rewritten is not switched to', async () => {
  const { root, store, keys, k } = await bootstrapped(2, PEERS);
  const b = new KeyState(); // a second Nexus on the same database, holding epoch 1
  b.install(RootKey.fromBytes(root.bytes()), k.sharesAt(PEERS, 1).slice(0, 2), (await loadSharing(store))!);
  await mover(store, keys, k).move('refresh', { threshold: 2, shares: 3, peers: PEERS });
  const moved = JSON.parse(Buffer.from((await store.getSystem(SHARING_RECORD))!).toString('utf8')) as Record<string, unknown>;
  await store.putSystem(SHARING_RECORD, Buffer.from(JSON.stringify({ ...moved, peers: EVIL })));
  const sent = k.sent.length;
  assert.equal(await resyncSharing({ store, keys: b, client: k.client(), peers: PEERS, logger }), 'failed');
  assert.equal(b.sharing()?.epoch, 1, 'still on its own sharing');
  await store.putSystem(SHARING_RECORD, Buffer.from(JSON.stringify(moved)));
  assert.equal(await resyncSharing({ store, keys: b, client: k.client(), peers: PEERS, logger }), 'updated', 'control: the untouched record is switched to');
  assert.equal(k.sent.length, sent, 'resync sends nothing either way');
});

test('attack-sharing-record-redirect: the tampered record deleted between Nexus reading it and the adoption: still refused, nothing written', async () => {
  const { file, root } = await bootstrappedFile();
  rewriteRecord(file, (r) => { r['peers'] = EVIL; });
  const store = new SqliteStore({ file });
  try {
    const stored = (await loadSharing(store))!; // what a recovery pass read at its start
    // The attacker removes the record (and, in a second round, the key-check record too)
    // right before the adoption's transaction, hoping for the first-start path.
    for (const keys of [[SHARING_RECORD], [SHARING_RECORD, 'kcv']]) {
      const db = new Database(file);
      for (const k of keys) db.prepare('DELETE FROM system WHERE key = ?').run(k);
      db.close();
      const state = new KeyState();
      await assert.rejects(adoptKey(store, state, RootKey.fromBytes(root.bytes()), [], stored, { trust: { configuredPeers: PEERS } }),
        (e: unknown) => e instanceof AdoptError && ['sharing_record_missing', 'sharing_record_untrusted'].includes(e.code), keys.join('+'));
      assert.equal(state.isReady(), false);
      assert.equal(await store.getSystem(SHARING_RECORD), null, 'no record written');
    }
  } finally {
    await store.close();
  }
});

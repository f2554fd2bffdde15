/**
 * The anchor pusher with a fake store anchor and a fake Keeper client: a round sends the
 * store's record to every Keeper; writes are debounced into one more round; the probe's
 * status makes it re-send to a Keeper lacking the latest; a Keeper holding a verified anchor
 * above the store is never overwritten (`onBehind`, or an ERROR alarm without it), unless
 * the store holds as much (another Nexus pushed it), in which case it catches up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { RootKey } from '../../crypto/index.js';
import { createLogger } from '../../lib/log.js';
import type { KeeperClient } from '../../keeper/index.js';
import type { CommitAnchor } from '../../store/index.js';
import { AnchorKey } from './mac.js';
import { AnchorPusher } from './pusher.js';

function fixture(onBehind?: (keeper: bigint, store: bigint) => void) {
  const root = RootKey.generate();
  const key = new AnchorKey(root);
  let stored: Uint8Array | null = key.seal(5n);
  const sent: { url: string; counter: bigint | undefined }[] = [];
  const lines: string[] = [];
  const logger = createLogger({ component: 't', destination: new Writable({ write: (c: Buffer, _e, cb) => { lines.push(c.toString('utf8')); cb(); } }) });
  const anchor: CommitAnchor = {
    arm: () => undefined, disarm: () => undefined, onWrite: undefined,
    read: async () => stored, current: async () => stored, advance: async () => { throw new Error('unused'); },
  };
  const client = { putAnchor: async (url: string, a: Uint8Array) => { sent.push({ url, counter: key.open(a) }); } } as unknown as KeeperClient;
  const pusher = new AnchorPusher({ peers: ['k1', 'k2'], client, anchor, key, logger, debounceMs: 20, timeoutMs: 100, ...(onBehind ? { onBehind } : {}) });
  return {
    key, anchor, pusher, sent, lines,
    setStored: (c: bigint) => { stored = key.seal(c); },
    setRecord: (r: Uint8Array | null) => { stored = r; },
    done: async () => { await pusher.stop(); key.destroy(); root.destroy(); },
  };
}

const settle = (ms = 80) => new Promise((r) => setTimeout(r, ms));

test('anchor pusher: a round sends the store record to every keeper; writes are debounced into one more round', async () => {
  const f = fixture();
  await f.pusher.pushAll();
  assert.deepEqual(f.sent.map((s) => [s.url, s.counter]), [['k1', 5n], ['k2', 5n]]);
  f.pusher.start(); // first round now
  await settle();
  f.sent.length = 0;
  f.setStored(6n);
  for (let i = 0; i < 10; i++) f.anchor.onWrite?.();
  await settle();
  assert.deepEqual(f.sent.map((s) => s.counter), [6n, 6n], 'ten writes, one round');
  await f.done();
});

test('anchor pusher: status without the latest anchor → re-sent to that keeper only', async () => {
  const f = fixture();
  await f.pusher.pushAll();
  f.sent.length = 0;
  f.pusher.onStatus(2, { epoch: 1, id: 2, pending: null, anchor: undefined });
  f.pusher.onStatus(1, { epoch: 1, id: 1, pending: null, anchor: f.key.seal(5n) });
  f.pusher.onStatus(1, { epoch: 1, id: 1, pending: null, anchor: Buffer.from('forged') });
  await settle();
  assert.deepEqual(f.sent.map((s) => s.url), ['k2', 'k1'], 'missing and unverifiable anchors are replaced; the latest is left alone');
  await f.done();
});

test('anchor pusher: a keeper ahead of the store is never overwritten and raises an alarm', async () => {
  const f = fixture();
  await f.pusher.pushAll();
  f.sent.length = 0;
  f.pusher.onStatus(1, { epoch: 1, id: 1, pending: null, anchor: f.key.seal(9n) });
  await settle();
  assert.equal(f.sent.length, 0);
  assert.match(f.lines.join(''), /rollback_anchor_ahead/);
  await f.done();
});

test('anchor pusher: a keeper ahead because another Nexus pushed (the store holds as much) → catch up, no alarm', async () => {
  const f = fixture();
  await f.pusher.pushAll();
  f.sent.length = 0;
  f.setStored(9n);
  f.pusher.onStatus(1, { epoch: 1, id: 1, pending: null, anchor: f.key.seal(9n) });
  await settle();
  assert.equal(f.sent.length, 0);
  assert.doesNotMatch(f.lines.join(''), /rollback_anchor_ahead/);
  assert.equal(f.pusher.latest(), 9n);
  await f.done();
});

test('anchor pusher: a keeper ahead of a store that verifies lower (or holds no record) → onBehind, never overwritten; an unverified store record is left to the guard', async () => {
  const behind: [bigint, bigint][] = [];
  const f = fixture((k, s) => behind.push([k, s]));
  await f.pusher.pushAll();
  f.sent.length = 0;
  f.pusher.onStatus(1, { epoch: 1, id: 1, pending: null, anchor: f.key.seal(9n) });
  await settle();
  f.setRecord(null);
  f.pusher.onStatus(2, { epoch: 1, id: 2, pending: null, anchor: f.key.seal(9n) });
  await settle();
  assert.deepEqual(behind, [[9n, 5n], [9n, 0n]]);
  f.setRecord(Buffer.from('planted-record-that-does-not-verify'));
  f.pusher.onStatus(1, { epoch: 1, id: 1, pending: null, anchor: f.key.seal(9n) });
  await settle();
  assert.equal(behind.length, 2);
  assert.equal(f.sent.length, 0);
  await f.done();
});

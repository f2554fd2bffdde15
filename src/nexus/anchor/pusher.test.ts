/**
 * The anchor pusher with a fake store anchor and fake Keepers (each holds what was last put):
 * a round sends the store's record to every Keeper; writes are debounced into one more round;
 * the probe's status makes it re-send to a Keeper lacking the latest; a Keeper holding a
 * verified anchor above the latest is never overwritten, by a status or by a round (each push
 * asks first), and is handed to `onAhead` (the guard compares it with the store).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { RootKey } from '../../crypto/index.js';
import { createLogger } from '../../lib/log.js';
import type { KeeperClient, KeeperStatus } from '../../keeper/index.js';
import type { CommitAnchor } from '../../store/index.js';
import { AnchorKey } from './mac.js';
import { AnchorPusher } from './pusher.js';

function fixture() {
  const root = RootKey.generate();
  const key = new AnchorKey(root);
  let stored: Uint8Array | null = key.seal(5n);
  const sent: { url: string; counter: bigint | undefined }[] = [];
  const held = new Map<string, Uint8Array | undefined>();
  const ahead: bigint[] = [];
  let keeperEpoch = 1;
  const logger = createLogger({ component: 't', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const anchor: CommitAnchor = {
    arm: () => undefined, disarm: () => undefined, onWrite: undefined,
    read: async () => stored, current: async () => stored, advance: async () => { throw new Error('unused'); },
    recorded: async () => new Map(),
  };
  const client = {
    status: async (url: string): Promise<KeeperStatus> => ({ epoch: keeperEpoch, id: 1, pending: null, anchor: held.get(url) }),
    putAnchor: async (url: string, a: Uint8Array) => { sent.push({ url, counter: key.open(a) }); held.set(url, a); },
  } as unknown as KeeperClient;
  const pusher = new AnchorPusher({ peers: ['k1', 'k2'], client, anchor, key, logger, debounceMs: 20, timeoutMs: 100, onAhead: (c) => ahead.push(c), epoch: () => 1 });
  return {
    key, anchor, pusher, sent, ahead,
    setStored: (c: bigint) => { stored = key.seal(c); },
    /** What Keeper `url` holds now (another process put it, or it restarted empty). */
    keeperHolds: (url: string, c: bigint | undefined) => { held.set(url, c === undefined ? undefined : key.seal(c)); },
    /** The Keepers moved to sharing epoch `e` (this process stays at 1). */
    keepersAt: (e: number) => { keeperEpoch = e; },
    /** What Keeper `url` holds, as raw bytes. */
    keeperHoldsRaw: (url: string, record: Uint8Array) => { held.set(url, record); },
    held: (url: string) => held.get(url),
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
  f.keeperHolds('k2', undefined); // restarted empty
  f.pusher.onStatus(2, { epoch: 1, id: 2, pending: null, anchor: undefined });
  f.pusher.onStatus(1, { epoch: 1, id: 1, pending: null, anchor: f.key.seal(5n) });
  await settle();
  assert.deepEqual(f.sent.map((s) => s.url), ['k2'], 'the missing anchor is replaced; the latest is left alone');
  f.sent.length = 0;
  f.keeperHolds('k1', undefined);
  f.pusher.onStatus(1, { epoch: 1, id: 1, pending: null, anchor: Buffer.from('forged') });
  await settle();
  assert.deepEqual(f.sent.map((s) => s.url), ['k1'], 'an unverifiable anchor is replaced');
  await f.done();
});

test('anchor pusher: a keeper ahead is never overwritten by a status; a round that finds it ahead hands it to onAhead', async () => {
  const f = fixture();
  await f.pusher.pushAll();
  f.sent.length = 0;
  f.keeperHolds('k1', 9n);
  f.pusher.onStatus(1, { epoch: 1, id: 1, pending: null, anchor: f.key.seal(9n) });
  await settle();
  assert.equal(f.sent.length, 0);
  await f.pusher.pushAll();
  assert.deepEqual(f.sent.map((s) => s.url), [], 'k1 is ahead, k2 already holds the latest');
  assert.deepEqual(f.ahead, [9n]);
  await f.done();
});

test('attack-rollback-evidence-overwritten: a process that has not seen the rollback yet never pushes its lower counter over the evidence another one handed the Keepers', async () => {
  const f = fixture();
  await f.pusher.pushAll(); // both hold 5
  f.keeperHolds('k1', 20n);
  f.keeperHolds('k2', 20n); // another process found a rollback and handed over 20
  f.setStored(13n); // this one writes on the copy put back
  f.sent.length = 0;
  f.pusher.start();
  f.anchor.onWrite?.();
  await settle();
  assert.deepEqual(f.sent, [], 'nothing sent');
  assert.ok(f.ahead.length >= 2 && f.ahead.every((c) => c === 20n), `onAhead: ${f.ahead.join(',')}`);
  await f.done();
});

test('attack-rotation-anchor-overwrite: a process still on the old root leaves the new root\'s anchors on Keepers that moved to a newer sharing; an unverifiable anchor on a Keeper of its own epoch is replaced', async () => {
  const f = fixture();
  const newRoot = RootKey.generate();
  const newKey = new AnchorKey(newRoot);
  try {
    await f.pusher.pushAll();
    f.sent.length = 0;
    const theirs = newKey.seal(7n); // pushed by the process that rotated the root
    f.keeperHoldsRaw('k1', theirs);
    f.keeperHoldsRaw('k2', theirs);
    f.keepersAt(2);
    await f.pusher.pushAll();
    f.pusher.onStatus(1, { epoch: 2, id: 1, pending: null, anchor: theirs });
    await settle();
    assert.equal(f.sent.length, 0, 'nothing pushed over the new root\'s anchors');
    assert.deepEqual(f.held('k1'), theirs);
    f.keepersAt(1); // same epoch: an anchor this process cannot verify is garbage to it, and is replaced
    await f.pusher.pushAll();
    assert.deepEqual(f.sent.map((s) => s.url).sort(), ['k1', 'k2']);
  } finally {
    newKey.destroy();
    newRoot.destroy();
    await f.done();
  }
});

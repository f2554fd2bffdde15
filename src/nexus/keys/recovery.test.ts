/**
 * A Nexus waiting for Keeper shares says so at WARN at a steady rate, naming have/need,
 * which Keepers (by configured position) answered, held no share or could not be reached,
 * and what to do — not only on every 10th pass.
 */
import { Writable } from 'node:stream';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../lib/log.js';
import { KeeperCallError, type KeeperClient } from '../../keeper/index.js';
import { MemoryStore } from '../../store/memory.js';
import { KeeperSync } from './recovery.js';
import { KeyState } from './state.js';

test('not ready: one WARN line per interval with have/need, keepers by answer, and advice', async () => {
  const out: string[] = [];
  const logger = createLogger({ component: 't', level: 'warn', destination: new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }) });
  const peers = ['https://k1', 'https://k2', 'https://k3'];
  const client = {
    fetchShare: async (url: string) => {
      if (url === 'https://k2') throw new KeeperCallError('keeper_bad_status', 400);
      throw new KeeperCallError('keeper_unreachable');
    },
  } as unknown as KeeperClient;
  const sync = new KeeperSync({
    peers, threshold: 2, shares: 3, client, store: new MemoryStore(), keys: new KeyState(), logger,
    initialBackoffMs: 10, maxBackoffMs: 20, pushIntervalMs: 60_000, notReadyLogIntervalMs: 150,
  });
  sync.start();
  await sleep(400);
  await sync.stop();
  const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const notReady = lines.filter((l) => l['event'] === 'not_ready');
  // 400 ms at a 150 ms period: 2 lines, although dozens of passes ran
  assert.ok(notReady.length >= 1 && notReady.length <= 3, JSON.stringify(notReady));
  const l = notReady[0]!;
  assert.equal(l['level'], 'warn');
  assert.deepEqual([l['have'], l['need'], l['answered'], l['noShare'], l['unreachable']], [0, 2, [], [2], [1, 3]]);
  assert.match(String(l['msg']), /^Nexus not ready: 0 of 2 needed Keeper shares \(keepers answered with a share: none; no share: 2; unreachable: 1,3\); /);
  // the memory store holds no sharing record: not bootstrapped yet
  assert.match(String(l['msg']), /run SPIKE Bootstrap/);
  // no timer left behind after stop
  const before = out.length;
  await sleep(300);
  assert.equal(out.length, before);
});

test('ENV-03: a Keeper whose SVID this host refuses for its dates is logged with the verdict and the clock-skew hint, not only as unreachable', async () => {
  const out: string[] = [];
  const logger = createLogger({ component: 't', level: 'warn', destination: new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }) });
  const expired = Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' });
  const client = {
    fetchShare: async (url: string) => {
      if (url === 'https://k1') throw new KeeperCallError('keeper_unreachable', undefined, { cause: Object.assign(new Error('fetch failed'), { cause: expired }) });
      throw new KeeperCallError('keeper_unreachable', undefined, { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) });
    },
  } as unknown as KeeperClient;
  const sync = new KeeperSync({
    peers: ['https://k1', 'https://k2'], threshold: 2, shares: 2, client, store: new MemoryStore(), keys: new KeyState(), logger,
    initialBackoffMs: 10, maxBackoffMs: 20, pushIntervalMs: 60_000, notReadyLogIntervalMs: 60_000,
  });
  const lines = (): Record<string, unknown>[] => out.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['msg'] === 'keeper share unavailable');
  sync.start();
  try {
    for (let i = 0; i < 500 && !(lines().some((l) => l['keeperId'] === 1) && lines().some((l) => l['keeperId'] === 2)); i++) await sleep(10);
  } finally {
    await sync.stop();
  }
  const k1 = lines().find((l) => l['keeperId'] === 1);
  const k2 = lines().find((l) => l['keeperId'] === 2);
  assert.ok(k1 && k2, out.join(''));
  assert.equal(k1['reason'], 'keeper_unreachable');
  assert.equal(k1['certTime'], 'CERT_HAS_EXPIRED');
  assert.equal(k1['hint'], "server SVID expired by this host's clock; check for clock skew between this host, the server and the SPIFFE agent");
  assert.equal(k2['reason'], 'keeper_unreachable');
  assert.equal(k2['certTime'], undefined);
  assert.equal(k2['hint'], undefined);
});

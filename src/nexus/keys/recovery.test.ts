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

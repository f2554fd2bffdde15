/** The `npm start` banner: exact commands, with SPIKE_DEV_DIR=<dir> on every spike line when it is set. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bannerLines } from './banner.js';

const base = { cwd: '/home/me/spike-ts', opsUrls: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], auditLog: '/home/me/spike-ts/.spike/audit/audit.log' };

test('default folder: plain `npx spike …` lines, in the folder npm start runs in', () => {
  const lines = bannerLines({ ...base, dir: '/home/me/spike-ts/.spike', devDirSet: false });
  assert.equal(lines[0], 'SPIKE ready');
  assert.ok(lines.includes('From another terminal, in /home/me/spike-ts:'));
  assert.ok(lines.includes('  npx spike secret get secrets/db/creds'));
  assert.ok(lines.every((l) => !l.includes('SPIKE_DEV_DIR')));
  assert.ok(lines.includes('Recovery shards (written into /home/me/spike-ts/.spike/recovery):'));
  assert.ok(lines.includes('  npx spike operator recover'));
  // command lines are commands only (copy-pasteable): no trailing notes
  for (const l of lines.filter((x) => x.includes('npx spike'))) assert.doesNotMatch(l, /\s\(|#/, l);
  assert.ok(lines.includes('  keeper-1 http://127.0.0.1:2/readyz  http://127.0.0.1:2/metrics'));
});

test('SPIKE_DEV_DIR set: every spike command carries it (shell-quoted when needed)', () => {
  const lines = bannerLines({ ...base, dir: '/tmp/my dev', devDirSet: true });
  const spikeLines = lines.filter((l) => l.includes('npx spike'));
  assert.ok(spikeLines.length >= 5);
  for (const l of spikeLines) assert.match(l, /SPIKE_DEV_DIR='\/tmp\/my dev' npx spike /);
  assert.ok(lines.includes("  SPIKE_DEV_DIR='/tmp/my dev' npx spike secret get secrets/db/creds"));
});

/**
 * D12 durability on real processes: a child (test/e2e/fixtures/store-writer.ts) runs 16
 * concurrent writers on the sqlite store and prints each acknowledged write; the test
 * `kill -9`s it at a random moment, reopens the same file, and checks that every
 * acknowledged write reads back exactly. Ten rounds on one file (recovery after recovery).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { REPO_ROOT } from '../helpers/bin.js';
import { RootKey, wipe } from '../../src/crypto/index.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';

const FIXTURE = path.join(REPO_ROOT, 'dist', 'test', 'e2e', 'fixtures', 'store-writer.js');
const ROUNDS = 10;

const children = new Set<ChildProcess>();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-durability-'));
after(() => {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Ack { path: string; version: number; value: string }

/** Runs one round: start the writer, kill -9 it after a random delay, return the complete ack lines. */
async function round(file: string, keyFile: string, n: number): Promise<Ack[]> {
  const child = spawn(process.execPath, [FIXTURE, file, keyFile, String(n)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => { out += String(c); });
  child.stderr!.on('data', (c: Buffer) => { err += String(c); });
  const exited = new Promise<NodeJS.Signals | number | null>((r) => child.once('exit', (code, sig) => r(sig ?? code)));
  // Kill at a random moment *after* the writers got going: wait for the first complete ack line
  // (a condition with a generous deadline, not a fixed delay), then a random delay.
  const deadline = Date.now() + 60_000;
  while (!/\nack [^\n]*\n/.test(out)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`writer did not start or acknowledge a write: ${err}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, randomInt(0, 370)));
  child.kill('SIGKILL');
  const how = await exited;
  children.delete(child);
  assert.equal(how, 'SIGKILL', `writer must die by SIGKILL, not exit on its own: ${err}`);
  const lines = out.split('\n');
  lines.pop(); // a partial last line is not an acknowledgement the test may rely on
  return lines.filter((l) => l.startsWith('ack ')).map((l) => {
    const [, p, v, value] = l.split(' ');
    return { path: p!, version: Number(v), value: value! };
  });
}

test('D12 / FI (store level): kill -9 during 16 concurrent writers, 10 rounds → every acknowledged write reads back exactly', async () => {
  assert.ok(fs.existsSync(FIXTURE), 'fixture must be compiled (npx tsc -p .)');
  const file = path.join(dir, 'spike.db');
  const keyFile = path.join(dir, 'root.key');
  const root = RootKey.generate();
  const keyBytes = root.bytes();
  fs.writeFileSync(keyFile, keyBytes, { mode: 0o600 });
  wipe(keyBytes);
  let total = 0;
  try {
    for (let n = 1; n <= ROUNDS; n++) {
      const acks = await round(file, keyFile, n);
      assert.ok(acks.length > 0, `round ${n}: the writer acknowledged nothing before the kill`);
      total += acks.length;
      const store = new SqliteStore({ file });
      try {
        await store.unlock(root);
        const seen = new Set<string>();
        for (const a of acks) {
          const key = `${a.path}#${a.version}`;
          assert.ok(!seen.has(key), `round ${n}: two acks share ${key}`);
          seen.add(key);
          const got = await store.getSecret(a.path, a.version);
          assert.ok(got, `round ${n}: acknowledged write lost (${key})`);
          assert.deepEqual(Object.entries(got.values), [['v', a.value]], `round ${n}: ${key} reads back another value`);
        }
        // Earlier rounds are still intact too (spot check: the metadata of every path opens).
        for (const p of await store.listSecretPaths()) assert.ok(await store.getSecretMetadata(p));
      } finally {
        await store.close();
      }
    }
  } finally {
    root.destroy();
  }
  assert.ok(total >= ROUNDS);
  // Diagnostic only: how much was acknowledged across the rounds.
  process.stdout.write(`# durability: ${total} acknowledged writes verified over ${ROUNDS} kill -9 rounds\n`);
});

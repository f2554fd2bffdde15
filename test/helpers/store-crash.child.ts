/**
 * Test helper (not a test) for FI-02 (src/store/sqlite/crash-points.test.ts): opens the
 * SQLite store at `<file>` with the test root key in SPIKE_TEST_ROOT_HEX and its rollback
 * anchor armed as Nexus arms it (a test sealer: counter + 1, zero MAC), makes 6 acknowledged
 * writes (one `ack` JSON line each, printed after the write resolved, with the anchor counter
 * then stored), then arms a crash
 * point and makes 3 concurrent writes (one group-commit transaction) during which the process
 * SIGKILLs itself at that point:
 *   after-begin    right after `BEGIN IMMEDIATE` ran;
 *   after-meta     right after a secret's metadata row was written (insert or update);
 *   before-commit  just before `COMMIT` runs;
 *   after-commit   right after `COMMIT` returned, before any write is acknowledged.
 * The points are reached by wrapping better-sqlite3's `Statement#run` in this process (the
 * store code itself is unchanged). Prints `survived` if no point was reached.
 * Usage: node store-crash.child.js <file> <point> <tag>
 */
import Database from 'better-sqlite3';
import { RootKey } from '../../src/crypto/index.js';
import { ANCHOR_MAC_BYTES, SqliteStore, anchorCounter, anchorPrefix } from '../../src/store/index.js';

export const CRASH_POINTS = ['after-begin', 'after-meta', 'before-commit', 'after-commit'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];
export const CRASH_PATHS = ['fi02/a', 'fi02/b', 'fi02/c'] as const;

const META_WRITES = new Set(['INSERT INTO secrets (id, path, meta) VALUES (?, ?, ?)', 'UPDATE secrets SET meta = ? WHERE id = ?']);

/** Makes `Statement#run` SIGKILL this process at `point` (once armed). */
function arm(point: CrashPoint): void {
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1')) as { run: (...a: unknown[]) => unknown };
  probe.close();
  const run = proto.run;
  const die = (): never => {
    process.kill(process.pid, 'SIGKILL');
    throw new Error('unreachable');
  };
  proto.run = function wrapped(this: { source: string }, ...args: unknown[]): unknown {
    if (point === 'before-commit' && this.source === 'COMMIT') die();
    const out = run.apply(this, args);
    if (point === 'after-begin' && this.source === 'BEGIN IMMEDIATE') die();
    if (point === 'after-meta' && META_WRITES.has(this.source)) die();
    if (point === 'after-commit' && this.source === 'COMMIT') die();
    return out;
  };
}

/** A test anchor sealer: the next counter, no MAC (Nexus seals with an HMAC). */
export function testSeal(stored: Uint8Array | null, min: bigint): Uint8Array {
  const next = (anchorCounter(stored) ?? 0n) + 1n;
  return Buffer.concat([anchorPrefix(next > min ? next : min), Buffer.alloc(ANCHOR_MAC_BYTES)]);
}

async function main(file: string, point: CrashPoint, tag: string): Promise<void> {
  const hex = process.env['SPIKE_TEST_ROOT_HEX'] ?? '';
  const store = new SqliteStore({ file });
  await store.unlock(RootKey.fromBytes(Buffer.from(hex, 'hex')));
  store.anchor?.arm(testSeal);
  for (let i = 0; i < 6; i++) {
    const path = CRASH_PATHS[i % CRASH_PATHS.length]!;
    const value = `${tag}-${i}`;
    const { version } = await store.putSecret(path, { v: value });
    const anchor = Number(anchorCounter(await store.anchor!.read()) ?? -1n);
    process.stdout.write(`${JSON.stringify({ ack: { path, version, value }, anchor })}\n`);
  }
  arm(point);
  await Promise.all(CRASH_PATHS.map(async (path) => {
    const value = `${tag}-crash`;
    const { version } = await store.putSecret(path, { v: value });
    process.stdout.write(`${JSON.stringify({ ack: { path, version, value } })}\n`);
  }));
  process.stdout.write('survived\n');
  await store.close();
}

const [file, point, tag] = process.argv.slice(2);
if (file !== undefined && tag !== undefined && (CRASH_POINTS as readonly string[]).includes(point ?? '')) {
  await main(file, point as CrashPoint, tag);
}

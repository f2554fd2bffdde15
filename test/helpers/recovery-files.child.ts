/**
 * Test helper (not a test): writes `count` deterministic recovery files into `dir`, the way
 * `spike operator recover` does, so src/pilot/recovery-files.test.ts can `kill -9` it
 * mid-write (FI-21). Usage: node recovery-files.child.js <dir> <count> <seed>. Prints
 * `writing` before the first file and `done` at the end.
 */
import { prepareRecoveryDir, writeRecoveryFiles } from '../../src/pilot/recovery-files.js';

export function deterministicShares(count: number, seed: number): { id: number; value: Uint8Array }[] {
  return Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    value: Uint8Array.from({ length: 32 }, (_, j) => ((seed * 131 + (i + 1) * 17 + j * 7) & 0xff) | 1),
  }));
}

const [dir, count, seed] = process.argv.slice(2);
if (dir !== undefined && count !== undefined && seed !== undefined) {
  const abs = prepareRecoveryDir(dir);
  process.stdout.write('writing\n');
  writeRecoveryFiles(abs, deterministicShares(Number(count), Number(seed)), { force: process.argv.includes('--force') });
  process.stdout.write('done\n');
}

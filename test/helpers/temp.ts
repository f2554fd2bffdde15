/**
 * Temporary folders for tests: each is created under the OS temp folder and removed when the
 * test process exits, so a failing test leaves nothing behind.
 *
 * Removal is tied to the process, not to a node:test hook: `after()` called while a test runs
 * attaches to that test, so a hook registered by the first caller would remove only the folders
 * made before that test ended, and a test process may run several files (shared unit-test
 * processes).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const created: string[] = [];
let exitHookSet = false;

function removeAll(): void {
  for (const dir of created.splice(0)) {
    try {
      // A test may have left a folder read-only: make it writable so its files go too.
      fs.chmodSync(dir, 0o700);
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* one folder that cannot go must not keep the others (some hold test keys) */
    }
  }
}

/** A new empty folder named `<prefix><random>`, removed when the process exits. */
export function tempDir(prefix: string): string {
  if (!exitHookSet) {
    exitHookSet = true;
    process.once('exit', removeAll);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

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

/** Makes `dir` and every folder under it writable (a test may have left one read-only). */
function makeWritable(dir: string): void {
  try {
    fs.chmodSync(dir, 0o700);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) makeWritable(path.join(dir, e.name));
  } catch {
    /* removal below reports what is left */
  }
}

function removeAll(): void {
  for (const dir of created.splice(0)) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      makeWritable(dir);
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch (e) {
        // One folder that cannot go must not keep the others (some hold test keys); say so.
        process.stderr.write(`temp: could not remove ${dir}: ${(e as Error).message}\n`);
      }
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

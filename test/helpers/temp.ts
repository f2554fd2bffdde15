/**
 * Temporary folders for tests: each is created under the OS temp folder and removed when the
 * calling test file finishes (node:test `after`), so a failing test leaves nothing behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

const created: string[] = [];
let cleanupRegistered = false;

/** A new empty folder named `<prefix><random>`. */
export function tempDir(prefix: string): string {
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    after(() => {
      for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
    });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/**
 * `spike cipher decrypt -o FILE` interrupted left a hidden 0600 temp file with the plaintext
 * received so far next to FILE, for good. Now the file is removed on SIGINT, SIGTERM and
 * SIGHUP, and the process still ends by that signal. In a child process (signals end it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('./signal-cleanup.js', import.meta.url));

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  test(`attack-partial-plaintext-left: ${sig} while a partial output is being written removes it and ends the process by ${sig}`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-sigclean-'));
    const file = path.join(dir, '.out.tmp');
    try {
      const child = spawn(process.execPath, ['--input-type=module', '-e', `
        import fs from 'node:fs';
        const { removeOnSignal } = await import(${JSON.stringify(MODULE)});
        fs.writeFileSync(${JSON.stringify(file)}, 'PARTIAL-PLAINTEXT', { mode: 0o600 });
        removeOnSignal(${JSON.stringify(file)});
        process.stdout.write('armed\\n');
        setInterval(() => {}, 1000);
      `], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.on('data', (c: Buffer) => { if (c.toString().includes('armed')) resolve(); }));
      assert.equal(fs.existsSync(file), true);
      const ended = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, s) => resolve(s)));
      child.kill(sig);
      assert.equal(await ended, sig, 'still ended by the signal');
      assert.equal(fs.existsSync(file), false, 'the partial file is gone');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('once disarmed (the output was completed and renamed), a signal removes nothing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-sigclean-'));
  const file = path.join(dir, 'kept');
  try {
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import fs from 'node:fs';
      const { removeOnSignal } = await import(${JSON.stringify(MODULE)});
      fs.writeFileSync(${JSON.stringify(file)}, 'done');
      removeOnSignal(${JSON.stringify(file)})();
      process.stdout.write('armed\\n');
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (c: Buffer) => { if (c.toString().includes('armed')) resolve(); }));
    const ended = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await ended;
    assert.equal(fs.readFileSync(file, 'utf8'), 'done');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

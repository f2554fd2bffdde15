/**
 * attack-audit-endless-pipe: `spike audit verify <(yes …)` read a pipe that never ends into
 * memory without bound (3.5 GB in the review). One audit file is now read up to a cap (the
 * largest JavaScript string), then refused with one line; files and finite pipes read whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { tempDir } from '../../test/helpers/temp.js';
import { PilotError } from './errors.js';
import { readAuditFile } from './audit.js';

test('attack-audit-endless-pipe: a pipe that never ends is refused at the cap; a file and a finite pipe read whole', async () => {
  const dir = tempDir('spike-audit-read-');
  const file = path.join(dir, 'audit.log');
  fs.writeFileSync(file, '{"seq":1}\n');
  assert.equal(readAuditFile(file, 'audit.log', 1024), '{"seq":1}\n');
  const fifo = path.join(dir, 'endless');
  execFileSync('mkfifo', [fifo]);
  const writer = spawn('sh', ['-c', `yes '{"seq":1}' > '${fifo}'`], { stdio: 'ignore' });
  try {
    assert.throws(() => readAuditFile(fifo, 'endless', 1 << 20), (e: unknown) => e instanceof PilotError && /is larger than 1 MiB/.test(e.message));
  } finally {
    writer.kill('SIGKILL');
  }
});

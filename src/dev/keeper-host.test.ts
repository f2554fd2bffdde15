import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KEEPER_HOST_FILE, keeperHost } from './keeper-host.js';

const folder = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'keeper-host-'));

test('dev Keeper URLs: a new folder dials 127.0.0.1 (not localhost, which ::1 squatters could answer) and keeps it', () => {
  const dir = folder();
  assert.equal(keeperHost(dir, false), '127.0.0.1');
  assert.equal(fs.statSync(path.join(dir, KEEPER_HOST_FILE)).mode & 0o777, 0o600);
  assert.equal(keeperHost(dir, true), '127.0.0.1', 'once recorded, later starts (now bootstrapped) keep it');
  fs.rmSync(dir, { recursive: true });
});

test('dev Keeper URLs: a folder bootstrapped by an earlier version keeps localhost, which its sharing record names', () => {
  const dir = folder();
  assert.equal(keeperHost(dir, true), 'localhost');
  assert.equal(keeperHost(dir, true), 'localhost');
  fs.writeFileSync(path.join(dir, KEEPER_HOST_FILE), 'evil.example\n');
  assert.equal(keeperHost(dir, true), 'localhost', 'any other content is not a host we dial');
  fs.rmSync(dir, { recursive: true });
});

/**
 * The run marker (run-marker.ts) against what may lie at its place in the data folder: a
 * previous run's pid, a symlink, a FIFO, a directory, a large or garbled file. None is followed,
 * blocks the start or is reported as a pid it is not; the new marker is a fresh 0600 file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/log.js';
import { markRunning } from './run-marker.js';

function run(dir: string): Array<Record<string, unknown>> {
  const out: string[] = [];
  const logger = createLogger({ component: 'test', level: 'warn', destination: new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }) });
  markRunning(dir, logger);
  return out.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function fresh(): { dir: string; marker: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-marker-'));
  return { dir, marker: path.join(dir, 'nexus.running') };
}

function assertMarked(marker: string): void {
  const st = fs.lstatSync(marker);
  assert.ok(st.isFile(), 'the marker is a regular file');
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(fs.readFileSync(marker, 'utf8'), `${process.pid}\n`);
}

test('run marker: a first start logs nothing and marks; a marker left behind is one unclean_exit line with its pid', () => {
  const { dir, marker } = fresh();
  assert.deepEqual(run(dir), []);
  assertMarked(marker);
  fs.writeFileSync(marker, '4242\n');
  const lines = run(dir);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!['event'], 'unclean_exit');
  assert.equal(lines[0]!['previousPid'], 4242);
  assertMarked(marker);
});

test('ATTACK run-marker symlink: a symlink at the marker is neither read nor written through; its target is unchanged', () => {
  const { dir, marker } = fresh();
  const target = path.join(dir, 'elsewhere');
  fs.writeFileSync(target, '777\n');
  fs.symlinkSync(target, marker);
  const lines = run(dir);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!['event'], 'unclean_exit');
  assert.equal(lines[0]!['previousPid'], undefined, 'the target\'s content is not read');
  assert.equal(fs.readFileSync(target, 'utf8'), '777\n', 'the target is not written');
  assertMarked(marker);
});

test('ATTACK run-marker FIFO: a FIFO at the marker does not block the start', () => {
  const { dir, marker } = fresh();
  execFileSync('mkfifo', [marker]);
  const lines = run(dir);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!['previousPid'], undefined);
  assertMarked(marker);
});

test('run marker: garbled or oversized content is an unclean exit without a pid; a directory at its place cannot be replaced (WARN)', () => {
  const { dir, marker } = fresh();
  for (const content of ['12abc\n', '', 'x'.repeat(1 << 20), '99999999999\n']) {
    fs.rmSync(marker, { force: true });
    fs.writeFileSync(marker, content);
    const lines = run(dir);
    assert.equal(lines.length, 1, JSON.stringify(content.slice(0, 20)));
    assert.equal(lines[0]!['previousPid'], undefined);
    assertMarked(marker);
  }
  fs.rmSync(marker);
  fs.mkdirSync(marker);
  const lines = run(dir);
  assert.deepEqual(lines.map((l) => l['event'] ?? l['msg']), ['unclean_exit', 'cannot write the run marker; an unclean exit will not be reported at the next start']);
});

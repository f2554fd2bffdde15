// test-process: own
// It listens for process-wide 'warning' events.
/**
 * `spike policy apply --file`: the file is read to its end, also from a pipe (`--file <(…)`,
 * `/dev/stdin`), where the bytes arrive in pieces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { policyFromYaml, readPolicyFile } from './policy.js';

// A writer thread: writes the first piece, then the rest once the reader has returned (or
// after 2 s, for a reader that correctly waits for the end of the file), then closes.
const WRITER = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const flag = new Int32Array(workerData.flag);
const fd = fs.openSync(workerData.fifo, 'w');
try {
  fs.writeSync(fd, workerData.first);
  Atomics.wait(flag, 0, 0, 2000);
  fs.writeSync(fd, workerData.rest);
} catch { /* the reader went away (EPIPE) */ }
fs.closeSync(fd);
`;

test('ATTACK policy file from a pipe arriving in pieces: the whole document is read, never a policy cut short', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-policy-'));
  try {
    const fifo = path.join(dir, 'policy.yaml');
    execFileSync('mkfifo', [fifo]);
    const first = 'name: app\nspiffeidPattern: "^spiffe://td/app$"\npathPattern: "^app/.*$"\npermissions: read';
    const rest = ',write\n';
    const flag = new SharedArrayBuffer(4);
    const worker = new Worker(WRITER, { eval: true, workerData: { fifo, first, rest, flag } });
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    await new Promise((resolve) => worker.once('online', resolve));
    let text: string;
    try {
      text = readPolicyFile(fifo);
    } finally {
      Atomics.store(new Int32Array(flag), 0, 1);
      Atomics.notify(new Int32Array(flag), 0);
      await exited;
    }
    assert.equal(text, first + rest);
    assert.deepEqual(policyFromYaml(text).permissions, ['read', 'write']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('policy file: a directory or a missing file is one readable error line, an endless device is capped', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-policy-'));
  try {
    assert.throws(() => readPolicyFile(dir), { message: /^Error: Policy file ".*" cannot be read/ });
    const missing = path.join(dir, 'missing.yaml');
    assert.throws(() => readPolicyFile(missing), { message: `Error: Policy file ${JSON.stringify(missing)} does not exist or cannot be read (ENOENT).` });
    assert.throws(() => readPolicyFile('/dev/zero'), { message: /^Error: Policy file "\/dev\/zero" is larger than 64 KiB\.$/ });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ATTACK policy YAML with unknown tags, collection keys or a second document: refused as invalid YAML, no multi-line warning on stderr', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.message);
  process.on('warning', onWarning);
  try {
    const rest = 'spiffeidPattern: "^spiffe://td/app$"\npathPattern: "^app/.*$"\npermissions: [read]\n';
    for (const text of [
      '!!js/function "function(){}"\n',
      `name: !!js/undefined app\n${rest}`,
      `name: app\n? [a, b]\n: c\n${rest}`,
      `name: app\n? {x: 1}\n: c\n${rest}`,
      `name: app\n${rest}---\nname: other\n`,
    ]) {
      assert.throws(() => policyFromYaml(text), { message: /^Error: Invalid policy file: not valid YAML\.$/ }, JSON.stringify(text));
    }
    // Warnings are emitted on the next tick: let them arrive before looking.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
  }
});

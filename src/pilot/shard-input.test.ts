/**
 * Restore input parsing, hostile cases first (OPR-10, OPR-14, OPR-15): every
 * malformed shard is refused before any network call, and no message echoes the input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync, spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { PilotError } from './errors.js';
import { MAX_SHARD_INPUT, parseShardText, readCapped, readShard, readShardFile } from './shard-input.js';
import type { PilotIo } from './context.js';

const HEX = 'a1'.repeat(32);
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function refused(input: Buffer, label: string): void {
  assert.throws(
    () => parseShardText(input),
    (e: unknown) => {
      assert.ok(e instanceof PilotError, label);
      assert.match(e.message, /^Error: Invalid recovery shard: .*\(expected spike:<id>:<64 lowercase hex characters>\)\.$/, label);
      assert.ok(!e.message.includes('a1a1'), `${label}: no shard material in the message`);
      return true;
    },
    label,
  );
}

test('valid: spike:<id>:<64 lowercase hex>, with or without one trailing newline', () => {
  for (const text of [`spike:1:${HEX}`, `spike:3:${HEX}\n`, `spike:1000:${HEX}`]) {
    const s = parseShardText(b(text));
    assert.equal(s.value.length, 32);
    assert.equal(s.value[0], 0xa1);
  }
  assert.equal(parseShardText(b(`spike:42:${HEX}`)).id, 42);
});

test('OPR-10: malformed shard text is refused before any network call', () => {
  const cases: [string, string][] = [
    ['missing prefix', `1:${HEX}`],
    ['wrong prefix (SPIKE ignores it, gaps B16)', `spoke:1:${HEX}`],
    ['uppercase prefix', `SPIKE:1:${HEX}`],
    ['63 hex chars', `spike:1:${HEX.slice(1)}`],
    ['65 hex chars', `spike:1:${HEX}a`],
    ['zz', `spike:1:zz${HEX.slice(2)}`],
    ['uppercase hex', `spike:1:${HEX.toUpperCase()}`],
    ['CRLF', `spike:1:${HEX}\r\n`],
    ['BOM', `\ufeffspike:1:${HEX}`],
    ['leading space', ` spike:1:${HEX}`],
    ['two newlines', `spike:1:${HEX}\n\n`],
    ['trailing garbage', `spike:1:${HEX} x`],
    ['id 0', `spike:0:${HEX}`],
    ['id 01', `spike:01:${HEX}`],
    ['id -1', `spike:-1:${HEX}`],
    ['id 1.5', `spike:1.5:${HEX}`],
    ['id 10000', `spike:10000:${HEX}`],
    ['id 1001 (above the max share count)', `spike:1001:${HEX}`],
    ['id not a number', `spike:x:${HEX}`],
    ['missing id', `spike::${HEX}`],
    ['four parts', `spike:1:${HEX}:x`],
    ['empty', ''],
    ['only newline', '\n'],
    ['NUL inside', `spike:1:${HEX.slice(0, 10)}\0${HEX.slice(11)}`],
  ];
  for (const [label, text] of cases) refused(Buffer.from(text, 'utf8'), label);
});

test('OPR-10 property: any single-byte change of a valid line is refused or still a well-formed line', () => {
  const valid = b(`spike:7:${HEX}`);
  fc.assert(
    fc.property(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), (pos, byte) => {
      const t = Buffer.from(valid);
      t[pos] = byte;
      const wellFormed = /^spike:[1-9][0-9]{0,3}:[0-9a-f]{64}\n?$/.test(t.toString('latin1'));
      let ok: boolean;
      try {
        parseShardText(t);
        ok = true;
      } catch (e) {
        assert.ok(e instanceof PilotError);
        ok = false;
      }
      assert.equal(ok, wellFormed && Number(/:(\d+):/.exec(t.toString('latin1'))![1]) <= 1000);
    }),
    { numRuns: 2000 },
  );
});

test('OPR-15: more than 4096 bytes of stdin is refused; exactly 4096 is read', async () => {
  await assert.rejects(readCapped(Readable.from([Buffer.alloc(MAX_SHARD_INPUT + 1, 0x61)])), /larger than 4096 bytes/);
  await assert.rejects(readCapped(Readable.from((function* () {
    for (let i = 0; i < 1000; i++) yield Buffer.alloc(1024, 0x61); // a 1 MiB flood in chunks
  })())), /larger than 4096 bytes/);
  const ok = await readCapped(Readable.from([Buffer.alloc(2000, 0x61), Buffer.alloc(2096, 0x62)]));
  assert.equal(ok.length, 4096);
});

test('readShard: file argument, piped stdin; symlinks and huge files refused', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-shard-'));
  try {
    const f = path.join(dir, 'spike.recovery.2.txt');
    fs.writeFileSync(f, `spike:2:${HEX}`, { mode: 0o600 });
    const io = (stdin: Readable): PilotIo => ({ stdin, stdout: process.stdout, stderr: process.stderr, env: {}, cwd: dir });
    assert.equal((await readShard(io(Readable.from([])), 'spike.recovery.2.txt')).id, 2);
    assert.equal((await readShard(io(Readable.from([b(`spike:3:${HEX}\n`)])), undefined)).id, 3);
    assert.equal((await readShard(io(Readable.from([b(`spike:4:${HEX}`)])), '-')).id, 4);
    fs.symlinkSync(f, path.join(dir, 'link.txt'));
    assert.throws(() => readShardFile({ cwd: dir }, 'link.txt'), /symbolic link/);
    fs.writeFileSync(path.join(dir, 'big.txt'), Buffer.alloc(MAX_SHARD_INPUT + 10, 0x61));
    assert.throws(() => readShardFile({ cwd: dir }, 'big.txt'), /larger than 4096/);
    assert.throws(() => readShardFile({ cwd: dir }, 'missing.txt'), /Cannot open the shard file/);
    assert.throws(() => readShardFile({ cwd: dir }, '.'), PilotError);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('terminal input is hidden: raw mode on, nothing echoed, backspace edits, Enter ends, Ctrl-C cancels', async () => {
  const { PassThrough, Writable } = await import('node:stream');
  const { readHidden } = await import('./shard-input.js');
  const make = (): { io: PilotIo; stdin: InstanceType<typeof PassThrough> & { isTTY: boolean; setRawMode: (m: boolean) => void }; raw: boolean[]; err: () => string; out: () => string } => {
    const raw: boolean[] = [];
    const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (m: boolean) => void raw.push(m) });
    let err = '';
    let out = '';
    const w = (f: (s: string) => void): InstanceType<typeof Writable> => new Writable({ write(c: Buffer, _e, cb) { f(c.toString()); cb(); } });
    const io: PilotIo = { stdin, stdout: w((s) => (out += s)), stderr: w((s) => (err += s)), env: {}, cwd: '/' };
    return { io, stdin, raw, err: () => err, out: () => out };
  };
  const a = make();
  const p = readHidden(a.io, 'Enter recovery shard: ');
  a.stdin.write(`spike:1:${HEX.slice(0, 10)}x\x7f`);
  a.stdin.write(`${HEX.slice(10)}\r`);
  const got = await p;
  assert.equal(got.toString('latin1'), `spike:1:${HEX}`);
  assert.deepEqual(a.raw, [true, false]);
  assert.equal(a.err(), 'Enter recovery shard: \n', 'prompt on stderr, input never echoed');
  assert.equal(a.out(), '');
  const c = make();
  const q = readHidden(c.io, 'Enter recovery shard: ');
  c.stdin.write('spike:1:\x03');
  await assert.rejects(q, /Operation canceled/);
  assert.deepEqual(c.raw, [true, false]);
});

test('ATTACK shard file is a FIFO: refused at once as not a regular file, never a blocked open', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-shard-'));
  try {
    execFileSync('mkfifo', [path.join(dir, 'spike.recovery.1.txt')]);
    // In a child: a blocking open of a FIFO with no writer would hang this test process.
    const mod = new URL('./shard-input.js', import.meta.url).href;
    const script = `import { readShardFile } from ${JSON.stringify(mod)};
      try { readShardFile({ cwd: ${JSON.stringify(dir)} }, 'spike.recovery.1.txt'); console.log('read'); } catch (e) { console.log(e.message); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.signal, null, 'the read did not block (killed at the 20 s bound)');
    assert.match(r.stdout, /^Error: Invalid recovery shard: the shard file is not a regular file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Recovery files of `spike operator recover` (OPR-13, FI-21):
 * location, modes, atomic writes under `kill -9`, overwrite protection, planted symlinks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomInt } from 'node:crypto';
import { PilotError } from './errors.js';
import { makePrivateDir, prepareRecoveryDir, resolveRecoveryDir, writeRecoveryFiles } from './recovery-files.js';
import { deterministicShares } from '../../test/helpers/recovery-files.child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../test/helpers/recovery-files.child.js');
const LINE = /^spike:([1-9][0-9]*):[0-9a-f]{64}$/;

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-recover-'));
}

function mode(p: string): number {
  return fs.lstatSync(p).mode & 0o777;
}

function expectedContent(s: { id: number; value: Uint8Array }): string {
  return `spike:${s.id}:${Buffer.from(s.value).toString('hex')}`;
}

test('files spike.recovery.<id>.txt, content spike:<id>:<hex> without newline, mode 0600 in a 0700 directory', () => {
  const root = tmp();
  try {
    const dir = prepareRecoveryDir(path.join(root, 'a', 'recover'));
    assert.equal(mode(dir), 0o700);
    const shares = deterministicShares(3, 1);
    const r = writeRecoveryFiles(dir, shares, { force: false });
    assert.deepEqual(r.files, [1, 2, 3].map((i) => path.join(dir, `spike.recovery.${i}.txt`)));
    for (const s of shares) {
      const f = path.join(dir, `spike.recovery.${s.id}.txt`);
      assert.equal(mode(f), 0o600);
      assert.equal(fs.readFileSync(f, 'latin1'), expectedContent(s));
    }
    assert.deepEqual(fs.readdirSync(dir).sort(), ['spike.recovery.1.txt', 'spike.recovery.2.txt', 'spike.recovery.3.txt']);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('an existing directory must be ours, a real directory, and closed to group/others (never chmod-ed for you)', () => {
  const root = tmp();
  try {
    const open = path.join(root, 'open');
    fs.mkdirSync(open, { mode: 0o755 });
    fs.chmodSync(open, 0o755);
    assert.throws(() => prepareRecoveryDir(open), /accessible by group or others/);
    assert.equal(mode(open), 0o755, 'left as it was');
    const real = path.join(root, 'real');
    fs.mkdirSync(real, { mode: 0o700 });
    fs.symlinkSync(real, path.join(root, 'link'));
    assert.throws(() => prepareRecoveryDir(path.join(root, 'link')), /symbolic link/);
    fs.writeFileSync(path.join(root, 'file'), 'x');
    assert.throws(() => prepareRecoveryDir(path.join(root, 'file')), /not a directory/);
    assert.equal(prepareRecoveryDir(real), real);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('existing different shard files are never overwritten without --force; identical ones make a re-run succeed', () => {
  const root = tmp();
  try {
    const dir = prepareRecoveryDir(path.join(root, 'r'));
    const first = deterministicShares(3, 1);
    writeRecoveryFiles(dir, first, { force: false });
    const again = writeRecoveryFiles(dir, deterministicShares(3, 1), { force: false });
    assert.equal(again.unchanged, 3);
    const other = deterministicShares(3, 2);
    assert.throws(
      () => writeRecoveryFiles(dir, other, { force: false }),
      (e: unknown) => e instanceof PilotError && /3 recovery file\(s\) .* differ .* --force/.test(e.message) && !e.message.includes(Buffer.from(other[0]!.value).toString('hex')),
    );
    assert.equal(fs.readFileSync(path.join(dir, 'spike.recovery.1.txt'), 'latin1'), expectedContent(first[0]!), 'untouched');
    writeRecoveryFiles(dir, other, { force: true });
    assert.equal(fs.readFileSync(path.join(dir, 'spike.recovery.1.txt'), 'latin1'), expectedContent(other[0]!));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('stale shard files of another set are refused without --force and removed with it', () => {
  const root = tmp();
  try {
    const dir = prepareRecoveryDir(path.join(root, 'r'));
    writeRecoveryFiles(dir, deterministicShares(5, 1), { force: false });
    assert.throws(() => writeRecoveryFiles(dir, deterministicShares(3, 1), { force: false }), /2 recovery file/);
    writeRecoveryFiles(dir, deterministicShares(3, 1), { force: true });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['spike.recovery.1.txt', 'spike.recovery.2.txt', 'spike.recovery.3.txt']);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('OPR-13: a planted symlink spike.recovery.1.txt → elsewhere is never followed', () => {
  const root = tmp();
  try {
    const dir = prepareRecoveryDir(path.join(root, 'r'));
    const target = path.join(root, 'target');
    fs.writeFileSync(target, 'precious');
    fs.symlinkSync(target, path.join(dir, 'spike.recovery.1.txt'));
    const shares = deterministicShares(2, 3);
    assert.throws(() => writeRecoveryFiles(dir, shares, { force: false }), /differ/);
    assert.equal(fs.readFileSync(target, 'utf8'), 'precious');
    writeRecoveryFiles(dir, shares, { force: true });
    assert.equal(fs.readFileSync(target, 'utf8'), 'precious', 'target untouched');
    const st = fs.lstatSync(path.join(dir, 'spike.recovery.1.txt'));
    assert.ok(st.isFile() && !st.isSymbolicLink(), 'the link was replaced by a regular file');
    assert.equal(st.mode & 0o777, 0o600);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('FI-21: kill -9 while writing → every shard file complete or absent; a re-run succeeds', async () => {
  const root = tmp();
  const COUNT = 300;
  try {
    const dir = path.join(root, 'recover');
    let killedMidWrite = 0;
    // Five rounds, and more (with shorter delays) until one kill landed mid-write: on a loaded
    // machine the first rounds may all see the writer finish first.
    for (let round = 0; round < 5 || (killedMidWrite === 0 && round < 40); round++) {
      fs.rmSync(dir, { recursive: true, force: true });
      const child = spawn(process.execPath, [CHILD, dir, String(COUNT), '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('writing')) resolve();
        });
        void exited.then(() => reject(new Error('child exited before writing')));
      });
      await new Promise((r) => setTimeout(r, randomInt(0, round < 5 ? 300 : 20)));
      child.kill('SIGKILL');
      const sig = await exited;
      if (sig === 'SIGKILL') killedMidWrite += out.includes('done') ? 0 : 1;
      const shares = deterministicShares(COUNT, 5);
      let complete = 0;
      for (const name of fs.readdirSync(dir)) {
        if (!name.startsWith('spike.recovery.')) continue; // temp debris is removed by the re-run
        const text = fs.readFileSync(path.join(dir, name), 'latin1');
        const m = LINE.exec(text);
        assert.ok(m, `round ${round}: ${name} is complete`);
        assert.equal(text, expectedContent(shares[Number(m[1]) - 1]!));
        assert.equal(mode(path.join(dir, name)), 0o600);
        complete++;
      }
      const r = writeRecoveryFiles(prepareRecoveryDir(dir), shares, { force: false });
      assert.equal(r.unchanged, complete, 'files from the killed run are kept as they are');
      const names = fs.readdirSync(dir).sort();
      assert.equal(names.length, COUNT, 'no temp debris left');
      for (const s of shares) assert.equal(fs.readFileSync(path.join(dir, `spike.recovery.${s.id}.txt`), 'latin1'), expectedContent(s));
    }
    assert.ok(killedMidWrite >= 1, 'at least one round killed the writer mid-way');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('directory resolution: --out, SPIKE_PILOT_RECOVERY_DIR/recover, the dev stack area, else ask for --out (never $HOME); system paths refused', () => {
  assert.equal(resolveRecoveryDir({}, '/work', 'out'), '/work/out');
  assert.equal(resolveRecoveryDir({ SPIKE_PILOT_RECOVERY_DIR: '/var/spike' }, '/work'), '/var/spike/recover');
  assert.equal(resolveRecoveryDir({ SPIKE_PILOT_RECOVERY_DIR: '/var/spike' }, '/work', undefined, { dir: '/work/.spike/recovery' }), '/var/spike/recover');
  assert.equal(resolveRecoveryDir({ HOME: '/home/op' }, '/work', undefined, { dir: '/work/.spike/recovery' }), '/work/.spike/recovery');
  const asks = (e: unknown): boolean => e instanceof PilotError && e.exitCode === 2 && /^Error: Say where the recovery shards go: --out <dir>/.test(e.message);
  assert.throws(() => resolveRecoveryDir({ HOME: '/home/op' }, '/work'), asks);
  assert.throws(() => resolveRecoveryDir({ HOME: '/home/op' }, '/work', undefined, { refused: '/work/.spike has no dev-stack.marker' }), (e: unknown) => asks(e) && /dev-stack\.marker/.test((e as Error).message));
  for (const bad of ['/', '/etc', '/etc/spike', '/usr/local/x', '/proc/self', 'a/../b', '']) {
    assert.throws(() => resolveRecoveryDir({}, '/work', bad), PilotError, bad);
    assert.throws(() => resolveRecoveryDir({ SPIKE_PILOT_RECOVERY_DIR: bad === '' ? '/' : bad }, '/work'), PilotError, bad);
  }
});

test('OPR-13: an existing shard file with the right content but mode 0644, or a second hard link, ends as a fresh private 0600 file', () => {
  const root = tmp();
  try {
    const dir = prepareRecoveryDir(path.join(root, 'r'));
    const shares = deterministicShares(3, 4);
    writeRecoveryFiles(dir, shares, { force: false });
    const one = path.join(dir, 'spike.recovery.1.txt');
    const two = path.join(dir, 'spike.recovery.2.txt');
    fs.chmodSync(one, 0o644);
    const outside = path.join(root, 'copy-of-2');
    fs.linkSync(two, outside);
    const r = writeRecoveryFiles(dir, deterministicShares(3, 4), { force: false });
    assert.equal(r.unchanged, 1, 'only shard 3 was private and in place');
    for (const s of shares) {
      const f = path.join(dir, `spike.recovery.${s.id}.txt`);
      const st = fs.lstatSync(f);
      assert.equal(st.mode & 0o777, 0o600, `${f} mode`);
      assert.equal(st.nlink, 1, `${f} has no other name`);
      assert.equal(fs.readFileSync(f, 'latin1'), expectedContent(s));
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('OPR-13: a recovery directory under a folder others can write (not sticky) is refused; under a sticky one (like /tmp) it is fine', () => {
  const root = tmp();
  try {
    const shared = path.join(root, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o777);
    // Someone else could rename shared/out away after the check and plant shared/out → their folder.
    for (const target of [path.join(shared, 'out'), path.join(shared, 'new', 'deeper')]) {
      assert.throws(() => prepareRecoveryDir(target), { message: /folder .*shared above the recovery directory is writable by group or others/ });
    }
    assert.equal(fs.existsSync(path.join(shared, 'new')), false, 'nothing created');
    fs.mkdirSync(path.join(shared, 'out'), { mode: 0o700 });
    assert.throws(() => prepareRecoveryDir(path.join(shared, 'out')), /writable by group or others/);
    const viaLink = path.join(root, 'link');
    fs.symlinkSync(shared, viaLink);
    assert.throws(() => prepareRecoveryDir(path.join(viaLink, 'out')), /writable by group or others/);
    const sticky = path.join(root, 'sticky');
    fs.mkdirSync(sticky);
    fs.chmodSync(sticky, 0o1777);
    const dir = prepareRecoveryDir(path.join(sticky, 'out'));
    writeRecoveryFiles(dir, deterministicShares(2, 5), { force: false });
    assert.equal(mode(path.join(dir, 'spike.recovery.1.txt')), 0o600);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('attack-recovery-dir-symlink-race: a symlink put at the recovery directory\'s name after it was looked at is refused, and the folder it points to keeps its mode', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-rec-race-'));
  try {
    const victim = path.join(base, 'www');
    fs.mkdirSync(victim);
    fs.chmodSync(victim, 0o755);
    const name = path.join(base, 'shards');
    fs.symlinkSync(victim, name); // planted between prepareRecoveryDir's look and its mkdir
    assert.throws(() => makePrivateDir(name), PilotError);
    assert.equal(fs.statSync(victim).mode & 0o777, 0o755, 'the folder the link points to is untouched');
    const fresh = path.join(base, 'a', 'b', 'shards');
    makePrivateDir(fresh);
    assert.equal(fs.lstatSync(fresh).mode & 0o777, 0o700);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

/**
 * The `npm start` state folder: created with a marker naming its inode; reused only when the
 * marker matches; anything else (a checkout's `.spike`, a folder of an earlier version, a
 * copied folder, a symlink, another user's folder) is refused with one line and left as is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DevStateError, devStateErrorLine, MARKER_FILE, prepareDevDir } from './state.js';
import { tempDir } from '../../test/helpers/temp.js';

const tmp = (): string => tempDir('dev-state-');

function refused(re: RegExp): (e: unknown) => boolean {
  return (e: unknown) => e instanceof DevStateError && e.code === 'dev_state_untrusted' && re.test(e.message);
}

test('a new folder is created 0700 with a 0600 marker; the same folder is accepted again, also after a move', () => {
  const root = tmp();
  const dir = path.join(root, 'nested', '.spike');
  prepareDevDir(dir);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(dir, MARKER_FILE)).mode & 0o777, 0o600);
  assert.match(fs.readFileSync(path.join(dir, MARKER_FILE), 'latin1'), /^spike-state v1 ino=[0-9]+\n$/);
  fs.mkdirSync(path.join(dir, 'agent'));
  fs.writeFileSync(path.join(dir, 'agent', 'ca.key'), 'x', { mode: 0o600 });
  prepareDevDir(dir);
  const moved = path.join(root, 'moved');
  fs.renameSync(dir, moved);
  prepareDevDir(moved);
});

test('an existing empty folder of yours is adopted (git never creates empty folders)', () => {
  const dir = path.join(tmp(), '.spike');
  fs.mkdirSync(dir, { mode: 0o755 });
  prepareDevDir(dir);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.ok(fs.existsSync(path.join(dir, MARKER_FILE)));
});

test('refused: a checkout .spike, an earlier version, a forged or copied marker, a symlink, loose modes (reject table)', () => {
  const planted = (mode: number): string => {
    const dir = path.join(tmp(), '.spike');
    fs.mkdirSync(path.join(dir, 'agent'), { recursive: true });
    fs.chmodSync(dir, mode);
    fs.writeFileSync(path.join(dir, 'agent', 'ca.key'), 'attacker key', { mode: 0o600 });
    return dir;
  };
  const rows: Array<[string, () => string, RegExp]> = [
    ['checkout with umask 022', () => planted(0o755), /is not private to you \(mode must be 0700\)/],
    ['checkout with umask 077 (no marker)', () => planted(0o700), /has no dev-stack\.marker \(it was made by an earlier version, or not by us\)/],
    ['forged marker (guessed inode)', () => {
      const dir = planted(0o700);
      fs.writeFileSync(path.join(dir, MARKER_FILE), 'spike-state v1 ino=12345\n', { mode: 0o600 });
      return dir;
    }, /dev-stack\.marker that does not belong to this folder/],
    ['copied folder (marker of another inode)', () => {
      const src = path.join(tmp(), '.spike');
      prepareDevDir(src);
      const dir = planted(0o700);
      fs.copyFileSync(path.join(src, MARKER_FILE), path.join(dir, MARKER_FILE));
      return dir;
    }, /dev-stack\.marker that does not belong to this folder/],
    ['marker readable by others', () => {
      const dir = path.join(tmp(), '.spike');
      prepareDevDir(dir);
      fs.writeFileSync(path.join(dir, 'x'), '');
      fs.chmodSync(path.join(dir, MARKER_FILE), 0o644);
      return dir;
    }, /readable or writable by others/],
    ['marker is a symlink', () => {
      const dir = path.join(tmp(), '.spike');
      prepareDevDir(dir);
      const real = path.join(path.dirname(dir), 'm');
      fs.renameSync(path.join(dir, MARKER_FILE), real);
      fs.symlinkSync(real, path.join(dir, MARKER_FILE));
      return dir;
    }, /is a symbolic link/],
    ['folder is a symlink to a valid one', () => {
      const real = path.join(tmp(), '.spike');
      prepareDevDir(real);
      const dir = path.join(tmp(), '.spike');
      fs.symlinkSync(real, dir);
      return dir;
    }, /is a symbolic link/],
    ['folder is a file', () => {
      const dir = path.join(tmp(), '.spike');
      fs.writeFileSync(dir, '');
      return dir;
    }, /is not a directory/],
    ['empty but group-writable', () => {
      const dir = path.join(tmp(), '.spike');
      fs.mkdirSync(dir);
      fs.chmodSync(dir, 0o775);
      return dir;
    }, /writable by group or others/],
  ];
  if (process.getuid?.() === 0) {
    rows.push(['owned by another user', () => {
      const dir = path.join(tmp(), '.spike');
      prepareDevDir(dir);
      fs.chownSync(dir, 65534, 65534);
      return dir;
    }, /is owned by another user/]);
  }
  for (const [name, make, re] of rows) {
    const dir = make();
    const before = fs.lstatSync(dir);
    const list = before.isDirectory() && !before.isSymbolicLink() ? fs.readdirSync(dir).sort() : [];
    assert.throws(() => prepareDevDir(dir), refused(re), name);
    const after2 = fs.lstatSync(dir);
    assert.equal(after2.mode, before.mode, `${name}: mode unchanged`);
    if (list.length > 0) assert.deepEqual(fs.readdirSync(dir).sort(), list, `${name}: nothing written`);
  }
});

test('the error is one line that names the folder, the reason and what to do', () => {
  const line = devStateErrorLine(new DevStateError('/w/my dir/.spike', 'has no dev-stack.marker (it was made by an earlier version, or not by us)'));
  assert.ok(!line.includes('\n'));
  assert.match(line, /^\[dev\] Error: refusing the state folder \/w\/my dir\/\.spike: it has no dev-stack\.marker .*delete it \(rm -rf '\/w\/my dir\/\.spike'\) .*SPIKE_DEV_DIR/);
});

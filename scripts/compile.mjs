// Compiles the repository as the npm scripts need it (build, prepare, pretest, prebench):
// `tsc -b .`, which skips the compile when no input changed since the last one (`npm test` right
// after `npm ci` compiled everything already). Its up-to-date check compares mtimes with its
// build information (tsconfig.json `tsBuildInfoFile`), so this script keeps that check honest:
// - a source saved while tsc was compiling is older than the build information written at the
//   end, and would never be compiled: when any input changed during the run, compile again;
// - installed type definitions are not inputs of that check: when package-lock.json is newer than
//   the build information (an `npm ci` or upgrade), the build information is removed first, so
//   the whole repository is compiled and type-checked against the new packages.
// Any tsc error ends this script with tsc's exit code.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILD_INFO } from '../bin/load-bundle.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const INPUT_DIRS = ['src', 'test', 'bench'];

const mtime = (file) => {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
};

/** The newest mtime among tsconfig.json and every .ts file under the input folders. */
function newestInput() {
  let newest = mtime(path.join(root, 'tsconfig.json')) ?? 0;
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, mtime(p) ?? 0);
    }
  };
  for (const d of INPUT_DIRS) if (fs.existsSync(path.join(root, d))) walk(path.join(root, d));
  return newest;
}

const info = mtime(BUILD_INFO);
const lock = mtime(path.join(root, 'package-lock.json'));
if (info !== undefined && lock !== undefined && lock > info) fs.rmSync(BUILD_INFO, { force: true });

for (let run = 1; ; run++) {
  // Compared with the newest input before the run, not with the clock: a file whose mtime lies
  // in the future (a skewed clock, an archive) is not taken for an edit on every run.
  const before = newestInput();
  const r = spawnSync(process.execPath, [tsc, '-b', '.'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  if (newestInput() <= before) break;
  // Something was saved during the compile: its output may be older than the source.
  fs.rmSync(BUILD_INFO, { force: true });
  if (run === 3) {
    process.stderr.write('compile: sources keep changing during the compile; run it again once they are saved\n');
    process.exit(1);
  }
}

// Builds native/malloc-trim (one N-API function running glibc's malloc_trim; src/lib/malloc-trim.ts)
// when the package is installed: npm runs this as the package's `install` script, in a checkout
// (`npm ci`) and in a project that installs the package. It never fails the install: without a
// C compiler, or on a system other than Linux, it says so in one line and the servers run without
// giving freed native memory back (as they did before it existed).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'malloc-trim');
const say = (line) => process.stderr.write(`spike-ts native/malloc-trim: ${line}\n`);

if (process.platform !== 'linux') {
  say(`not built on ${process.platform} (glibc's malloc_trim is Linux only)`);
  process.exit(0);
}
// npm gives its own node-gyp to install scripts (npm_config_node_gyp); else one on PATH.
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp && fs.existsSync(gyp) ? [process.execPath, [gyp]] : ['node-gyp', []];
const r = spawnSync(cmd, [...args, 'rebuild', '--release'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (r.status === 0 && fs.existsSync(path.join(dir, 'build', 'Release', 'malloc_trim.node'))) {
  fs.rmSync(path.join(dir, 'build', 'Release', 'obj.target'), { recursive: true, force: true });
  process.exit(0);
}
const why = r.error ? r.error.message : (r.stderr || r.stdout || '').split('\n').filter((l) => /error/i.test(l))[0] ?? `exit ${r.status}`;
say(`not built (${why.trim().slice(0, 200)}); Nexus and the Keepers keep freed native memory after bursts`);

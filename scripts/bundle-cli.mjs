// Bundles the `spike` CLI (dist/src/pilot/main.js and everything it imports) into one
// CommonJS file, dist/cli/spike.cjs, so a CLI call reads one file instead of resolving and
// compiling ~300 modules, and so bin/spike.js can compile it with a V8 code cache (issue 15:
// start-up time; Node 20 has no code cache for ES modules). Run after `tsc -p .`.
//
// Left out of the bundle (loaded from node_modules if ever reached): native and database
// drivers (never reached from the CLI) and grpc-js / proto-loader, which only the watching
// Workload API source uses; a CLI call fetches its SVID once over node:http2.
//
// The stamp (dist/cli/spike.stamp) is one line: `<mtime of dist/src/pilot/main.js> <sha256 of
// the bundle>`. bin/spike.js uses the bundle only while the mtime matches (`tsc` rewrites every
// output, so a later `tsc` run makes bin/spike.js fall back to dist/src/ until this script runs
// again), and keys its code cache by the hash, so a cache never outlives the bundle it was made
// from. Without esbuild installed this script says so and exits 0: the CLI then runs from
// dist/src/ (slower, same behaviour).
//
// It also writes a build-time code cache, dist/cli/v8-<hash>.build.cache: the bundle compiled
// and run as `spike --help` runs it (every command group registered, nothing connected), so a
// first call that finds no cache of its own still skips compiling most of the bundle (for
// example from a read-only global install). V8 refuses it under another Node version or other
// flags, and bin/spike.js applies the same ownership and mode checks as to its own cache.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'dist', 'src', 'pilot', 'main.js');
const outDir = path.join(root, 'dist', 'cli');
const outFile = path.join(outDir, 'spike.cjs');
const stampFile = path.join(outDir, 'spike.stamp');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('bundle-cli: esbuild is not installed; the CLI runs unbundled from dist/src/\n');
  process.exit(0);
}
if (!fs.existsSync(entry)) {
  process.stderr.write('bundle-cli: dist/src/pilot/main.js is missing; run `tsc -p .` first\n');
  process.exit(1);
}
// A fresh folder: no stamp, chunk or code cache of an older build survives.
fs.rmSync(outDir, { recursive: true, force: true });
const mtime = String(fs.statSync(entry).mtimeMs);

// commander requires node:child_process at load time (~5 ms of a CLI call) for executable
// subcommands, which `spike` has none of: give commander a stand-in that loads the real module
// on first property access.
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (a) =>
      /[\\/]commander[\\/]/.test(a.importer) ? { path: 'child_process', namespace: 'spike-lazy' } : undefined);
    b.onLoad({ filter: /.*/, namespace: 'spike-lazy' }, () => ({
      contents: "let m; const real = () => (m ??= require('node:child_process'));\n" +
        'module.exports = new Proxy({}, { get: (_, k) => real()[k], has: (_, k) => k in real() });\n',
      loader: 'js',
    }));
  },
};
await esbuild.build({
  entryPoints: [entry],
  outfile: outFile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // ASCII only, so bin/spike.js can read the file as latin1 (no UTF-8 decoding).
  // ES module builds where packages ship them: scope-hoisted, no CommonJS interop at load.
  mainFields: ['module', 'main'],
  charset: 'ascii',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'eof',
  logLevel: 'warning',
  // Dynamic import() becomes a promise around require(): bin/spike.js compiles the bundle with
  // vm.Script, where a real import() has no loader.
  supported: { 'dynamic-import': false },
  // The file is one function expression that bin/spike.js compiles and calls with these
  // parameters (no string concatenation of the 0.9 MB source at run time).
  define: { 'import.meta.url': '__spikeBundleUrl' },
  banner: { js: '(function (exports, require, module, __filename, __dirname, __spikeBundleUrl) {' },
  footer: { js: '\n})' },
  plugins: [lazyChildProcess],
  external: ['better-sqlite3', 'pg', 'pg-native', '@grpc/grpc-js', '@grpc/proto-loader'],
});
const code = fs.readFileSync(outFile);
if (code.some((b) => b > 0x7f)) {
  process.stderr.write('bundle-cli: the bundle is not ASCII\n');
  process.exit(1);
}
const hash = crypto.createHash('sha256').update(code).digest('hex');
fs.writeFileSync(stampFile, `${mtime} ${hash}`);
process.stderr.write(`bundle-cli: wrote ${path.relative(root, outFile)} (${Math.round(code.length / 1024)} KiB)\n`);
await writeBuildCache(code.toString('latin1'), path.join(outDir, `v8-${hash.slice(0, 32)}.build.cache`));

/** Compiles and runs the bundle as bin/spike.js does, builds `spike --help`'s program, writes the code cache. */
async function writeBuildCache(source, cacheFile) {
  try {
    const vm = await import('node:vm');
    const { createRequire } = await import('node:module');
    const { pathToFileURL } = await import('node:url');
    const { Writable } = await import('node:stream');
    const script = new vm.Script(source, { filename: outFile });
    const mod = { exports: {} };
    script.runInThisContext()(mod.exports, createRequire(outFile), mod, outFile, outDir, pathToFileURL(outFile).href);
    const sink = new Writable({ write: (_chunk, _enc, done) => done() });
    const code = await mod.exports.run(['--help'], { stdout: sink, stderr: sink, stdin: process.stdin, env: {}, cwd: root });
    if (code !== 0) throw new Error(`spike --help exited ${code}`);
    fs.writeFileSync(cacheFile, script.createCachedData(), { mode: 0o644 });
    process.stderr.write(`bundle-cli: wrote ${path.relative(root, cacheFile)} (${Math.round(fs.statSync(cacheFile).size / 1024)} KiB)\n`);
  } catch (e) {
    // The first call then compiles the bundle and writes its own cache, as before.
    process.stderr.write(`bundle-cli: no build-time code cache (${e instanceof Error ? e.message : String(e)})\n`);
  }
}

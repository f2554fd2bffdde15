// Bundles every command (`spike` and the server binaries: the COMMANDS of bin/load-bundle.js)
// into one CommonJS file each, dist/cli/<name>.cjs, so a start reads one file instead of
// resolving and compiling hundreds of ES modules, and so bin/load-bundle.js can compile it with a
// V8 code cache (issue 15: start-up time; Node 20 has no code cache for ES modules). Run after
// `tsc` (npm's build, prepare, pretest and prebench scripts run scripts/compile.mjs and then this).
//
// Left out of the bundles (loaded from node_modules when reached): the native and database
// drivers (better-sqlite3, pg), @grpc/proto-loader (reached only by spike-agent, which bundles it), and for `spike`
// also grpc-js, which only the watching Workload API source uses (a CLI call fetches its SVID
// once over node:http2); the servers watch, so theirs is in.
//
// A stamp (dist/cli/<name>.stamp) is one line: `<compiled mark> <sha256 of the bundle>`, the
// mark being the mtimes of the command's first module and of the build information of `tsc -b`
// (bin/load-bundle.js `compiledMark`). bin/load-bundle.js uses a bundle only while the mark
// matches (a later whole `tsc -p .` or any `tsc -b .` that compiled changes it, and the command
// falls back to dist/src/ until this script runs again; a watching `tsc -w` rewrites single
// modules and does not: run this script after it), and keys its code cache by the hash, so a
// cache never outlives the bundle it was made from. Without esbuild installed this script says so,
// removes any older bundles and exits 0: the commands then run from dist/src/ (slower, same
// behaviour).
//
// It also writes a build-time code cache per bundle, dist/cli/v8-<hash>.build.cache: the cache
// that `node bin/<name>.js --help` writes (the bundle compiled and every module loaded, under
// the V8 flags that bin applies, e.g. the Keeper's), so a first start that finds no cache of its
// own still skips compiling most of the bundle (for example from a read-only global install).
// V8 refuses it under another Node version or other flags, and bin/load-bundle.js applies the
// same ownership and mode checks as to a run's own cache.
import { execFile } from 'node:child_process';
import { isBuiltin } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS, BUNDLE_DIR, compiledMark } from '../bin/load-bundle.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = path.join(root, 'dist', 'src');
// proto-loader (and protobufjs under it) is reached by no command: the watching source decodes
// with the project's own protobuf reader; grpc-js would load it only for channelz or ORCA.
const SERVER_EXTERNAL = ['better-sqlite3', 'pg', 'pg-native', '@grpc/proto-loader'];
// spike-agent serves the Workload API with service codecs that @grpc/proto-loader builds at start:
// bundled there (loading it and protobufjs from node_modules cost ~60-100 ms of every agent start).
const EXTERNAL = {
  spike: [...SERVER_EXTERNAL, '@grpc/grpc-js'],
  'spike-agent': SERVER_EXTERNAL.filter((p) => p !== '@grpc/proto-loader'),
};
const say = (line) => process.stderr.write(`bundle-bins: ${line}\n`);

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  say('esbuild is not installed; the commands run unbundled from dist/src/');
  fs.rmSync(BUNDLE_DIR, { recursive: true, force: true }); // an older build's bundles must not run
  process.exit(0);
}
for (const mods of Object.values(COMMANDS)) {
  for (const m of mods) {
    if (!fs.existsSync(path.join(srcDir, m))) {
      say(`dist/src/${m} is missing; run \`tsc -p .\` first`);
      process.exit(1);
    }
  }
}
// What the last complete run was made from (written last, below): this Node, this esbuild, this
// script and the loader, each command's compiled mark, and the mtime and size of every file the
// bundles were built from. When all of it is unchanged and every output is there, the bundles are
// current and are kept, with the code caches their runs wrote (`npm test` right after `npm ci`).
const INPUTS = path.join(BUNDLE_DIR, 'inputs.json');
const selfDigest = () => crypto.createHash('sha256')
  .update(fs.readFileSync(fileURLToPath(import.meta.url)))
  .update(fs.readFileSync(path.join(root, 'bin', 'load-bundle.js')))
  .digest('hex');
const fileState = (rel) => {
  const st = fs.statSync(path.join(root, rel));
  return [st.mtimeMs, st.size];
};
function upToDate() {
  try {
    const was = JSON.parse(fs.readFileSync(INPUTS, 'utf8'));
    if (was.node !== process.version || was.esbuild !== esbuild.version || was.self !== selfDigest()) return false;
    if (JSON.stringify(Object.keys(was.marks).sort()) !== JSON.stringify(Object.keys(COMMANDS).sort())) return false;
    for (const [name, mark] of Object.entries(was.marks)) {
      if (mark !== compiledMark(name)) return false;
      const [, hash] = fs.readFileSync(path.join(BUNDLE_DIR, `${name}.stamp`), 'latin1').split(' ');
      if (!fs.statSync(path.join(BUNDLE_DIR, `v8-${hash.slice(0, 32)}.build.cache`)).isFile()) return false;
      // A bundle changed or cut short by hand is made again.
      if (crypto.createHash('sha256').update(fs.readFileSync(path.join(BUNDLE_DIR, `${name}.cjs`))).digest('hex') !== hash) return false;
    }
    return Object.entries(was.files).every(([rel, state]) => JSON.stringify(fileState(rel)) === JSON.stringify(state));
  } catch {
    return false; // anything missing or unreadable: build
  }
}
if (upToDate()) {
  say('bundles are up to date');
  process.exit(0);
}

// A fresh folder that only its owner can write (bin/load-bundle.js writes code caches only
// there): no stamp, bundle or code cache of an older build survives.
fs.rmSync(BUNDLE_DIR, { recursive: true, force: true });
fs.mkdirSync(BUNDLE_DIR, { recursive: true, mode: 0o755 });
fs.chmodSync(BUNDLE_DIR, 0o755);

// commander requires node:child_process at load time (~5 ms of a start) for executable
// subcommands, which no command has: give commander a stand-in that loads the real module on
// first property access.
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

// undici's cookie helpers (lib/web/cookies/index.js, reached through its index from every
// bundle that dials out: Nexus, Bootstrap) read `globalThis.Headers` when loaded, for a brand
// check. In Node that global is a lazy getter that loads Node's own internal copy of undici
// (30–60 ms of a start), though no command uses cookies. The check is built on its first use
// instead: the same function, the same classes. If a new undici words it differently, the file
// is bundled as it is (and this says so): slower, same behaviour.
const UNDICI_COOKIES = /[\\/]undici[\\/]lib[\\/]web[\\/]cookies[\\/]index\.js$/;
const EAGER_BRAND_CHECK = 'const brandChecks = webidl.brandCheckMultiple([Headers, globalThis.Headers].filter(Boolean))';
const lazyUndiciCookies = {
  name: 'lazy-undici-cookies',
  setup(b) {
    b.onLoad({ filter: UNDICI_COOKIES }, (a) => {
      const text = fs.readFileSync(a.path, 'utf8');
      if (!text.includes(EAGER_BRAND_CHECK)) {
        say(`${path.relative(root, a.path)}: brand check not found; bundled unchanged (loads Node's internal undici at start)`);
        return undefined;
      }
      const lazy = 'let brandCheck; const brandChecks = (V) => (brandCheck ??= '
        + 'webidl.brandCheckMultiple([Headers, globalThis.Headers].filter(Boolean)))(V)';
      return { contents: text.replace(EAGER_BRAND_CHECK, lazy), loader: 'js' };
    });
  },
};

// Our modules load some packages on first use through createRequire (pino in src/lib/log.ts,
// undici in src/spiffe/tls/dialer.ts, re2js in src/protocol/validate.ts), which a bundler
// cannot see. In a module that does (`<name> = createRequire(import.meta.url)`), each
// `<name>('package')` becomes `require('package')`, which the bundler follows: the package
// comes from the bundle, still on first use (a bundled CommonJS package runs when first
// required), and only a bundle whose live code reaches that call carries it. Builtins and
// externals (the database drivers) are left to the real require, as before.
const lazyRequire = (external) => ({
  name: 'lazy-require',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, (a) => {
      if (!a.path.startsWith(srcDir + path.sep)) return undefined;
      let text = fs.readFileSync(a.path, 'utf8');
      // `import fs from 'node:fs'` would become `__toESM(require('node:fs'))`: a copy of every
      // export of the builtin as a getter, once per importing module (eleven of node:fs alone in
      // `spike`, ~200 KB allocated at start). The default import of a builtin is its
      // module.exports, which is what require returns: the same object, without the copy.
      text = text.replace(/^import (\w+) from '(node:[\w/]+)';$/gm, (line, name, id) => (isBuiltin(id) ? `const ${name} = require('${id}');` : line));
      for (const [, v] of text.matchAll(/\b(\w+) = createRequire\(import\.meta\.url\)/g)) {
        text = text.replace(new RegExp(`\\b${v}\\(\\s*'([^']+)'\\s*\\)`, 'g'), (call, id) =>
          (isBuiltin(id) || external.includes(id) ? call : `require(${JSON.stringify(id)})`));
      }
      return { contents: text, loader: 'js' };
    });
  },
});

/** A command of several modules gets an entry (`spike-entry:<name>`) that re-exports them all. */
const combinedEntries = {
  name: 'spike-entry',
  setup(b) {
    b.onResolve({ filter: /^spike-entry:/ }, (a) => ({ path: a.path.slice('spike-entry:'.length), namespace: 'spike-entry' }));
    b.onLoad({ filter: /.*/, namespace: 'spike-entry' }, (a) => ({
      contents: COMMANDS[a.path].map((m) => `export * from ${JSON.stringify(path.join(srcDir, m))};\n`).join(''),
      resolveDir: srcDir,
      loader: 'js',
    }));
  },
};

/**
 * Bundles commands that leave out the same packages in one esbuild run (the modules they share
 * are read and parsed once); writes each one's stamp and returns the bundles' sha256 by name.
 */
async function bundle(names, external, inputs) {
  const result = await esbuild.build({
    metafile: true,
    absWorkingDir: root,
    entryPoints: Object.fromEntries(names.map((n) => [n, COMMANDS[n].length === 1 ? path.join(srcDir, COMMANDS[n][0]) : `spike-entry:${n}`])),
    outdir: BUNDLE_DIR,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // ES module builds where packages ship them: scope-hoisted, no CommonJS interop at load.
    mainFields: ['module', 'main'],
    // ASCII only, so bin/load-bundle.js can read the file as latin1 (no UTF-8 decoding).
    charset: 'ascii',
    minifyWhitespace: true,
    minifySyntax: true,
    // Licence comments go to <name>.cjs.LEGAL.txt beside it (some are not ASCII).
    legalComments: 'external',
    logLevel: 'warning',
    // Dynamic import() becomes a promise around require(): bin/load-bundle.js compiles the
    // bundle with vm.Script, where a real import() has no loader.
    supported: { 'dynamic-import': false },
    // The file is one function expression that bin/load-bundle.js compiles and calls with these
    // parameters (no string concatenation of the source at run time).
    define: { 'import.meta.url': '__spikeBundleUrl' },
    banner: { js: '(function (exports, require, module, __filename, __dirname, __spikeBundleUrl) {' },
    footer: { js: '\n})' },
    plugins: [lazyChildProcess, lazyUndiciCookies, lazyRequire(external), combinedEntries],
    external,
  });
  // Files only: a plugin's virtual module is named `<namespace>:<path>`.
  for (const rel of Object.keys(result.metafile.inputs)) if (!/^[\w-]+:/.test(rel)) inputs.add(rel);
  const hashes = {};
  for (const name of names) {
    const outFile = path.join(BUNDLE_DIR, `${name}.cjs`);
    const code = fs.readFileSync(outFile);
    if (code.some((b) => b > 0x7f)) throw new Error(`${name}: the bundle is not ASCII`);
    fs.chmodSync(outFile, 0o644);
    hashes[name] = crypto.createHash('sha256').update(code).digest('hex');
    fs.writeFileSync(path.join(BUNDLE_DIR, `${name}.stamp`), `${compiledMark(name)} ${hashes[name]}`, { mode: 0o644 });
    say(`wrote ${path.relative(root, outFile)} (${Math.round(code.length / 1024)} KiB)`);
  }
  return hashes;
}

/**
 * Runs `node bin/<name>.js --help` (which writes the bundle's code cache, finding none) and keeps
 * that cache as the build-time one. Without it a first start compiles the bundle, as before.
 */
function buildCache(name, hash) {
  const own = path.join(BUNDLE_DIR, `v8-${hash.slice(0, 32)}.cache`);
  const built = own.replace(/\.cache$/, '.build.cache');
  // No SPIKE_ or SPIFFE_ setting of this shell reaches the run (e.g. Nexus's V8 setting).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SPIKE|SPIFFE)_/.test(k)));
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, 'bin', `${name}.js`), '--help'], { cwd: root, env, timeout: 120_000 }, (err) => {
      try {
        if (err && typeof err.code !== 'number') throw err;
        fs.renameSync(own, built);
        say(`wrote ${path.relative(root, built)} (${Math.round(fs.statSync(built).size / 1024)} KiB)`);
      } catch (e) {
        say(`no build-time code cache for ${name} (${e instanceof Error ? e.message : String(e)})`);
      }
      resolve();
    });
  });
}

try {
  const byExternal = new Map();
  for (const name of Object.keys(COMMANDS)) {
    const external = EXTERNAL[name] ?? SERVER_EXTERNAL;
    byExternal.set(external, [...(byExternal.get(external) ?? []), name]);
  }
  const started = Date.now();
  const inputs = new Set();
  const hashes = Object.assign({}, ...(await Promise.all([...byExternal].map(([external, names]) => bundle(names, external, inputs)))));
  await Promise.all(Object.keys(COMMANDS).map((name) => buildCache(name, hashes[name])));
  const files = Object.fromEntries([...inputs].sort().map((rel) => [rel, fileState(rel)]));
  const marks = Object.fromEntries(Object.keys(COMMANDS).map((name) => [name, compiledMark(name)]));
  // An input rewritten while the bundles were made (a compile running meanwhile) may not be in
  // them: then no record, and the next run bundles again.
  if (Object.values(files).some(([ms]) => ms >= started)) process.exit(0);
  fs.writeFileSync(INPUTS, JSON.stringify({ node: process.version, esbuild: esbuild.version, self: selfDigest(), marks, files }), { mode: 0o644 });
} catch (e) {
  say(e instanceof Error ? e.message : String(e));
  process.exit(1);
}

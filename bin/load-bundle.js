// Loads a command's code for its thin bin/<name>.js entry point (issue 15: start-up time; every
// test stack starts an agent, Keepers, Nexus and Bootstrap, and start-up is mostly module loading).
//
// When scripts/bundle-bins.mjs has bundled the command into one CommonJS file
// (dist/cli/<name>.cjs) from the compiled code that is there now, that file is run instead of
// the hundreds of ES modules under dist/src/. Its stamp (dist/cli/<name>.stamp:
// `<compiled mark> <sha256 of the bundle>`, the mark from `compiledMark` below) must match the
// compiled code, so a later `tsc` run is never shadowed by an older bundle: the command then runs
// from dist/src/ (slower, same behaviour). An installed package (no tsconfig.json beside dist/) is
// never recompiled and its files' mtimes are the install's: there the bundle's sha256 must be
// the stamp's instead (to patch an installed package's code, rebuild it or delete dist/cli/).
// The bundle is compiled with a V8 code cache (dist/cli/v8-<hash>.cache, named by the
// bundle's hash so it can only belong to that bundle).
// A run that finds no usable cache of its own writes one once the command's work function has
// returned (a server: once it serves; a one-shot command: before it exits) or at exit, whichever
// comes first (atomically; skipped where the folder is read-only or writable by others). V8
// itself refuses a cache made by another Node/V8 version or under other V8 flags, and the bundle
// is then simply compiled. Until a run has written that cache, the bundler's build-time cache
// (v8-<hash>.build.cache, made by running `<name> --help` at build time) is used, under the same
// checks: a first run, or every run of a read-only install, is fast too.
//
// A cache is compiled code: it is used only if the bundle's owner owns it, nobody else can write
// it, and it sits in a folder nobody else can write; it is opened without following a symlink
// and without blocking on a FIFO.
"use strict";
// CommonJS, like every file in bin/ (bin/package.json): a command started from an ES module
// entry first loads Node's ES module loader (nine more internal modules and an asynchronous
// read of its own source), about 5 ms of a `spike` call that a CommonJS entry never pays.
const { createRequire } = require("node:module");
const fs = require("node:fs");
const path = require("node:path");
const { pathToFileURL } = require("node:url");

/**
 * Each command's modules under dist/src/ (its exports are theirs together); the first one's
 * mtime is part of the stamp's mark (`compiledMark`). scripts/bundle-bins.mjs bundles the same list.
 */
const COMMANDS = {
  "spike": ["pilot/main.js"],
  "spike-nexus": ["nexus/main.js"],
  "spike-keeper": ["keeper/main.js"],
  "spike-agent": ["agent/main.js", "lib/hardening.js"],
  "spike-bootstrap": ["bootstrap/main.js"],
  "spike-dev": ["dev/main.js"],
};

const dist = path.join(__dirname, "..", "dist");
/** The folder of the bundles, their stamps and code caches. */
const BUNDLE_DIR = path.join(dist, "cli");

/**
 * Whether this is a checkout that compiles its own code (its tsconfig.json is there), where a
 * later build must never be shadowed by an older bundle. An installed package ships no
 * tsconfig.json and is never recompiled: its bundles came with its code, and the install gave
 * every file a new mtime, so the mtime half of the stamp cannot be compared there.
 */
const COMPILES_HERE = fs.existsSync(path.join(dist, "..", "tsconfig.json"));

/**
 * The build information of the npm scripts' compile (`tsc -b .`, scripts/compile.mjs):
 * tsconfig.json's `tsBuildInfoFile` (inside dist/src/, so whatever removes dist/src/ forces a
 * whole rebuild).
 */
const BUILD_INFO = path.join(dist, "src", ".tsbuildinfo");

/**
 * What a stamp records of the compiled code its bundle was made from: the mtimes of the
 * command's first module and of BUILD_INFO (`-` when there is none), as `<ms>/<ms>`. A whole
 * `tsc -p .` rewrites every module, a `tsc -b .` that compiled rewrites its build information:
 * either changes the mark. A watching `tsc -w` rewrites only the modules that changed and does
 * not; after it, run scripts/bundle-bins.mjs (or delete dist/cli/) before running a command.
 */
function compiledMark(name) {
  const entry = fs.statSync(path.join(dist, "src", COMMANDS[name][0])).mtimeMs;
  let info = "-";
  try {
    info = String(fs.statSync(BUILD_INFO).mtimeMs);
  } catch {
    // no incremental build here
  }
  return `${entry}/${info}`;
}

/** The command's bundle and its code cache paths, when the bundle matches the compiled code. */
function bundleFor(name) {
  try {
    const [mark, hash] = fs.readFileSync(path.join(BUNDLE_DIR, `${name}.stamp`), "latin1").split(" ");
    if (!/^[0-9a-f]{64}$/.test(hash ?? "")) return undefined;
    const entry = path.join(dist, "src", COMMANDS[name][0]);
    if (COMPILES_HERE && mark !== compiledMark(name)) return undefined;
    const file = path.join(BUNDLE_DIR, `${name}.cjs`);
    // Without the mtime check, the bundle must at least be the one its stamp was written for.
    let source;
    if (!COMPILES_HERE) {
      source = fs.readFileSync(file, "latin1");
      if (require("node:crypto").createHash("sha256").update(source, "latin1").digest("hex") !== hash) return undefined;
    }
    const cacheName = `v8-${hash.slice(0, 32)}`;
    return {
      file,
      entry,
      source,
      cache: path.join(BUNDLE_DIR, `${cacheName}.cache`),
      buildCache: path.join(BUNDLE_DIR, `${cacheName}.build.cache`),
    };
  } catch {
    return undefined; // no bundle: run from dist/src/
  }
}

/** Whether only `uid` can write `st` (a file or folder; not checked on Windows). */
function ownerOnly(st, uid) {
  return process.platform === "win32" || (st.uid === uid && (st.mode & 0o022) === 0);
}

/** The code cache at `file`, if only the bundle's owner could have written it (see the top). */
function readCache(b, file) {
  let fd;
  try {
    const owner = fs.statSync(b.file).uid;
    if (!ownerOnly(fs.statSync(BUNDLE_DIR), owner)) return undefined;
    // No symlink followed, and a FIFO planted in its place cannot block the open.
    const { O_RDONLY, O_NOFOLLOW = 0, O_NONBLOCK = 0 } = fs.constants;
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile() || !ownerOnly(st, owner)) return undefined;
    return fs.readFileSync(fd);
  } catch {
    return undefined; // no cache yet
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes the script's code cache atomically, only into a folder that only this user can write. */
function writeCache(b, script) {
  const tmp = `${b.cache}.${process.pid}.tmp`;
  try {
    const uid = typeof process.getuid === "function" ? process.getuid() : undefined;
    if (uid !== undefined && !ownerOnly(fs.statSync(BUNDLE_DIR), uid)) return; // shared folder: no cache
    fs.accessSync(BUNDLE_DIR, fs.constants.W_OK); // read-only install: no cache, no cost
    fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o644, flag: "wx" });
    fs.renameSync(tmp, b.cache);
  } catch {
    try { fs.rmSync(tmp, { force: true }); } catch { /* nothing to clean */ }
  }
}

/**
 * Runs the bundle through vm.Script with the code cache. Returns its exports and a function that
 * writes this run's cache if it needs one (idempotent).
 */
function runBundle(b) {
  const vm = require("node:vm");
  // ASCII only (checked when bundled), so latin1 reads it exactly and without UTF-8 decoding.
  const source = b.source ?? fs.readFileSync(b.file, "latin1");
  const own = readCache(b, b.cache);
  const cachedData = own ?? readCache(b, b.buildCache);
  // The file is one function expression (see scripts/bundle-bins.mjs).
  const script = new vm.Script(source, { filename: b.file, ...(cachedData ? { cachedData } : {}) });
  let pending = !own || script.cachedDataRejected;
  const save = () => {
    if (!pending) return;
    pending = false;
    writeCache(b, script);
  };
  if (pending) process.once("exit", save);
  const mod = { exports: {} };
  // import.meta.url in the bundle is the first module's: paths it computes (the package root, a
  // require of an external package) come out as they do from dist/src/.
  script.runInThisContext()(mod.exports, createRequire(b.file), mod, b.file, path.dirname(b.file), pathToFileURL(b.entry).href);
  return { exports: mod.exports, save };
}

/** The command's exports: from its bundle when that matches the compiled code, else from dist/src/. */
async function load(name) {
  const b = bundleFor(name);
  if (b) return runBundle(b);
  const mods = await Promise.all(COMMANDS[name].map((m) => import(pathToFileURL(path.join(dist, "src", m)).href)));
  return { exports: Object.assign({}, ...mods), save: () => undefined };
}

/**
 * Loads command `name` and runs `work` with its exports. Once `work` has settled, a bundle run
 * that needs a code cache writes it (the functions compiled so far are in it: a server's whole
 * start-up), as it also does at exit.
 */
async function runCommand(name, work) {
  const { exports, save } = await load(name);
  try {
    return await work(exports);
  } finally {
    setImmediate(save).unref();
  }
}

/**
 * Runs a bin file's whole work (a function returning a promise) to its end with the exit codes
 * an ES module entry's top-level await gave it: a failure prints the error and exits 1 whatever
 * `--unhandled-rejections` says (a failed command must never exit 0), and work that never
 * settles before the process runs out of things to do exits 13, Node's code for an unsettled
 * top-level await, instead of 0.
 */
function runEntry(work) {
  let settled = false;
  // "beforeExit": the event loop ran empty (not an explicit process.exit(), which a command may call).
  process.once("beforeExit", () => {
    if (settled || process.exitCode) return;
    process.stderr.write("Warning: the command stopped before it finished (nothing left to wait for); exit code 13\n");
    process.exitCode = 13;
  });
  Promise.resolve()
    .then(work)
    .then(
      () => {
        settled = true;
      },
      (e) => {
        settled = true;
        // As Node prints an uncaught error: stack, code, cause and the errors of an AggregateError.
        process.stderr.write(`${require("node:util").inspect(e)}\n`);
        process.exit(1);
      },
    );
}

module.exports = { COMMANDS, BUNDLE_DIR, BUILD_INFO, compiledMark, bundleFor, runCommand, runEntry };

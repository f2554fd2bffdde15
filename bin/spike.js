#!/usr/bin/env node
// Thin entry point: the implementation lives in src/pilot/ (compiled to dist/).
// Commands that handle Shamir shards (operator recover/restore/verify-shard) first make the
// process non-dumpable (ENV-08, src/lib/hardening.ts); everyday commands skip that cost (and
// the module: only a command line naming `operator` loads it).
//
// Start-up time (issue 15): when scripts/bundle-cli.mjs has bundled the CLI into one CommonJS
// file (dist/cli/spike.cjs) from the compiled code that is there now, that file is run instead
// of ~300 modules. Its stamp (`<mtime of dist/src/pilot/main.js> <sha256 of the bundle>`) must
// match the compiled code, so a later `tsc` run is never shadowed by an older bundle. The
// bundle is compiled with a V8 code cache (dist/cli/v8-<hash>.cache, named by the bundle's
// hash so it can only belong to that bundle); a run that finds no usable cache writes one at
// exit (atomically; silently skipped where the folder is read-only). V8 itself refuses a cache
// made by another Node/V8 version or flags, and then the bundle is simply compiled. Until a
// call has written that cache, the bundler's build-time cache (v8-<hash>.build.cache, made by
// running `spike --help` at build time) is used if there is one, under the same checks: the
// first call, or every call of a read-only install, is fast too.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const fs = require("node:fs");
const path = require("node:path");
const { fileURLToPath, pathToFileURL } = require("node:url");

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, "..", "dist");

/** The bundle and its code cache path, when the bundle matches the compiled code. */
function bundle() {
  try {
    const [mtime, hash] = fs.readFileSync(path.join(dist, "cli", "spike.stamp"), "latin1").split(" ");
    if (!/^[0-9a-f]{64}$/.test(hash ?? "")) return undefined;
    if (mtime !== String(fs.statSync(path.join(dist, "src", "pilot", "main.js")).mtimeMs)) return undefined;
    const name = `v8-${hash.slice(0, 32)}`;
    return {
      file: path.join(dist, "cli", "spike.cjs"),
      cache: path.join(dist, "cli", `${name}.cache`),
      buildCache: path.join(dist, "cli", `${name}.build.cache`),
    };
  } catch {
    return undefined; // no bundle: run from dist/src/
  }
}

/**
 * The code cache, if there is one that only the bundle's owner could have written: a cache is
 * compiled code, so one that anybody else can write (or that another user put in a shared
 * folder) is ignored, and the call compiles the bundle instead.
 */
function readCache(b, file) {
  let fd;
  try {
    // No symlink followed, and a FIFO planted in its place cannot block the open.
    const { O_RDONLY, O_NOFOLLOW = 0, O_NONBLOCK = 0 } = fs.constants;
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    const st = fs.fstatSync(fd);
    const owner = fs.statSync(b.file).uid;
    if (!st.isFile() || (process.platform !== "win32" && (st.uid !== owner || (st.mode & 0o022) !== 0))) return undefined;
    return fs.readFileSync(fd);
  } catch {
    return undefined; // no cache yet
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Runs the CommonJS bundle through vm.Script with the code cache; returns its exports. */
function runBundle(b) {
  const vm = require("node:vm");
  // ASCII only (checked when bundled), so latin1 reads it exactly and without UTF-8 decoding.
  const source = fs.readFileSync(b.file, "latin1");
  const own = readCache(b, b.cache);
  const cachedData = own ?? readCache(b, b.buildCache);
  // The file is one function expression (see scripts/bundle-cli.mjs).
  const script = new vm.Script(source, { filename: b.file, ...(cachedData ? { cachedData } : {}) });
  if (!own || script.cachedDataRejected) {
    // At exit the functions this run compiled are in the cache too (not only the top level).
    process.once("exit", () => {
      const tmp = `${b.cache}.${process.pid}.tmp`;
      try {
        fs.accessSync(path.dirname(b.cache), fs.constants.W_OK); // read-only install: no cache, no cost
        fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o644, flag: "wx" });
        fs.renameSync(tmp, b.cache);
      } catch {
        try { fs.rmSync(tmp, { force: true }); } catch { /* nothing to clean */ }
      }
    });
  }
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(b.file), mod, b.file, path.dirname(b.file), pathToFileURL(b.file).href);
  return mod.exports;
}

async function load() {
  const b = bundle();
  if (b) return runBundle(b);
  return import("../dist/src/pilot/main.js");
}

const argv = process.argv.slice(2);
let run = true;
if (argv.includes("operator")) {
  const { hardenCli, isShardCommand } = await import("../dist/src/lib/hardening.js");
  run = !isShardCommand(argv) || hardenCli("spike", "required");
}
if (run) {
  const { main } = await load();
  await main(argv);
}

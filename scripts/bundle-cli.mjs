// Bundles the `spike` CLI (dist/src/pilot/main.js and everything it imports, dependencies
// included) into one ES module, dist/cli/spike.mjs, so a CLI call reads one file instead of
// resolving and compiling ~300 modules (issue 15: start-up time). Run after `tsc -p .`.
//
// bin/spike.js uses the bundle only while it matches the compiled code: the bundle's stamp
// (dist/cli/spike.stamp) records the mtime of dist/src/pilot/main.js it was built from, and
// `tsc` rewrites every output file, so any later `tsc` run makes bin/spike.js fall back to
// dist/src/ until this script runs again. Without esbuild installed this script says so and
// exits 0: the CLI then runs from dist/src/ (slower, same behaviour).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'dist', 'src', 'pilot', 'main.js');
const outDir = path.join(root, 'dist', 'cli');
const outFile = path.join(outDir, 'spike.mjs');
const stampFile = path.join(root, 'dist', 'cli', 'spike.stamp');

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
fs.rmSync(outDir, { recursive: true, force: true });
const stamp = String(fs.statSync(entry).mtimeMs);
await esbuild.build({
  entryPoints: [entry],
  outdir: outDir,
  entryNames: 'spike',
  chunkNames: 'chunk-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  // What a command loads only on demand (grpc-js for the watching source, the other command
  // groups, yaml output) goes into chunks read only when imported.
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'eof',
  logLevel: 'warning',
  // CommonJS dependencies bundled into an ES module still call `require` (also through
  // `eval`, e.g. protobufjs' optional modules): give the module scope a real one.
  banner: { js: "import { createRequire as __spikeCreateRequire } from 'node:module'; const require = __spikeCreateRequire(import.meta.url);" },
  // Native addons and server-only drivers are never reached from the CLI.
  external: ['better-sqlite3', 'pg', 'pg-native'],
});
fs.writeFileSync(stampFile, stamp);
process.stderr.write(`bundle-cli: wrote ${path.relative(root, outFile)} (${Math.round(fs.statSync(outFile).size / 1024)} KiB)\n`);

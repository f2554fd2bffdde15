// Runs test files with node:test in the order given (scripts/test.sh: heaviest first).
//
// `node --test a b c` on Node 20 sorts its file list by path before it starts any file
// (createTestFileList in lib/internal/test_runner/runner.js), so the order test.sh chose was
// lost: the heavy e2e files ran in name order and one could start last and run alone at the
// end. `run({ files })` keeps the order. This script takes the `node --test` options test.sh
// and its callers use and nothing else (an unknown option is an error, never ignored):
//   --test-concurrency=N  --test-timeout=MS  --test-name-pattern=P (repeatable)
//   --test-reporter=R --test-reporter-destination=D (pairs, as with node --test; R is a
//   built-in name or a module path; D is stdout, stderr or a file)
// The exit code is 1 when a test fails, as with `node --test`.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { run } from 'node:test';
import * as builtins from 'node:test/reporters';

const opts = { concurrency: undefined, timeout: undefined, testNamePatterns: [], reporters: [], destinations: [] };
const files = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (!a.startsWith('--')) {
    files.push(path.resolve(a)); // absolute, as node --test reports them
    continue;
  }
  const eq = a.indexOf('=');
  const name = eq === -1 ? a : a.slice(0, eq);
  const value = eq === -1 ? args[++i] : a.slice(eq + 1);
  if (value === undefined) fail(`${name} needs a value`);
  if (name === '--test-concurrency') opts.concurrency = Number(value);
  else if (name === '--test-timeout') opts.timeout = Number(value);
  else if (name === '--test-name-pattern') opts.testNamePatterns.push(value);
  else if (name === '--test-reporter') opts.reporters.push(value);
  else if (name === '--test-reporter-destination') opts.destinations.push(value);
  else fail(`unknown option ${name}`);
}
if (files.length === 0) fail('no test files given');
for (const [k, v] of [['--test-concurrency', opts.concurrency], ['--test-timeout', opts.timeout]]) {
  if (v !== undefined && !(Number.isInteger(v) && v > 0)) fail(`${k} must be a positive integer`);
}
// node --test's default: spec on a terminal, TAP otherwise.
if (opts.reporters.length === 0) opts.reporters.push(process.stdout.isTTY ? 'spec' : 'tap');
if (opts.destinations.length > opts.reporters.length) fail('more --test-reporter-destination than --test-reporter');
if (opts.reporters.length > 1 && opts.destinations.length !== opts.reporters.length) fail('each --test-reporter needs a --test-reporter-destination');

function fail(msg) {
  process.stderr.write(`run-tests: ${msg}\n`);
  process.exit(1);
}

async function reporter(name) {
  if (Object.hasOwn(builtins, name)) return builtins[name];
  const spec = name.startsWith('.') || path.isAbsolute(name) ? pathToFileURL(path.resolve(name)).href : name;
  const mod = await import(spec);
  return mod.default ?? mod;
}

function destination(d) {
  if (d === undefined || d === 'stdout') return process.stdout;
  if (d === 'stderr') return process.stderr;
  return fs.createWriteStream(d);
}

const stream = run({
  files,
  concurrency: opts.concurrency,
  timeout: opts.timeout,
  ...(opts.testNamePatterns.length > 0 ? { testNamePatterns: opts.testNamePatterns } : {}),
});
stream.on('test:fail', (d) => {
  if (d.todo === undefined || d.todo === false) process.exitCode = 1;
});
for (let i = 0; i < opts.reporters.length; i++) {
  let r = await reporter(opts.reporters[i]);
  // spec is a Transform class in Node 20; the others are async generator functions.
  if (r.prototype !== undefined && Object.getOwnPropertyDescriptor(r.prototype, 'constructor') !== undefined) r = new r();
  stream.compose(r).pipe(destination(opts.destinations[i]));
}

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
// and one of its own:
//   --unit-concurrency=N  how many in-process test files run at once (below; default 2)
// The exit code is 1 when a test fails, as with `node --test`.
//
// Two lanes. Files that spawn servers and CLIs (everything outside dist/src, dist/bench and
// the unit groups of scripts/test-plan.mjs) are CPU-bound and run --test-concurrency at a
// time. In-process unit tests mostly wait on timers (timeouts, expiries, paced bodies: a unit
// group measured 25 s of wall time for 9 s of CPU), so they run in a lane of their own beside
// the first instead of holding one of its slots; so do process files marked as waiting
// (below). Each lane is one `run()`; their events are merged into one stream for the
// reporters, with one summary (the counts of both) at the end.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { run } from 'node:test';
import * as builtins from 'node:test/reporters';

const opts = { concurrency: undefined, unitConcurrency: 2, timeout: undefined, testNamePatterns: [], reporters: [], destinations: [] };
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
  else if (name === '--unit-concurrency') opts.unitConcurrency = Number(value);
  else if (name === '--test-name-pattern') opts.testNamePatterns.push(value);
  else if (name === '--test-reporter') opts.reporters.push(value);
  else if (name === '--test-reporter-destination') opts.destinations.push(value);
  else fail(`unknown option ${name}`);
}
if (files.length === 0) fail('no test files given');
for (const [k, v] of [['--test-concurrency', opts.concurrency], ['--test-timeout', opts.timeout], ['--unit-concurrency', opts.unitConcurrency]]) {
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

const IN_PROCESS = /^dist\/(src|bench|\.test-groups)\//;
// A process file that mostly waits (a body trickled at 1 byte/s, a deadline run out) says so
// with a line `// test-lane: waiting` (a reason may follow) among its first lines, and runs in
// the second lane too: it would otherwise hold a CPU-bound slot while using little CPU.
const WAITING = /^\/\/ test-lane: waiting(?:[ (]|$)/m;
const waits = (f) => {
  // Only the file's head is read, once per file (the lanes are split in one pass below).
  const head = Buffer.alloc(2000);
  let fd;
  try {
    fd = fs.openSync(f, 'r');
    return WAITING.test(head.toString('utf8', 0, fs.readSync(fd, head, 0, head.length, 0)));
  } catch {
    return false; // a missing file fails in its lane as before
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
};
const secondLane = new Set(files.filter((f) => IN_PROCESS.test(path.relative(process.cwd(), f)) || waits(f)));
const lanes = [
  { files: files.filter((f) => !secondLane.has(f)), concurrency: opts.concurrency },
  { files: files.filter((f) => secondLane.has(f)), concurrency: opts.unitConcurrency },
].filter((l) => l.files.length > 0);
const streams = lanes.map((l) => run({
  files: l.files,
  concurrency: l.concurrency,
  timeout: opts.timeout,
  ...(opts.testNamePatterns.length > 0 ? { testNamePatterns: opts.testNamePatterns } : {}),
}));

// A run's own summary: its plan and its count lines (nesting 0, no file). Test files'
// diagnostics always name their file.
const SUMMARY = /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ([0-9.]+)$/;
const isSummary = (ev) => ev.data?.nesting === 0 && ev.data.file === undefined
  && (ev.type === 'test:plan' || (ev.type === 'test:diagnostic' && SUMMARY.test(ev.data.message)));

/** Both lanes' events as one stream; the lanes' summaries become one at the end. */
function merged() {
  const out = new PassThrough({ objectMode: true });
  const t0 = process.hrtime.bigint();
  const counts = new Map();
  let planned = 0;
  let numbered = 0; // top-level results numbered across both lanes, as one run would (TAP's ok N)
  const pump = async (s) => {
    for await (const ev of s) {
      if (ev.type === 'test:fail' && (ev.data.todo === undefined || ev.data.todo === false)) process.exitCode = 1;
      if (isSummary(ev)) {
        if (ev.type === 'test:plan') planned += ev.data.count;
        else {
          const [, key, n] = SUMMARY.exec(ev.data.message);
          if (key !== 'duration_ms') counts.set(key, (counts.get(key) ?? 0) + Number(n));
        }
        continue;
      }
      const top = ev.data?.nesting === 0 && (ev.type === 'test:pass' || ev.type === 'test:fail');
      const forward = top ? { ...ev, data: { ...ev.data, testNumber: ++numbered } } : ev;
      if (!out.write(forward)) await once(out, 'drain');
    }
  };
  Promise.all(streams.map(pump)).then(() => {
    out.write({ type: 'test:plan', data: { nesting: 0, count: planned } });
    counts.set('duration_ms', Number(process.hrtime.bigint() - t0) / 1e6);
    for (const [key, n] of counts) out.write({ type: 'test:diagnostic', data: { nesting: 0, message: `${key} ${n}` } });
    out.end();
  }, (e) => out.destroy(e));
  return out;
}

const stream = merged();
for (let i = 0; i < opts.reporters.length; i++) {
  let r = await reporter(opts.reporters[i]);
  // spec is a Transform class in Node 20; the others are async generator functions.
  if (r.prototype !== undefined && Object.getOwnPropertyDescriptor(r.prototype, 'constructor') !== undefined) r = new r();
  stream.compose(r).pipe(destination(opts.destinations[i]));
}

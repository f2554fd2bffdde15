/**
 * A node:test reporter that measures where `npm test` spends its time: wall time per test FILE
 * (the runner reports every file as one top-level test whose duration is the child process's
 * life), the slowest single tests, and the machine's CPU use over the run (from /proc/stat:
 * busy share of all cores, so "is the suite CPU-bound at this concurrency?") with the load
 * average at start and end (the machine is shared: other work shows up there).
 *
 * Use it beside the normal reporter:
 *   bash scripts/test.sh --test-reporter=spec --test-reporter-destination=stdout \
 *     --test-reporter=./scripts/test-times.mjs --test-reporter-destination=test-times.txt
 * `TEST_TIMES_JSON=file.json` also writes the raw numbers (file → ms);
 * `TEST_TIMES_WEIGHTS=scripts/test-weights.txt` rewrites the weight list scripts/test.sh uses to
 * start the heaviest files first (refresh it from a full run after adding heavy tests).
 */
import fs from 'node:fs';
import os from 'node:os';

function cpuTicks() {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const n = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = n[3] + (n[4] ?? 0); // idle + iowait
    const total = n.reduce((a, b) => a + b, 0);
    return { idle, total };
  } catch {
    return null;
  }
}

function busyShare(a, b) {
  if (!a || !b || b.total === a.total) return null;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

const pct = (x) => (x === null ? 'n/a' : `${(x * 100).toFixed(0)}%`);
const sec = (ms) => `${(ms / 1000).toFixed(1)}s`;

export default async function* testTimes(source) {
  const t0 = Date.now();
  const cpu0 = cpuTicks();
  const load0 = os.loadavg();
  // CPU busy share per 30 s slice, to see idle stretches (a long tail) vs saturation.
  const slices = [];
  let last = cpu0;
  const timer = setInterval(() => {
    const now = cpuTicks();
    slices.push(busyShare(last, now));
    last = now;
  }, 30_000);
  timer.unref();

  const files = new Map(); // file → { ms, ok }
  const tests = []; // { file, name, ms, ok }
  let failed = 0;
  const started = new Map(); // file → ms since start when the runner dequeued it
  for await (const ev of source) {
    const d = ev.data;
    // Node 20: every file run in its own process is a nesting-0 test named by its path; its
    // `test:complete` carries the child's whole life. Tests inside the file are nesting 0 too.
    const isFile = d?.file !== undefined && d.name === d.file;
    if (isFile && ev.type === 'test:dequeue') started.set(d.file, Date.now() - t0);
    if (isFile && ev.type === 'test:complete') {
      files.set(d.file, { ms: d.details?.duration_ms ?? 0, ok: d.details?.passed !== false, at: started.get(d.file) ?? 0 });
      continue;
    }
    if (ev.type !== 'test:pass' && ev.type !== 'test:fail') continue;
    const ok = ev.type === 'test:pass';
    if (!ok) failed++;
    tests.push({ file: d.file ?? '?', name: d.name, nesting: d.nesting, ms: d.details?.duration_ms ?? 0, ok });
  }
  clearInterval(timer);
  const wall = Date.now() - t0;
  const cpu1 = cpuTicks();
  const load1 = os.loadavg();

  const rel = (f) => f.replace(`${process.cwd()}/`, '');
  const sorted = [...files.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const sumFiles = sorted.reduce((a, [, v]) => a + v.ms, 0);
  let out = '';
  out += `wall ${sec(wall)}  files ${files.size}  sum of file times ${sec(sumFiles)}  failed tests ${failed}\n`;
  out += `cpus ${os.cpus().length}  busy over the run ${pct(busyShare(cpu0, cpu1))}  `
    + `load avg start ${load0.map((x) => x.toFixed(2)).join(' ')}  end ${load1.map((x) => x.toFixed(2)).join(' ')}\n`;
  out += `busy per 30 s slice: ${slices.map(pct).join(' ')}\n\n`;
  out += 'file wall times (slowest first):\n';
  for (const [f, v] of sorted) out += `${sec(v.ms).padStart(8)}  started at ${sec(v.at).padStart(7)}  ${v.ok ? '  ' : 'F '}${rel(f)}\n`;
  // Time a file spends outside its top-level tests (process start, imports, hooks, and an
  // event loop kept alive after the last test by an open handle): large values are worth a look.
  // A shared process (a unit-test group of scripts/test-plan.mjs) has no tests of its own.
  const inTests = new Map();
  for (const t of tests) if (t.nesting === 0) inTests.set(t.file, (inTests.get(t.file) ?? 0) + t.ms);
  const outside = sorted.filter(([f]) => inTests.has(f)).map(([f, v]) => [f, v.ms - inTests.get(f)]).sort((a, b) => b[1] - a[1]).slice(0, 15);
  out += '\nlongest time outside top-level tests (start-up, hooks, open handles at the end):\n';
  for (const [f, ms] of outside) out += `${sec(ms).padStart(8)}  ${rel(f)}\n`;
  out += '\nslowest top-level tests:\n';
  const top = tests.filter((t) => t.nesting === 0).sort((a, b) => b.ms - a.ms).slice(0, 40);
  for (const t of top) out += `${sec(t.ms).padStart(8)}  ${t.ok ? '  ' : 'F '}${rel(t.file)} :: ${t.name}\n`;
  const json = process.env['TEST_TIMES_JSON'];
  if (json) {
    fs.writeFileSync(json, JSON.stringify({ wall, cpuBusy: busyShare(cpu0, cpu1), load0, load1, slices,
      files: Object.fromEntries(sorted.map(([f, v]) => [rel(f), v.ms])) }, null, 2));
  }
  // Weights: a file run in its own process weighs its process's life; a file run in a shared
  // process, the sum of its top-level tests; the shared processes themselves are generated.
  const weighed = new Map();
  for (const [f, v] of sorted) if (inTests.has(f)) weighed.set(f, v.ms);
  for (const [f, ms] of inTests) if (!files.has(f)) weighed.set(f, ms);
  const weights = process.env['TEST_TIMES_WEIGHTS'];
  if (weights && failed === 0 && files.size > 0) fs.writeFileSync(weights, WEIGHTS_HEADER
    + [...weighed].sort((a, b) => b[1] - a[1]).map(([f, ms]) => `${(ms / 1000).toFixed(1)} ${rel(f)}\n`).join(''));
  yield out;
}

const WEIGHTS_HEADER = `# Wall seconds per test file from one measured full run (scripts/test-times.mjs, concurrency 2):
# a file in its own process, the process's life; a unit file in a shared one, its tests' time.
# scripts/test-plan.mjs packs unit files into shared processes by these weights and starts the
# heaviest first, so no long file starts last (a long tail).
# Refresh: bash scripts/test.sh --test-reporter=spec --test-reporter-destination=stdout \\
#   --test-reporter=./scripts/test-times.mjs --test-reporter-destination=/dev/null with TEST_TIMES_WEIGHTS=<this file>.
`;

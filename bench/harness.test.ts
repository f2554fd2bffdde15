/**
 * Unit tests of the bench harness: goal verdicts, "not available" rows, the worst-ratio pick,
 * table escaping, the closed-loop generator against a local server, /proc readers, and the
 * SVG plot. Run: `node --test dist/bench/harness.test.js`.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { Agent } from 'undici';
import { closedLoop, notAvailable, pUs, row, toMarkdown, worstRatio, curveUs } from './harness.js';
import { latencySvg } from './plot.js';
import { cpuMs, rssMiB } from './proc.js';

test('row(): ratio goals, value goals and report-only goals give the right verdict', () => {
  assert.equal(row('P1', { id: 'a', name: 'a', value: 9, unit: 'ops/s', baseline: 10, ratio: 0.9 }, { on: 'ratio', op: '>=', target: 0.8, text: '' }).met, true);
  assert.equal(row('P1', { id: 'a', name: 'a', value: 7, unit: 'ops/s', baseline: 10, ratio: 0.7 }, { on: 'ratio', op: '>=', target: 0.8, text: '' }).met, false);
  assert.equal(row('P4', { id: 'b', name: 'b', value: 1600, unit: 'ms' }, { on: 'value', op: '<=', target: 1500, text: '' }).met, false);
  assert.equal(row('P4', { id: 'b', name: 'b', value: 1400, unit: 'ms' }, { on: 'value', op: '<=', target: 1500, text: '' }).met, true);
  assert.equal(row('P7', { id: 'c', name: 'c', value: 5, unit: 'µs', ratio: 30 }, { on: 'ratio', op: 'report', target: 0, text: 'report only' }).met, undefined);
});

test('notAvailable(): no figure, no verdict, the reason in the note and the table', () => {
  const r = notAvailable('P5', 'p5', 'cipher', 'module missing', { on: 'ratio', op: '>=', target: 0.7, text: '≥ 0.7×' });
  assert.equal(r.available, false);
  assert.ok(Number.isNaN(r.value));
  assert.equal(r.met, undefined);
  const md = toMarkdown([r]);
  assert.match(md, /not available \|/);
  assert.match(md, /\| n\/a \|/);
  assert.match(md, /module missing/);
});

test('worstRatio(): picks the row furthest on the wrong side of its goal, either direction', () => {
  const rows = [
    row('P1', { id: 'p1', name: 'p1', value: 1, unit: '', ratio: 0.4 }, { on: 'ratio', op: '>=', target: 0.8, text: '' }), // 2× short
    row('P3', { id: 'p3', name: 'p3', value: 1, unit: '', ratio: 3 }, { on: 'ratio', op: '<=', target: 1.2, text: '' }), // 2.5× over
    row('P7', { id: 'p7', name: 'p7', value: 1, unit: '', ratio: 100 }, { on: 'ratio', op: 'report', target: 0, text: '' }),
    row('P4', { id: 'p4', name: 'p4', value: 9999, unit: 'ms' }, { on: 'value', op: '<=', target: 1500, text: '' }),
  ];
  assert.equal(worstRatio(rows)?.id, 'p3');
  assert.equal(worstRatio(rows.slice(2)), undefined);
});

test('toMarkdown(): a pipe or newline in a note cannot break the table', () => {
  const md = toMarkdown([row('S', { id: 'x', name: 'a|b', value: 1, unit: 'x', note: 'c|d\ne' })]);
  const lines = md.split('\n');
  assert.equal(lines.length, 3);
  assert.equal(lines[2]!.split(/(?<!\\)\|/).length, lines[0]!.split('|').length);
});

test('closedLoop(): counts answers and errors, one connection per worker, latencies recorded', async () => {
  let n = 0;
  const sockets = new Set<unknown>();
  const srv = http.createServer((req, res) => {
    sockets.add(req.socket);
    req.resume();
    req.on('end', () => {
      n++;
      res.writeHead(n % 10 === 0 ? 500 : 200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  const d = new Agent({ connections: 4 });
  try {
    const r = await closedLoop({ dispatcher: d, origin: `http://127.0.0.1:${port}`, path: '/x', body: (w, i) => JSON.stringify({ w, i }), concurrency: 4, durationMs: 300 });
    assert.equal(r.ok + r.errors, n);
    // Every tenth answer is a 500 (on a loaded machine fewer than ten may fit in 300 ms).
    assert.equal(r.errors, Math.floor(n / 10));
    assert.equal(r.hist.count, r.ok);
    assert.ok(pUs(r.hist, 50) > 0 && pUs(r.hist, 99) >= pUs(r.hist, 50));
    assert.equal(sockets.size, 4);
    const curve = curveUs(r.hist);
    for (let i = 1; i < curve.length; i++) assert.ok(curve[i]![1] >= curve[i - 1]![1]);
  } finally {
    await d.close();
    srv.close();
  }
});

test('closedLoop(): a target that never answers 200 is an error, not a figure', async () => {
  const srv = http.createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(503).end()); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const d = new Agent({ connections: 1 });
  try {
    await assert.rejects(closedLoop({ dispatcher: d, origin: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, path: '/', body: () => '{}', concurrency: 1, durationMs: 50 }), /status 503/);
  } finally {
    await d.close();
    srv.close();
  }
});

test('rssMiB() and cpuMs() read this process from /proc', () => {
  const rss = rssMiB(process.pid);
  assert.ok(rss > 10 && rss < 4096, `rss ${rss}`);
  const c0 = cpuMs(process.pid);
  // Burn CPU until /proc shows it (on a loaded machine 60 ms of wall time may be far less CPU);
  // the deadline only guards against a cpuMs() that never moves.
  const t = Date.now();
  while (cpuMs(process.pid) < c0 + 20 && Date.now() - t < 30_000) { /* burn CPU */ }
  assert.ok(cpuMs(process.pid) >= c0 + 20);
  assert.throws(() => rssMiB(undefined));
});

test('latencySvg(): one path per series, names escaped, points inside the plot', () => {
  const svg = latencySvg('t <1>', { 'a & b': [[0, 50], [50, 100], [99, 1000], [100, 5000]], c: [[0, 5], [100, 20]] });
  assert.equal(svg.match(/<path /g)?.length, 2);
  assert.match(svg, /a &amp; b/);
  assert.match(svg, /t &lt;1&gt;/);
  for (const m of svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)) {
    assert.ok(Number(m[1]) >= 70 && Number(m[1]) <= 840 && Number(m[2]) >= 40 && Number(m[2]) <= 430);
  }
});

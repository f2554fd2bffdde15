/**
 * Report-only rows for issue 17: Nexus's server CPU per request against the echo server in
 * `--sealed` mode (bench/echo-server.ts, bench/sealed-echo-store.ts), the same bare https mTLS
 * server that also does the store work a sealed store without a plaintext cache cannot skip.
 * `p1.cpu.c32` and `p2.cpu.c64` compare Nexus with a server that stores nothing; these rows
 * show what is left once that work is on both sides: routing, authorisation, strict JSON and
 * schema, guards, logging, the answer's encoding, durability bookkeeping.
 *
 * - `p1.cpu.c32.vs_sealed_read`: warm GETs, 32 clients (record id, one SQLite statement,
 *   metadata memo check, AES-256-GCM open and parse of the values).
 * - `p2.cpu.c64.vs_sealed_write`: PUTs, 64 writers on 64 paths (per write: metadata row read
 *   and memo check, new version, 10 kept, metadata and values sealed; one transaction per
 *   event-loop turn, answered once the WAL was synced off the event loop, as Nexus does).
 * Both in ABBA order (sealed echo, Nexus, Nexus, sealed echo).
 */
import fs from 'node:fs';
import path from 'node:path';
import { row, type BenchRow } from './harness.js';
import { GET, GET_PATH, SECRETS, VALUE, putBody, type MeasuredSide, type StackBench } from './stack-bench.js';

interface Comparison {
  id: string;
  name: string;
  phase: string;
  pathQ: string;
  body: (w: number) => string;
  clients: number;
  note: string;
}

async function compare(sb: StackBench, c: Comparison): Promise<BenchRow[]> {
  const ms = sb.quick ? 2500 : 8000;
  const dir = path.join(sb.stack.dir, `sealed-echo-${c.id}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const echo = await sb.startFramed('echo-server.js', ['--sealed', dir, GET_PATH, JSON.stringify(VALUE)], /echo ready (\d+)/);
  let sealed: MeasuredSide;
  let nexus: MeasuredSide;
  try {
    [sealed, nexus] = await sb.abba(
      { label: 'sealed echo', origin: `https://localhost:${echo.ready[1]!}`, pid: echo.pid },
      { label: 'Nexus', origin: sb.origin, pid: sb.stack.pid('nexus') },
      c.phase, c.pathQ, c.body, c.clients, ms);
  } finally {
    echo.stop();
  }
  // The sealed echo answers 400 when its store work fails: its figure would then be no baseline.
  for (const [name, side] of [['sealed echo', sealed], ['Nexus', nexus]] as const) {
    if (side.result.ok === 0 || side.result.errors > 0) throw new Error(`${name}: ${side.result.ok} answers, ${side.result.errors} errors`);
  }
  const nexusUs = (nexus.cpuMs * 1000) / nexus.result.ok;
  const sealedUs = (sealed.cpuMs * 1000) / sealed.result.ok;
  if (!Number.isFinite(nexusUs) || !Number.isFinite(sealedUs)) throw new Error('a server\'s CPU time could not be read');
  return [row(c.id.startsWith('p1') ? 'P1' : 'P2', {
    id: c.id, name: c.name, value: nexusUs, unit: 'µs', baseline: sealedUs, ratio: nexusUs / sealedUs,
    note: `report only; lower is better; baseline: ${c.note} (bench/sealed-echo-store.ts); ${nexus.result.opsPerSec.toFixed(0)} vs ${sealed.result.opsPerSec.toFixed(0)} requests/s`,
  })];
}

export function sealedReadRows(sb: StackBench): Promise<BenchRow[]> {
  return compare(sb, {
    id: 'p1.cpu.c32.vs_sealed_read', name: 'server CPU per warm GET, 32 clients, against an echo that also does the sealed store read',
    phase: 'P1 GET, 32 clients', pathQ: GET, body: () => JSON.stringify({ path: GET_PATH }), clients: 32,
    note: 'the https mTLS echo plus record id, one SQLite read, metadata memo check, one AES-256-GCM open and parse of the values',
  });
}

export function sealedWriteRows(sb: StackBench): Promise<BenchRow[]> {
  return compare(sb, {
    id: 'p2.cpu.c64.vs_sealed_write', name: 'server CPU per PUT, 64 writers, against an echo that also does the sealed store write',
    phase: 'P2 PUT, 64 writers', pathQ: SECRETS, body: putBody, clients: 64,
    note: 'the https mTLS echo plus record id, metadata read and memo check, two AES-256-GCM seals, one SQLite transaction per event-loop turn (WAL, synchronous=NORMAL, the WAL synced on the thread pool before the answer)',
  });
}

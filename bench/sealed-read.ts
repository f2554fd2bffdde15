/**
 * `p1.cpu.c32.vs_sealed_read` (report only, issue 17): Nexus's CPU per warm GET at 32 clients
 * against the echo server in `--sealed-read` mode (bench/echo-server.ts): the same bare https
 * mTLS server that also does the one store read a sealed store cannot skip (record id, one
 * SQLite statement, metadata memo check, one AES-256-GCM open of the values and their parse).
 * `p1.cpu.c32` compares Nexus with a server that stores nothing; this row shows what is left
 * once the work that no secrets store without a plaintext cache can avoid is on both sides:
 * routing, authorisation, strict JSON, guards, logging, the answer's encoding.
 */
import fs from 'node:fs';
import path from 'node:path';
import { row, type BenchRow } from './harness.js';
import { GET_PATH, VALUE, type MeasuredSide, type StackBench } from './stack-bench.js';

const CLIENTS = 32;

export async function sealedReadRows(sb: StackBench): Promise<BenchRow[]> {
  const ms = sb.quick ? 2500 : 8000;
  const dir = path.join(sb.stack.dir, 'sealed-read');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const echo = await sb.startFramed('echo-server.js', ['--sealed-read', dir, GET_PATH, JSON.stringify(VALUE)], /echo ready (\d+)/);
  let sealed: MeasuredSide;
  let nexus: MeasuredSide;
  try {
    [sealed, nexus] = await sb.abba(
      { label: 'sealed-read echo', origin: `https://localhost:${echo.ready[1]!}`, pid: echo.pid },
      { label: 'Nexus', origin: sb.origin, pid: sb.stack.pid('nexus') },
      `P1 GET, ${CLIENTS} clients`, () => JSON.stringify({ path: GET_PATH }), CLIENTS, ms);
  } finally {
    echo.stop();
  }
  // The sealed echo answers 400 when it cannot read the record: its figure would then be no baseline.
  for (const [name, side] of [['sealed-read echo', sealed], ['Nexus', nexus]] as const) {
    if (side.result.ok === 0 || side.result.errors > 0) throw new Error(`${name}: ${side.result.ok} answers, ${side.result.errors} errors`);
  }
  const nexusUs = (nexus.cpuMs * 1000) / nexus.result.ok;
  const sealedUs = (sealed.cpuMs * 1000) / sealed.result.ok;
  return [row('P1', {
    id: 'p1.cpu.c32.vs_sealed_read', name: `server CPU per warm GET, ${CLIENTS} clients, against an echo that also does the sealed store read`,
    value: nexusUs, unit: 'µs', baseline: sealedUs, ratio: nexusUs / sealedUs,
    note: 'report only; lower is better; baseline: the https mTLS echo plus record id, one SQLite read, metadata memo check, one AES-256-GCM open and parse of the values (bench/echo-server.ts --sealed-read)',
  })];
}

/**
 * Figures of a running process read from /proc (CPU time, RSS, its private part) and of a data
 * folder (SQLite file sizes), shared by the benches that run the real stack; and how two load
 * runs add up. The machine is shared: CPU read for one process is the figure other load on the
 * machine does not skew.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LoadResult } from './harness.js';

/** Two runs of the same load as one: counts and times add, histograms merge. */
export function merge(a: LoadResult | undefined, b: LoadResult): LoadResult {
  if (a === undefined) return b;
  a.hist.add(b.hist);
  const ok = a.ok + b.ok;
  const elapsedMs = a.elapsedMs + b.elapsedMs;
  return { ok, errors: a.errors + b.errors, elapsedMs, opsPerSec: (ok * 1000) / elapsedMs, hist: a.hist };
}

/** User + system CPU time of a process in ms, from /proc/<pid>/stat (clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after the command: state is index 0, utime 11, stime 12
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** Anonymous (private) part of a process's RSS in MiB, from /proc/<pid>/smaps_rollup. */
export function anonMiB(pid: number | undefined): number {
  if (pid === undefined) throw new Error('process not running');
  const m = /^Anonymous:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  if (!m?.[1]) throw new Error('Anonymous not found');
  return Number(m[1]) / 1024;
}

/** VmRSS of a process in MiB, from /proc. */
export function rssMiB(pid: number | undefined): number {
  if (pid === undefined) throw new Error('process not running');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m?.[1]) throw new Error('VmRSS not found');
  return Number(m[1]) / 1024;
}

/** Size of the SQLite files (database, WAL, shared memory) under `dir`, in MiB. */
export function dbSizeMiB(dir: string): number {
  let total = 0;
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.db(-wal|-shm)?$/.test(e.name)) total += fs.statSync(p).size;
    }
  };
  walk(dir);
  return total / 2 ** 20;
}

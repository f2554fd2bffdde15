/**
 * Issue 7 benchmarks that run against the real stack (`test/helpers/stack.ts`: spike-agent,
 * 3 Keepers, spike-nexus on SQLite, each its own process), each with its baseline measured in
 * the same run:
 *
 * - P1 warm GET throughput and p50/p99 at 1 and 32 concurrent clients vs a bare Node `https`
 *   mTLS server (child process, Nexus's own SVID, replying Nexus's exact JSON bytes);
 * - P2 PUT throughput at 1 and 64 writers vs better-sqlite3 doing one `synchronous=FULL`
 *   transaction per write on the same file system;
 * - P4 and P6 (restarts; `stack-restart.ts`);
 * - P7 new connection (TCP + TLS 1.3 full handshake, both SVIDs verified) + one GET vs a GET on
 *   a warm connection.
 *
 * Clients use the project's `createMtlsDispatcher` (one undici Pool per origin, one connection per
 * concurrent client, no pipelining) driven by the closed-loop generator in `harness.ts`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance, type RecordableHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { Dispatcher } from 'undici';
import { SpiffeId } from '../src/spiffe/id.js';
import { WorkloadX509Source, authorizeIf, createMtlsDispatcher, svidChainPem, svidPrivateKeyPem } from '../src/spiffe/index.js';
import type { Stack } from '../test/helpers/stack.js';
import { closedLoop, curveUs, pUs, progress, row, type BenchRow, type LoadResult } from './harness.js';
import { cpuMs, merge } from './proc.js';

export const BENCH_APP_ID = 'spiffe://spike.ist/workload/bench-app';
/** Warm-up of each measured load phase: this many answers (see `#measure`), or {@link WARM_MAX_MS}. */
const WARM_REQUESTS = 3000;
const WARM_MAX_MS = 8000;
const NEXUS_ID = SpiffeId.parse('spiffe://spike.ist/spike/nexus');
export const SECRETS = '/v1/store/secrets';
export const GET = `${SECRETS}?action=get`;
export const GET_PATH = 'bench/get/creds';
export const VALUE = { username: 'admin', password: 'p'.repeat(32) };
/** The JSON body of writer `w`'s PUT in the P2 loads (each writer its own path). */
export const putBody = (w: number): string => JSON.stringify({ path: `bench/put/w${w}`, values: VALUE });

export interface StackBenchOptions {
  quick: boolean;
}

export type Curves = Record<string, Array<[number, number]>>;

/** One side of an ABBA comparison: where its requests go and whose CPU counts. */
export interface Side {
  label: string;
  origin: string;
  pid: number | undefined;
}

/** A side's merged load result and its server's CPU time (ms) over the measured windows. */
export interface MeasuredSide {
  result: LoadResult;
  cpuMs: number;
}

/** Everything the stack benchmarks share: the bench-app identity's source and the URL. */
export class StackBench {
  readonly stack: Stack;
  readonly quick: boolean;
  readonly origin: string;
  readonly curves: Curves = {};
  #app!: WorkloadX509Source;
  /** P1's single-client warm GET histogram on Nexus, P7's baseline. */
  warmGet1?: RecordableHistogram;

  private constructor(stack: Stack, opts: StackBenchOptions) {
    this.stack = stack;
    this.quick = opts.quick;
    this.origin = stack.nexusUrl;
  }

  /** Gives bench-app read+write on `bench/…` and writes the secret the GETs read. */
  static async open(stack: Stack, opts: StackBenchOptions): Promise<StackBench> {
    const b = new StackBench(stack, opts);
    const pilot = await stack.client('pilot');
    await pilot.putPolicy({ name: 'bench-app', spiffeIdPattern: '^spiffe://spike\\.ist/workload/bench-app$', pathPattern: '^bench/.*$', permissions: ['read', 'write'] });
    await pilot.putSecret(GET_PATH, VALUE);
    b.#app = await WorkloadX509Source.open({ endpoint: stack.socket('bench-app'), timeoutMs: 15_000 });
    return b;
  }

  close(): void {
    this.#app.close();
  }

  dispatcher(connections: number): Dispatcher {
    return createMtlsDispatcher({ source: this.#app, authorizeServer: authorizeIf((id) => id.equals(NEXUS_ID)), connections });
  }

  /**
   * Warm-up then measured run, each on the same dispatcher (connections stay open). The
   * warm-up lasts until the server answered {@link WARM_REQUESTS} requests (at most
   * {@link WARM_MAX_MS}; at least one round of min(1 s, ms/3)): on a loaded machine a short
   * time-based warm-up left the JIT compiling Nexus's hot path inside the measured window
   * (TurboFan was a fifth of Nexus's CPU there), which the far smaller echo server does not
   * pay; both sides get the same rule.
   */
  async #measure(d: Dispatcher, origin: string, pathQ: string, body: (w: number, i: number) => string, concurrency: number, ms: number, serverPid?: number): Promise<LoadResult & { serverCpuMs?: number }> {
    const w0 = performance.now();
    let warmed = 0;
    do {
      warmed += (await closedLoop({ dispatcher: d, origin, path: pathQ, body, concurrency, durationMs: Math.min(1000, ms / 3) })).ok;
    } while (warmed < WARM_REQUESTS && performance.now() - w0 < WARM_MAX_MS);
    const c0 = serverPid === undefined ? undefined : cpuMs(serverPid);
    const r = await closedLoop({ dispatcher: d, origin, path: pathQ, body, concurrency, durationMs: ms });
    return serverPid === undefined || c0 === undefined ? r : { ...r, serverCpuMs: cpuMs(serverPid) - c0 };
  }

  /**
   * Requests (`pathQ`, `body`) from `clients` connections per side in ABBA order (`a`, `b`, `b`, `a`), half
   * of `ms` each, so drift in the machine's load (other processes) hits both sides alike; each
   * side's results are merged and its server's CPU time summed.
   */
  async abba(a: Side, b: Side, phase: string, pathQ: string, body: (w: number, i: number) => string, clients: number, ms: number): Promise<[MeasuredSide, MeasuredSide]> {
    const sides = [a, b].map((side) => ({ side, d: this.dispatcher(clients), sum: undefined as MeasuredSide | undefined }));
    try {
      for (const i of [0, 1, 1, 0]) {
        const s = sides[i]!;
        progress(`${phase}, ${s.side.label}, ${ms / 2000} s`);
        const r = await this.#measure(s.d, s.side.origin, pathQ, body, clients, ms / 2, s.side.pid);
        s.sum = { result: merge(s.sum?.result, r), cpuMs: (s.sum?.cpuMs ?? 0) + (r.serverCpuMs ?? Number.NaN) };
      }
    } finally {
      for (const s of sides) await s.d.close();
    }
    return [sides[0]!.sum!, sides[1]!.sum!];
  }

  // ---------------------------------------------------------------------------------- P1, P7

  /** Starts the echo baseline with Nexus's SVID and the exact reply Nexus gives to the GET. */
  async startEcho(): Promise<{ port: number; pid: number | undefined; stop: () => void }> {
    const s = await this.startFramed('echo-server.js', [], /echo ready (\d+)/);
    return { port: Number(s.ready[1]), pid: s.pid, stop: s.stop };
  }

  /**
   * Starts a bench helper server (`bench/<script>`, compiled) with Nexus's SVID, the trust
   * bundle, and the exact reply and headers Nexus gives to the GET as length-prefixed frames
   * on stdin (no key on disk or in the environment); resolves with the match of `ready` on
   * its stdout.
   */
  async startFramed(script: string, args: string[], ready: RegExp): Promise<{ ready: RegExpExecArray; pid: number | undefined; stop: () => void }> {
    const d = this.dispatcher(1);
    let body: Buffer;
    let headers: Record<string, string> = {};
    try {
      const r = await d.request({ origin: this.origin, path: GET, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: GET_PATH }) });
      body = Buffer.from(await r.body.arrayBuffer());
      if (r.statusCode !== 200) throw new Error(`nexus GET answered ${r.statusCode}`);
      const skip = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);
      headers = Object.fromEntries(Object.entries(r.headers).filter(([k, v]) => !skip.has(k) && typeof v === 'string')) as Record<string, string>;
    } finally {
      await d.close();
    }
    const nexusSource = await WorkloadX509Source.open({ endpoint: this.stack.socket('nexus'), timeoutMs: 15_000 });
    const svid = nexusSource.getX509Svid();
    const key = svidPrivateKeyPem(svid);
    const frames = [Buffer.from(svidChainPem(svid)), key,
      Buffer.from(nexusSource.bundleSet().allAuthorities().map((c) => c.toString()).join('')), body, Buffer.from(JSON.stringify(headers))];
    nexusSource.close();
    const input = Buffer.concat(frames.flatMap((f) => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(f.length);
      return [len, f];
    }));
    key.fill(0);
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), script);
    const proc = spawn(process.execPath, [file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    proc.stdin.end(input);
    input.fill(0);
    const match = await new Promise<RegExpExecArray>((resolve, reject) => {
      let out = '';
      proc.stdout.on('data', (c: Buffer) => {
        out += c.toString('utf8');
        const m = ready.exec(out);
        if (m) resolve(m);
      });
      let err = '';
      proc.stderr.on('data', (c: Buffer) => { err += c.toString('utf8'); });
      proc.once('exit', (code) => reject(new Error(`${script} exited (${code}): ${err.slice(0, 300)}`)));
    });
    return { ready: match, pid: proc.pid, stop: () => { proc.kill('SIGKILL'); } };
  }

  async p1(): Promise<BenchRow[]> {
    const ms = this.quick ? 2500 : 8000;
    const echo = await this.startEcho();
    const body = (): string => JSON.stringify({ path: GET_PATH });
    const rows: BenchRow[] = [];
    try {
      for (const c of [1, 32]) {
        const [echoSide, nexusSide] = await this.abba(
          { label: 'bare https echo', origin: `https://localhost:${echo.port}`, pid: echo.pid },
          { label: 'Nexus', origin: this.origin, pid: this.stack.pid('nexus') },
          `P1 GET, ${c} client${c > 1 ? 's' : ''}`, GET, body, c, ms);
        const cpu = { echo: echoSide.cpuMs, nexus: nexusSide.cpuMs };
        const e = echoSide.result;
        const n = nexusSide.result;
        if (c === 1) this.warmGet1 = n.hist;
        this.curves[`Nexus GET, ${c} client${c > 1 ? 's' : ''}`] = curveUs(n.hist);
        this.curves[`bare https echo, ${c} client${c > 1 ? 's' : ''}`] = curveUs(e.hist);
        // Server CPU time per answered request (from /proc): robust to other load on the machine.
        const cpuPerReq = (t: 'echo' | 'nexus', r: LoadResult): string => `${((cpu[t] * 1000) / r.ok).toFixed(0)}`;
        const errs = n.errors + e.errors > 0 ? `; errors nexus ${n.errors}, echo ${e.errors}` : '';
        rows.push(row('P1', {
          id: `p1.get.c${c}.ops`, name: `secret GET throughput, ${c} concurrent client${c > 1 ? 's' : ''}, warm mTLS keep-alive`,
          value: n.opsPerSec, unit: 'ops/s', baseline: e.opsPerSec, ratio: n.opsPerSec / e.opsPerSec,
          note: `${n.ok} GETs in ${(n.elapsedMs / 1000).toFixed(1)} s; server CPU per request: Nexus ${cpuPerReq('nexus', n)} µs, echo ${cpuPerReq('echo', e)} µs; baseline: bare Node https mTLS server, same SVIDs, same JSON${errs}`,
        }, { on: 'ratio', op: '>=', target: 0.8, text: '≥ 0.8×' }));
        const nexusCpuUs = (cpu.nexus * 1000) / n.ok;
        const echoCpuUs = (cpu.echo * 1000) / e.ok;
        rows.push(row('P1', {
          id: `p1.cpu.c${c}`, name: `server CPU per warm GET, ${c} client${c > 1 ? 's' : ''} (from /proc, server process only)`,
          value: nexusCpuUs, unit: 'µs', baseline: echoCpuUs, ratio: nexusCpuUs / echoCpuUs,
          note: 'lower is better; baseline: the bare https mTLS echo in the same run',
        }, c === 32 ? { on: 'ratio', op: '<=', target: 1.5, text: '≤ 1.5×' } : undefined));
        for (const p of [50, 99]) {
          rows.push(row('P1', {
            id: `p1.get.c${c}.p${p}`, name: `secret GET latency p${p}, ${c} client${c > 1 ? 's' : ''}`,
            value: pUs(n.hist, p), unit: 'µs', baseline: pUs(e.hist, p), ratio: pUs(n.hist, p) / pUs(e.hist, p),
            note: 'lower is better; baseline: the echo server',
          }));
        }
      }
      rows.push(...(await this.#p7(echo.port)));
    } finally {
      echo.stop();
    }
    return rows;
  }

  /** P7, run inside P1 while the echo server is up (its new-connection cost is a reference). */
  async #p7(echoPort: number): Promise<BenchRow[]> {
    const ms = this.quick ? 1500 : 5000;
    const body = (): string => JSON.stringify({ path: GET_PATH });
    const fresh = async (origin: string): Promise<LoadResult> => {
      const d = this.dispatcher(1);
      try {
        return await closedLoop({ dispatcher: d, origin, path: GET, body, concurrency: 1, durationMs: ms, headers: { connection: 'close' } });
      } finally {
        await d.close();
      }
    };
    progress(`P7 new connection + GET, Nexus and echo, ${(2 * ms) / 1000} s`);
    const n = await fresh(this.origin);
    const e = await fresh(`https://localhost:${echoPort}`);
    this.curves['Nexus new connection + GET'] = curveUs(n.hist);
    const warm = this.warmGet1;
    if (warm === undefined) throw new Error('P1 single-client run missing');
    return [row('P7', {
      id: 'p7.new-connection-get.p50', name: 'new mTLS connection (TCP + TLS 1.3 full handshake) + one GET, p50',
      value: pUs(n.hist, 50), unit: 'µs', baseline: pUs(warm, 50), ratio: pUs(n.hist, 50) / pUs(warm, 50),
      note: `baseline: warm-connection GET p50 (P1, 1 client); p99 ${pUs(n.hist, 99).toFixed(0)} µs, ${n.opsPerSec.toFixed(0)} conn/s; ` +
        `same on the bare https echo: p50 ${pUs(e.hist, 50).toFixed(0)} µs (the client never resumes TLS sessions)`,
    }, { on: 'ratio', op: 'report', target: 0, text: 'report only' })];
  }

  // ---------------------------------------------------------------------------------- P2

  /** better-sqlite3, WAL, synchronous=FULL, one transaction per write, on the stack's file system. */
  #sqliteBaseline(ms: number): { opsPerSec: number; n: number } {
    const file = path.join(this.stack.dir, 'bench-baseline.db');
    const db = new Database(file);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec('CREATE TABLE kv (path TEXT NOT NULL, version INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (path, version))');
      const ins = db.prepare('INSERT INTO kv (path, version, value) VALUES (?, ?, ?)');
      const tx = db.transaction((p: string, v: number, b: Buffer) => { ins.run(p, v, b); });
      const blob = randomBytes(160); // about the size of a sealed secret row
      for (let i = 0; i < 200; i++) tx(`warm/${i % 64}`, i, blob);
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < ms) {
        tx(`bench/w${n % 64}`, n, blob);
        n++;
      }
      return { opsPerSec: (n * 1000) / (performance.now() - t0), n };
    } finally {
      db.close();
      for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
    }
  }

  async p2(): Promise<BenchRow[]> {
    const ms = this.quick ? 2500 : 8000;
    const baseMs = ms / 2;
    progress(`P2 baseline (1/2): better-sqlite3, one synchronous=FULL transaction per write, ${baseMs / 1000} s`);
    const before = this.#sqliteBaseline(baseMs);
    const rows: BenchRow[] = [];
    const runs: Array<[number, LoadResult & { serverCpuMs?: number }]> = [];
    for (const c of [1, 64]) {
      progress(`P2 PUT, ${c} writer${c > 1 ? 's' : ''}, ${ms / 1000} s`);
      const d = this.dispatcher(c);
      let r: LoadResult & { serverCpuMs?: number };
      try {
        r = await this.#measure(d, this.origin, SECRETS, putBody, c, ms, this.stack.pid('nexus'));
      } finally {
        await d.close();
      }
      runs.push([c, r]);
    }
    // Measured again afterwards: fsync cost on a shared disk drifts; the mean of both is the baseline.
    progress(`P2 baseline (2/2), ${baseMs / 1000} s`);
    const after = this.#sqliteBaseline(baseMs);
    rows.push(await this.#p2Cpu(runs.find(([c]) => c === 64)?.[1], ms));
    const base = (before.opsPerSec + after.opsPerSec) / 2;
    for (const [c, r] of runs) {
      rows.push(row('P2', {
        id: `p2.put.c${c}.ops`, name: `secret PUT throughput, ${c} concurrent writer${c > 1 ? 's' : ''}`,
        value: r.opsPerSec, unit: 'ops/s', baseline: base, ratio: r.opsPerSec / base,
        note: `p50 ${pUs(r.hist, 50).toFixed(0)} µs, p99 ${pUs(r.hist, 99).toFixed(0)} µs${r.errors ? `, ${r.errors} errors` : ''}; Nexus CPU per PUT ${(((r.serverCpuMs ?? Number.NaN) * 1000) / r.ok).toFixed(0)} µs; ` +
          `baseline: better-sqlite3 (WAL, synchronous=FULL) one transaction per write, sequential, same file system (${before.opsPerSec.toFixed(0)} before, ${after.opsPerSec.toFixed(0)} after)`,
      }, c === 64 ? { on: 'ratio', op: '>=', target: 5, text: '≥ 5×' } : undefined));
    }
    return rows;
  }

  /**
   * `p2.cpu.c64` (issue 17): Nexus CPU per PUT with 64 writers against the bare https echo's CPU
   * per request under the same 64-writer PUT load (same bodies, same SVIDs), measured right
   * after Nexus's run. TLS and HTTP are in both; the rest is Nexus's own work per write.
   */
  async #p2Cpu(nexus: (LoadResult & { serverCpuMs?: number }) | undefined, ms: number): Promise<BenchRow> {
    const echo = await this.startEcho();
    const d = this.dispatcher(64);
    let e: LoadResult & { serverCpuMs?: number };
    try {
      progress(`P2 PUT, 64 writers, bare https echo, ${ms / 2000} s`);
      e = await this.#measure(d, `https://localhost:${echo.port}`, SECRETS, putBody, 64, ms / 2, echo.pid);
    } finally {
      await d.close();
      echo.stop();
    }
    const nexusUs = nexus === undefined ? Number.NaN : ((nexus.serverCpuMs ?? Number.NaN) * 1000) / nexus.ok;
    const echoUs = ((e.serverCpuMs ?? Number.NaN) * 1000) / e.ok;
    return row('P2', {
      id: 'p2.cpu.c64', name: 'server CPU per PUT, 64 writers (from /proc, server process only)',
      value: nexusUs, unit: 'µs', baseline: echoUs, ratio: nexusUs / echoUs,
      note: `lower is better; baseline: the bare https mTLS echo under the same 64-writer PUT load in the same run (${e.ok} answers in ${(e.elapsedMs / 1000).toFixed(1)} s; Nexus ${nexus?.ok ?? 0} PUTs in ${((nexus?.elapsedMs ?? 0) / 1000).toFixed(1)} s)`,
    }, { on: 'ratio', op: '<=', target: 2.5, text: '≤ 2.5×' });
  }
}

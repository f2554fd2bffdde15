/**
 * Issue 7 benchmarks that run against the real stack (`test/helpers/stack.ts`: spike-agent,
 * 3 Keepers, spike-nexus on SQLite, each its own process), each with its baseline measured in
 * the same run:
 *
 * - P1 warm GET throughput and p50/p99 at 1 and 32 concurrent clients vs a bare Node `https`
 *   mTLS server (child process, Nexus's own SVID, replying Nexus's exact JSON bytes);
 * - P2 PUT throughput at 1 and 64 writers vs better-sqlite3 doing one `synchronous=FULL`
 *   transaction per write on the same file system;
 * - P4 Nexus kill -9 → start → first 200 answer, 3 Keepers up, median of 5;
 * - P6 RSS of Nexus holding 100,000 secrets (written through the API), after a restart and a
 *   few reads; RSS of an idle Keeper;
 * - P7 new connection (TCP + TLS 1.3 full handshake, both SVIDs verified) + one GET vs a GET on
 *   a warm connection.
 *
 * Clients use the project's `createMtlsDispatcher` (undici Agent, one connection per
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

export const BENCH_APP_ID = 'spiffe://spike.ist/workload/bench-app';
/** Warm-up of each measured load phase: this many answers (see `#measure`), or {@link WARM_MAX_MS}. */
const WARM_REQUESTS = 3000;
const WARM_MAX_MS = 8000;
const NEXUS_ID = SpiffeId.parse('spiffe://spike.ist/spike/nexus');
const SECRETS = '/v1/store/secrets';
const GET = `${SECRETS}?action=get`;
const GET_PATH = 'bench/get/creds';
const VALUE = { username: 'admin', password: 'p'.repeat(32) };

export interface StackBenchOptions {
  quick: boolean;
}

export type Curves = Record<string, Array<[number, number]>>;

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
        // ABBA order (echo, Nexus, Nexus, echo), half the budget each, so drift in the
        // machine's load (other processes) hits both sides alike; histograms are merged.
        const runs: Partial<Record<'echo' | 'nexus', LoadResult>> = {};
        const cpu = { echo: 0, nexus: 0 };
        const dEcho = this.dispatcher(c);
        const dNexus = this.dispatcher(c);
        try {
          for (const target of ['echo', 'nexus', 'nexus', 'echo'] as const) {
            progress(`P1 GET, ${c} client${c > 1 ? 's' : ''}, ${target === 'echo' ? 'bare https echo' : 'Nexus'}, ${ms / 2000} s`);
            const origin = target === 'echo' ? `https://localhost:${echo.port}` : this.origin;
            const r = await this.#measure(target === 'echo' ? dEcho : dNexus, origin, GET, body, c, ms / 2, target === 'echo' ? echo.pid : this.stack.pid('nexus'));
            runs[target] = merge(runs[target], r);
            cpu[target] += r.serverCpuMs ?? Number.NaN;
          }
        } finally {
          await dEcho.close();
          await dNexus.close();
        }
        const e = runs.echo as LoadResult;
        const n = runs.nexus as LoadResult;
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
        r = await this.#measure(d, this.origin, SECRETS, (w) => JSON.stringify({ path: `bench/put/w${w}`, values: VALUE }), c, ms, this.stack.pid('nexus'));
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
      e = await this.#measure(d, `https://localhost:${echo.port}`, SECRETS, (w) => JSON.stringify({ path: `bench/put/w${w}`, values: VALUE }), 64, ms / 2, echo.pid);
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

  // ---------------------------------------------------------------------------------- P4

  /** Polls GET until Nexus answers 200 (503 before it has its root key). */
  async #untilReady(d: Dispatcher, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        const r = await d.request({ origin: this.origin, path: GET, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: GET_PATH }) });
        await r.body.arrayBuffer();
        if (r.statusCode === 200) return;
      } catch {
        /* not listening yet, or the old connection died */
      }
      if (performance.now() > deadline) throw new Error(`nexus not ready within ${timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 5));
    }
  }

  /** kill -9, start, wait for the first 200; returns [ready ms, listening ms]. */
  async #restart(d: Dispatcher): Promise<[number, number]> {
    await this.stack.killNexus('SIGKILL');
    const t0 = performance.now();
    await this.stack.startNexus();
    const t1 = performance.now();
    await this.#untilReady(d, 30_000);
    return [performance.now() - t0, t1 - t0];
  }

  async p4(): Promise<BenchRow[]> {
    const d = this.dispatcher(1);
    const ready: number[] = [];
    const listen: number[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        progress(`P4 restart ${i + 1}/5`);
        const [r, l] = await this.#restart(d);
        ready.push(r);
        listen.push(l);
      }
    } finally {
      await d.close();
    }
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    return [row('P4', {
      id: 'p4.restart-ready.ms', name: 'Nexus kill -9 → start → ready (3 Keepers up), median of 5',
      value: med(ready), unit: 'ms',
      note: `all: ${ready.map((x) => x.toFixed(0)).join(', ')} ms; of which process start → listening (median) ${med(listen).toFixed(0)} ms; ready = first 200 to a secret GET`,
    }, { on: 'value', op: '<=', target: 1500, text: '≤ 1.5 s' })];
  }

  // ---------------------------------------------------------------------------------- P6

  async p6(): Promise<BenchRow[]> {
    const total = this.quick ? 10_000 : 100_000;
    const d = this.dispatcher(64);
    let writeRate: number;
    let rssLoaded: number;
    try {
      progress(`P6 writing ${total} secrets through the API (64 writers)`);
      let next = 0;
      let failed = 0;
      const t0 = performance.now();
      let lastTick = t0;
      await Promise.all(Array.from({ length: 64 }, async () => {
        while (next < total) {
          const i = next++;
          const r = await d.request({ origin: this.origin, path: SECRETS, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: `bench/rss/${i}`, values: VALUE }) });
          await r.body.arrayBuffer();
          if (r.statusCode !== 200) failed++;
          if (performance.now() - lastTick > 10_000) {
            lastTick = performance.now();
            progress(`P6 … ${next} / ${total}`);
          }
        }
      }));
      if (failed > 0) throw new Error(`${failed} of ${total} PUTs failed`);
      writeRate = (total * 1000) / (performance.now() - t0);
      rssLoaded = rssMiB(this.stack.pid('nexus'));
      progress(`P6 restart Nexus, read a few secrets, read RSS`);
      await this.#restart(d);
      for (let i = 0; i < 10; i++) {
        const r = await d.request({ origin: this.origin, path: GET, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: `bench/rss/${(i * 9973) % total}` }) });
        await r.body.arrayBuffer();
        if (r.statusCode !== 200) throw new Error(`GET answered ${r.statusCode}`);
      }
      await new Promise((res) => setTimeout(res, 500));
    } finally {
      await d.close();
    }
    const nexusRss = rssMiB(this.stack.pid('nexus'));
    const keeperRss = rssMiB(this.stack.pid('keeper-1'));
    const keeperAnon = anonMiB(this.stack.pid('keeper-1'));
    const dbMiB = dbSizeMiB(this.stack.dir);
    return [
      row('P6', {
        id: 'p6.nexus.rss.mib', name: `RSS of Nexus holding ${total.toLocaleString('en')} secrets (after restart + 10 reads)`,
        value: nexusRss, unit: 'MiB',
        note: `${this.quick ? 'quick run: 10,000 secrets, not 100,000; ' : ''}written through the API (64 writers, ${writeRate.toFixed(0)} PUT/s); ` +
          `RSS right after the writes, before the restart: ${rssLoaded.toFixed(0)} MiB; SQLite files ${dbMiB.toFixed(0)} MiB`,
      }, { on: 'value', op: '<=', target: 200, text: '≤ 200 MB' }),
      row('P6', {
        id: 'p6.keeper.rss', name: 'RSS of an idle Keeper (holding its share)', value: keeperRss, unit: 'MiB',
        note: `keeper-1, after the whole run; of which private (anonymous) ${keeperAnon.toFixed(1)} MiB, the rest file-backed pages of the node binary shared by every node process`,
      }, { on: 'value', op: '<=', target: 60, text: '≤ 60 MB' }),
    ];
  }
}

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

function dbSizeMiB(dir: string): number {
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

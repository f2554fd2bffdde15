/**
 * The FI-10 mix, shared by FI-10, FI-16, FI-18 and FI-19: `identities` distinct SPIFFE IDs (one
 * spike-agent socket each), each with a policy granting read and write on its own prefix
 * `fi/app-NN/`, one keep-alive mTLS dispatcher per identity (`connectionsPerIdentity`
 * connections, undici, no pipelining), and `clients` logical clients multiplexed over them
 * (client c uses identity c mod identities). Each logical client loops: a GET of one of its
 * own keys (90%) or a PUT of a fresh random value (10%, or whenever it has no key yet), then a
 * think time (uniform 0 … 2 × thinkMs). Requests are raw (exact status, no SDK retries).
 *
 * The ledger keeps, per key, the last acknowledged (2xx) value and the values sent since whose
 * outcome is unknown. A 200 GET whose value is neither is an integrity error; a 404 for a key
 * with an acknowledged value is a lost ack. `verifyAll` reads every key as the superuser (load
 * paused) with the same rule.
 */
import { randomBytes } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { SpiffeId } from '../../src/spiffe/id.js';
import { WorkloadX509Source, authorizeIf, createMtlsDispatcher } from '../../src/spiffe/index.js';
import type { NexusClient } from '../../src/sdk/index.js';
import type { Stack } from '../helpers/stack.js';
import { sleep, waitFor } from './shared.js';
import { bump, newStats, type MixStats } from './stats.js';

const NEXUS_ID = SpiffeId.parse('spiffe://spike.ist/spike/nexus');
const SECRETS = '/v1/store/secrets';
const KEYS_PER_CLIENT = 5;

export interface MixOptions {
  identities: number;
  clients: number;
  thinkMs: number;
  putShare: number;
  connectionsPerIdentity: number;
  /**
   * FI-16: a request refused on a connection whose grant lapsed (401 with `connection: close`,
   * the server's answer on such a connection) or that broke at the connection level is sent
   * once more; the outcome of that retry is counted.
   */
  retryLapsed: boolean;
}

export const DEFAULT_MIX: MixOptions = { identities: 50, clients: 1000, thinkMs: 1000, putShare: 0.1, connectionsPerIdentity: 4, retryLapsed: false };

export function appName(i: number): string {
  return `fi-app-${String(i).padStart(2, '0')}`;
}

/** Agent identities for the stack: `fi-app-00` … → spiffe://spike.ist/workload/fi-app-00 … */
export function mixIdentities(n: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) out[appName(i)] = `spiffe://spike.ist/workload/${appName(i)}`;
  return out;
}

interface KeyState { acked: string | undefined; pending: Set<string> }

interface Answer { status: number; close: boolean; body: string }

export class MixLoad {
  readonly opts: MixOptions;
  readonly #stack: Stack;
  readonly #sources: WorkloadX509Source[] = [];
  readonly #dispatchers: Dispatcher[] = [];
  readonly #ledger = new Map<string, KeyState>();
  stats: MixStats = newStats();
  /** Called once per request (first attempt) with its start and end (performance.now()) and its answer or error code. */
  onCall: ((c: { t0: number; t1: number; status?: number; err?: string }) => void) | undefined;
  #running = false;
  #paused = false;
  #inFlight = 0;
  #loops: Promise<void>[] = [];
  #startedAt = 0;
  #closed = false;
  /** Clients whose key 0 was written by `seed()`. */
  readonly #seeded = new Set<number>();

  private constructor(stack: Stack, opts: MixOptions) {
    this.#stack = stack;
    this.opts = opts;
  }

  /** Grants every identity its prefix, opens the sources and dispatchers, waits until each may write. */
  static async open(stack: Stack, pilot: NexusClient, opts: MixOptions): Promise<MixLoad> {
    const m = new MixLoad(stack, opts);
    for (let i = 0; i < opts.identities; i++) {
      const n = appName(i);
      await pilot.putPolicy({ name: n, spiffeIdPattern: `^spiffe://spike\\.ist/workload/${n}$`, pathPattern: `^fi/${n}/.*$`, permissions: ['read', 'write'] });
    }
    for (let i = 0; i < opts.identities; i++) {
      const source = await WorkloadX509Source.open({ endpoint: stack.socket(appName(i)), timeoutMs: 15_000 });
      m.#sources.push(source);
      m.#dispatchers.push(createMtlsDispatcher({ source, authorizeServer: authorizeIf((id) => id.equals(NEXUS_ID)), connections: opts.connectionsPerIdentity }));
    }
    for (let i = 0; i < opts.identities; i++) {
      await waitFor(async () => (await m.#send(i, SECRETS, { path: `fi/${appName(i)}/probe`, values: { v: 'ok' } }).catch(() => undefined))?.status === 200, 30_000, `${appName(i)} allowed to write`);
    }
    return m;
  }

  /** SVID sources, one per identity (FI-16 watches their rotations). */
  get sources(): readonly WorkloadX509Source[] {
    return this.#sources;
  }

  async #send(identity: number, route: string, body: unknown): Promise<Answer> {
    const r = await request(this.#stack.nexusUrl + route, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      dispatcher: this.#dispatchers[identity]!,
    });
    const text = await r.body.text();
    return { status: r.statusCode, close: String(r.headers['connection'] ?? '').toLowerCase() === 'close', body: text };
  }

  /** One request with the FI-16 retry rule; returns the final answer or the error code. */
  async #call(identity: number, route: string, body: unknown): Promise<{ a?: Answer; err?: string; ms: number; startedS: number }> {
    const t0 = performance.now();
    const startedS = (t0 - this.#startedAt) / 1000;
    let first: { a?: Answer; err?: string };
    try {
      first = { a: await this.#send(identity, route, body) };
    } catch (e) {
      first = { err: (e as { code?: string }).code ?? (e as Error).name };
    }
    const ms = performance.now() - t0;
    this.onCall?.({ t0, t1: t0 + ms, ...(first.a !== undefined ? { status: first.a.status } : { err: first.err! }) });
    if (ms > 200) this.stats.slowAt.push(Math.round((performance.now() - this.#startedAt) / 1000));
    if (first.a !== undefined) {
      bump(this.stats.status, first.a.status);
      if (first.a.status >= 500) {
        this.stats.fiveXX++;
        let code = 'unparsed';
        try {
          code = String((JSON.parse(first.a.body) as { code?: unknown; err?: unknown }).code ?? (JSON.parse(first.a.body) as { err?: unknown }).err);
        } catch { /* keep 'unparsed' */ }
        const key = `${first.a.status} ${code}`;
        bump(this.stats.fiveXXCodes, key);
        this.stats.fiveXXSeconds.add(Math.round((performance.now() - this.#startedAt) / 1000));
      }
    } else {
      bump(this.stats.netErrors, first.err!);
    }
    const lapsed = first.a?.status === 401 && first.a.close;
    if (lapsed) this.stats.lapsed401++;
    if (!this.opts.retryLapsed || !(lapsed || first.err !== undefined)) return { ...first, ms, startedS };
    try {
      const a = await this.#send(identity, route, body);
      if (a.status === 200) this.stats.retriesOk++;
      else bump(this.stats.retriesFailed, `status ${a.status}`);
      return { a, ms: performance.now() - t0, startedS };
    } catch (e) {
      const err = (e as { code?: string }).code ?? (e as Error).name;
      bump(this.stats.retriesFailed, err);
      return { err, ms: performance.now() - t0, startedS };
    }
  }

  #key(path: string): KeyState {
    let k = this.#ledger.get(path);
    if (k === undefined) this.#ledger.set(path, (k = { acked: undefined, pending: new Set() }));
    return k;
  }

  /** Checks a read of `path` against the ledger: 'ok', 'lost' or 'integrity'. */
  judge(path: string, status: number, body: string): 'ok' | 'lost' | 'integrity' | 'other' {
    const k = this.#key(path);
    if (status === 404) return k.acked === undefined ? 'ok' : 'lost';
    if (status !== 200) return 'other';
    let v: unknown;
    try {
      v = (JSON.parse(body) as { data?: { v?: unknown } }).data?.v;
    } catch {
      return 'integrity';
    }
    if (typeof v === 'string' && (v === k.acked || k.pending.has(v))) return 'ok';
    return 'integrity';
  }

  async #client(c: number): Promise<void> {
    const identity = c % this.opts.identities;
    const prefix = `fi/${appName(identity)}/c${c}/k`;
    const written: number[] = this.#seeded.has(c) ? [0] : [];
    // Spread the first requests over one think time, as clients that started at different times.
    await sleep(Math.random() * 2 * this.opts.thinkMs);
    while (this.#running) {
      if (this.#paused) {
        while (this.#paused && this.#running) await sleep(20);
        // Back from a pause (the idle measurements, the verifications) as from the start: spread
        // over one think time, not all 1,000 clients within 20 ms. The scenarios' load has no
        // such herd otherwise (after a Nexus restart it falls in the warm-up).
        await sleep(Math.random() * 2 * this.opts.thinkMs);
      }
      if (!this.#running) break;
      this.#inFlight++;
      try {
        if (written.length === 0 || Math.random() < this.opts.putShare) {
          const j = Math.floor(Math.random() * KEYS_PER_CLIENT);
          const path = `${prefix}${j}`;
          const v = randomBytes(12).toString('base64url');
          const k = this.#key(path);
          k.pending.add(v);
          const r = await this.#call(identity, SECRETS, { path, values: { v } });
          if (r.a?.status === 200) {
            this.stats.put.push(r.ms);
            if (r.startedS >= 10) this.stats.putSteady.push(r.ms);
            this.stats.acks++;
            k.acked = v;
            k.pending.clear();
            if (!written.includes(j)) written.push(j);
          }
        } else {
          const path = `${prefix}${written[Math.floor(Math.random() * written.length)]!}`;
          const r = await this.#call(identity, `${SECRETS}?action=get`, { path });
          if (r.a !== undefined) {
            const verdict = this.judge(path, r.a.status, r.a.body);
            if (verdict === 'lost') this.stats.lostAcks++;
            if (verdict === 'integrity') this.stats.integrityErrors++;
            if (r.a.status === 200) {
              this.stats.get.push(r.ms);
              if (r.startedS >= 10) this.stats.getSteady.push(r.ms);
            }
          }
        }
      } finally {
        this.#inFlight--;
      }
      await sleep(Math.random() * 2 * this.opts.thinkMs);
    }
  }

  /**
   * Writes every client's first key before the measured phase (64 at a time), which also opens
   * the connection pools: the measured phase is then the 90/10 mix on kept-alive connections
   * from its first second. Returns the seeding's duration and p99 (connection set-up included).
   */
  async seed(): Promise<{ ms: number; p99: number }> {
    const t0 = performance.now();
    const lat: number[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      for (let c = next++; c < this.opts.clients; c = next++) {
        const identity = c % this.opts.identities;
        const path = `fi/${appName(identity)}/c${c}/k0`;
        const v = randomBytes(12).toString('base64url');
        const k = this.#key(path);
        k.pending.add(v);
        const r0 = performance.now();
        const a = await this.#send(identity, SECRETS, { path, values: { v } });
        if (a.status !== 200) throw new Error(`seeding answered ${a.status}`);
        lat.push(performance.now() - r0);
        k.acked = v;
        k.pending.clear();
        this.#seeded.add(c);
      }
    }));
    lat.sort((a, b) => a - b);
    return { ms: Math.round(performance.now() - t0), p99: Math.round(lat[Math.floor(lat.length * 0.99)] ?? NaN) };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#startedAt = performance.now();
    this.#loops = Array.from({ length: this.opts.clients }, (_, c) => this.#client(c));
  }

  /**
   * `perIdentity` GETs per identity at once, beside the mix (each of a key its clients seeded):
   * work that is certainly in flight right after the call. Resolves when all are answered or failed.
   */
  async burst(perIdentity: number): Promise<void> {
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < this.opts.identities; i++) {
      for (let j = 0; j < perIdentity; j++) {
        const c = i + this.opts.identities * (j % Math.max(1, Math.floor(this.opts.clients / this.opts.identities)));
        calls.push(this.#call(i, `${SECRETS}?action=get`, { path: `fi/${appName(i)}/c${c}/k0` }));
      }
    }
    await Promise.all(calls);
  }

  /** Stops issuing requests and waits for those in flight. */
  async pause(): Promise<void> {
    this.#paused = true;
    await waitFor(() => this.#inFlight === 0, 120_000, 'in-flight requests to finish');
  }

  resume(): void {
    this.#paused = false;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  /** Takes the stats gathered so far and starts new ones. */
  takeStats(): MixStats {
    const s = this.stats;
    this.stats = newStats();
    return s;
  }

  /** Reads every key as `pilot` (load paused or stopped): lost acks and integrity errors. */
  async verifyAll(pilot: NexusClient): Promise<{ checked: number; lost: number; integrity: number; failed: number }> {
    const entries = [...this.#ledger.entries()];
    const out = { checked: 0, lost: 0, integrity: 0, failed: 0 };
    let i = 0;
    const worker = async (): Promise<void> => {
      while (i < entries.length) {
        const [path] = entries[i++]!;
        let status = 200;
        let body = '';
        try {
          body = JSON.stringify({ data: await pilot.getSecret(path) });
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code === 'api_not_found') status = 404;
          else {
            out.failed++;
            continue;
          }
        }
        out.checked++;
        const verdict = this.judge(path, status, body);
        if (verdict === 'lost') out.lost++;
        if (verdict === 'integrity') out.integrity++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.stop();
    for (const d of this.#dispatchers) await d.close().catch(() => undefined);
    for (const s of this.#sources) s.close();
  }
}

/**
 * A whole SPIKE for end-to-end tests, from the real binaries: `spike-agent` (one socket per
 * identity), n Keepers, Nexus (sqlite by default, in a temp dir) and, unless disabled,
 * `spike-bootstrap`. Every child's output is captured for log scans (`children.ts`). `stop()` kills
 * everything and removes the temp dir.
 *
 * Several Nexus (issue 8): `nexusCount: 3` with the postgres backend runs `nexus`,
 * `nexus-2`, `nexus-3` on one database, each on its own port (`nexusUrls`), all with the
 * same Keepers and the same SPIFFE ID; Bootstrap runs once against the first and every
 * instance recovers its key from the Keepers. Instance indexes are 1-based like Keepers'.
 * `backend: 'postgres'` without `databaseUrl` starts a throw-away PostgreSQL cluster
 * (test/helpers/postgres.ts; fsync off — a test cluster that is never power-cut) owned by
 * the stack (`stack.postgres`, stopped by `stop()`); pass `databaseUrl` to use your own.
 * `e2eBackends()` lists the backends the parameterised secrets/policy suites run against.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binCommand, binEnvPath, type BinName } from './bin.js';
import { Children, type RunResult } from './children.js';
import { coreZeroPrefix } from './core-limit.js';
// Types only: the SDK and the Workload API client are loaded by the first client() (about 0.3 s
// of CPU for their ~200 modules). waitReady() asks for one, so only files that never start a
// bootstrapped stack (raw sockets, bootstrap: false, the CLI-only helpers) skip the cost.
import type { WorkloadX509Source } from '../../src/spiffe/index.js';
import type { NexusClient } from '../../src/sdk/index.js';
import { startPostgres, type TestPostgres } from './postgres.js';
import { freePort } from './ports.js';
import { BUILTIN_IDENTITIES, TD, type StackOptions } from './stack-options.js';

export { e2eBackends, KEEPER_DOWN_TIMERS, TD, type E2eBackend, type StackOptions } from './stack-options.js';
export { freePort } from './ports.js';

export class Stack {
  readonly dir: string;
  readonly nexusUrl: string;
  readonly keeperUrls: string[];
  readonly #opts: Required<Pick<StackOptions, 'backend' | 'keepers' | 'threshold'>> & StackOptions;
  readonly #nexusPorts: number[];
  readonly #keeperPorts: number[];
  /** Operations listener ports: Nexus instances first, then Keepers (empty without `ops`). */
  readonly #opsPorts: number[] = [];
  #postgres: TestPostgres | undefined;
  readonly #children = new Children();
  readonly #clients: Array<{ client: NexusClient; source: WorkloadX509Source }> = [];
  #stopped = false;

  private constructor(opts: StackOptions, dir: string, nexusPorts: number[], keeperPorts: number[]) {
    this.#opts = { backend: 'sqlite', keepers: 3, threshold: 2, ...opts };
    this.dir = dir;
    this.#nexusPorts = nexusPorts;
    this.#keeperPorts = keeperPorts;
    this.nexusUrl = `https://localhost:${nexusPorts[0]!}`;
    this.keeperUrls = keeperPorts.map((p) => `https://localhost:${p}`);
  }

  static async start(opts: StackOptions = {}): Promise<Stack> {
    const n = opts.keepers ?? 3;
    const nexusCount = opts.nexusCount ?? 1;
    if (!Number.isInteger(nexusCount) || nexusCount < 1) throw new Error('nexusCount must be a positive integer');
    if (nexusCount > 1 && opts.backend !== 'postgres') throw new Error('several Nexus need a shared database: backend postgres');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-e2e-'));
    const nexusPorts: number[] = [];
    for (let i = 0; i < nexusCount; i++) nexusPorts.push(await freePort());
    const keeperPorts: number[] = [];
    for (let i = 0; i < n; i++) keeperPorts.push(await freePort());
    const st = new Stack(opts, dir, nexusPorts, keeperPorts);
    if (opts.ops === true) for (let i = 0; i < nexusCount + n; i++) st.#opsPorts.push(await freePort());
    // An own PostgreSQL cluster starts (~1 s) while spike-agent and the Keepers do: only Nexus
    // needs it. Its URL is known once it is up; a failed start still stops it (below).
    const pgUp: Promise<void> = opts.backend === 'postgres' && opts.databaseUrl === undefined
      ? startPostgres({ fsync: false }).then((owned) => {
        st.#postgres = owned;
        st.#opts.databaseUrl = owned.connectionString;
      })
      : Promise.resolve();
    try {
      const agentUp = st.#startAgent();
      // Keepers and every Nexus instance at once (one process start instead of two in a row):
      // Nexus polls the Keepers for its key with backoff, so a Keeper still starting is only
      // a retry. The instances race the schema migration (advisory lock).
      await Promise.all([
        agentUp.then(() => Promise.all(st.#opts.backend !== 'memory' ? keeperPorts.map((_, i) => st.startKeeper(i + 1)) : [])),
        Promise.all([agentUp, pgUp]).then(() => Promise.all(nexusPorts.map((_, i) => st.startNexus(i + 1)))),
      ]);
      if (opts.bootstrap !== false && st.#opts.backend !== 'memory' && st.#opts.backend !== 'lite') {
        const r = await st.runBootstrap();
        if (r.code !== 0) throw new Error(`bootstrap failed (${r.code}): ${r.stderr}`);
      }
      if (opts.bootstrap !== false && st.#opts.backend !== 'lite') {
        await Promise.all(nexusPorts.map((_, i) => st.waitReady(90_000, i + 1)));
      }
    } catch (e) {
      await pgUp.catch(() => undefined); // a cluster still starting is stopped too
      await st.stop();
      throw e;
    }
    return st;
  }

  /** Every Nexus URL, instance 1 first (`nexusUrls[0] === nexusUrl`). */
  get nexusUrls(): string[] {
    return this.#nexusPorts.map((p) => `https://localhost:${p}`);
  }

  /** Number of Nexus instances. */
  get nexusCount(): number {
    return this.#nexusPorts.length;
  }

  /** The throw-away PostgreSQL cluster this stack started (backend postgres without `databaseUrl`). */
  get postgres(): TestPostgres | undefined {
    return this.#postgres;
  }

  /** Component name of Nexus instance `index` (1-based): `nexus`, `nexus-2`, `nexus-3`, … */
  nexusName(index = 1): string {
    this.#checkNexusIndex(index);
    return index === 1 ? 'nexus' : `nexus-${index}`;
  }

  #checkNexusIndex(index: number): void {
    if (!Number.isInteger(index) || index < 1 || index > this.#nexusPorts.length) {
      throw new Error(`no Nexus instance ${index} (this stack has ${this.#nexusPorts.length})`);
    }
  }

  /** `http://127.0.0.1:port` of Nexus instance `index`'s operations listener (stack started with `ops`). */
  nexusOpsUrl(index = 1): string {
    this.#checkNexusIndex(index);
    return `http://127.0.0.1:${this.#opsPort(index - 1)}`;
  }

  /** `http://127.0.0.1:port` of Keeper `i`'s operations listener (stack started with `ops`). */
  keeperOpsUrl(i: number): string {
    return `http://127.0.0.1:${this.#opsPort(this.#nexusPorts.length + i - 1)}`;
  }

  #opsPort(slot: number): number {
    const p = this.#opsPorts[slot];
    if (p === undefined) throw new Error('this stack was started without ops: true');
    return p;
  }

  socket(name: string): string {
    return `unix://${path.join(this.dir, 'sockets', `${name}.sock`)}`;
  }

  #identities(): Record<string, string> {
    const ids: Record<string, string> = { ...BUILTIN_IDENTITIES };
    for (let i = 1; i <= this.#opts.keepers; i++) ids[`keeper-${i}`] = `spiffe://${TD}/spike/keeper/${i}`;
    return { ...ids, ...(this.#opts.identities ?? {}) };
  }

  #baseEnv(): Record<string, string> {
    return {
      SPIKE_SYSTEM_LOG_LEVEL: 'INFO',
      SPIKE_NEXUS_SHAMIR_SHARES: String(this.#opts.keepers),
      SPIKE_NEXUS_SHAMIR_THRESHOLD: String(this.#opts.threshold),
      SPIKE_NEXUS_KEEPER_PEERS: this.keeperUrls.join(','),
      SPIKE_NEXUS_API_URL: this.nexusUrl,
      SPIKE_NEXUS_BACKEND_STORE: this.#opts.backend,
    };
  }

  #spawn(name: string, bin: BinName | { script: string }, args: string[], env: Record<string, string>, readyLine?: string, wrapper: string[] = []): Promise<void> {
    const target = typeof bin === 'string' ? binCommand(bin, this.#opts.binRoot) : [process.execPath, bin.script];
    const argv = [...(wrapper.length > 0 ? wrapper : this.#corePrefix(bin, args)), ...target, ...args];
    return this.#children.start(name, argv, { PATH: binEnvPath(), HOME: this.dir, ...env }, readyLine);
  }

  async #startAgent(): Promise<void> {
    const args = ['--trust-domain', TD, '--state-dir', path.join(this.dir, 'agent'), '--socket-dir', path.join(this.dir, 'sockets'),
      '--svid-ttl', this.#opts.svidTtl ?? '1h'];
    for (const [n, id] of Object.entries(this.#identities())) args.push('--identity', `${n}=${id}`);
    await this.#spawn('agent', 'spike-agent', args, {}, 'spike-agent ready');
  }

  /**
   * Restarts spike-agent. With `newCa` its CA files are removed first, so it comes back with a
   * new CA and a trust bundle holding only that one: the old CA is withdrawn from every
   * component's bundle once their Workload API streams reconnect.
   */
  async restartAgent(opts: { newCa?: boolean } = {}): Promise<void> {
    await this.#kill('agent', 'SIGTERM');
    if (opts.newCa === true) {
      for (const f of ['ca.key', 'ca.crt']) fs.rmSync(path.join(this.dir, 'agent', f), { force: true });
    }
    await this.#startAgent();
  }

  /** Starts Keeper i (1-based); `wrapper` prefixes the command (e.g. strace). */
  async startKeeper(i: number, opts: { wrapper?: string[] } = {}): Promise<void> {
    await this.#spawn(`keeper-${i}`, 'spike-keeper', [], this.keeperEnv(i), 'spike-keeper ready', opts.wrapper);
  }

  keeperEnv(i: number): Record<string, string> {
    return {
      ...this.#baseEnv(), ...(this.#opts.keeperEnv ?? {}),
      SPIFFE_ENDPOINT_SOCKET: this.socket(`keeper-${i}`),
      SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${this.#keeperPorts[i - 1]}`,
      ...(this.#opsPorts.length > 0 ? { SPIKE_KEEPER_OPS_ADDR: `:${this.#opsPort(this.#nexusPorts.length + i - 1)}` } : {}),
    };
  }

  /** Runs a test double (a compiled script) under `name`, e.g. in a Keeper's place. */
  async startCustom(name: string, script: string, env: Record<string, string>, readyLine: string): Promise<void> {
    await this.#spawn(name, { script }, [], env, readyLine);
  }

  async killCustom(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.#kill(name, signal);
  }

  /** The pid of a running component. */
  pid(name: string): number | undefined {
    return this.#children.process(name)?.pid;
  }

  async killKeeper(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.#kill(`keeper-${i}`, signal);
  }

  /** Environment of Nexus instance `index` (1-based; all share the `nexus` SVID). */
  nexusEnv(index = 1): Record<string, string> {
    this.#checkNexusIndex(index);
    return {
      ...this.#baseEnv(),
      ...(index === 1 ? {} : { SPIKE_NEXUS_API_URL: this.nexusUrls[index - 1]! }),
      SPIFFE_ENDPOINT_SOCKET: this.socket('nexus'),
      SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${this.#nexusPorts[index - 1]!}`,
      SPIKE_NEXUS_DATA_DIR: this.dir,
      SPIKE_NEXUS_RECOVERY_MAX_INTERVAL: '250ms',
      ...(this.#opts.databaseUrl ? { SPIKE_NEXUS_DATABASE_URL: this.#opts.databaseUrl } : {}),
      ...(this.#opsPorts.length > 0 ? { SPIKE_NEXUS_OPS_ADDR: `127.0.0.1:${this.#opsPort(index - 1)}` } : {}),
      ...(this.#opts.nexusEnv ?? {}),
      ...(this.#opts.nexusEnvOf?.[index] ?? {}),
    };
  }

  /** Starts Nexus instance `index` (1-based, default the first); `wrapper` prefixes the command (e.g. a ulimit shell). */
  async startNexus(index = 1, opts: { wrapper?: string[]; env?: Record<string, string> } = {}): Promise<void> {
    await this.#spawn(this.nexusName(index), 'spike-nexus', [], { ...this.nexusEnv(index), ...(opts.env ?? {}) }, 'spike-nexus ready', opts.wrapper);
  }

  /** Kills Nexus instance `index` (1-based, default the first) and waits for its exit. */
  async killNexus(signal: NodeJS.Signals = 'SIGKILL', index = 1): Promise<void> {
    await this.#kill(this.nexusName(index), signal);
  }

  /** A Nexus child process (for pid-based measurements), if running; default the first. */
  nexusProcess(index = 1): ChildProcess | undefined {
    return this.#children.process(this.nexusName(index));
  }

  #kill(name: string, signal: NodeJS.Signals): Promise<void> {
    return this.#children.kill(name, signal);
  }

  async runBootstrap(): Promise<{ code: number | null; stderr: string }> {
    const r = await this.run('spike-bootstrap', ['-init'], { ...this.#baseEnv(), SPIFFE_ENDPOINT_SOCKET: this.socket('bootstrap') }, undefined, 'bootstrap');
    return { code: r.code, stderr: r.stderr };
  }

  /** See {@link StackOptions.coreLimit}: the command prefix a binary is started with. */
  #corePrefix(bin: BinName | { script: string }, args: readonly string[]): string[] {
    return this.#opts.coreLimit === 'inherit' ? [] : coreZeroPrefix(bin, args);
  }

  /** Runs a binary to completion, capturing its output (also into the logs under `logName`). */
  run(bin: BinName, args: string[], env: Record<string, string>, stdin?: Buffer, logName?: string): Promise<RunResult> {
    const argv = [...this.#corePrefix(bin, args), ...binCommand(bin, this.#opts.binRoot), ...args];
    return this.#children.run(logName ?? bin, argv, { PATH: binEnvPath(), HOME: this.dir, ...env }, this.dir, stdin);
  }

  spike(args: string[], opts: { identity?: string; stdin?: Buffer; env?: Record<string, string> } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return this.run('spike', args, {
      ...this.#baseEnv(),
      SPIKE_SYSTEM_LOG_LEVEL: 'WARN',
      SPIFFE_ENDPOINT_SOCKET: this.socket(opts.identity ?? 'pilot'),
      ...(opts.env ?? {}),
    }, opts.stdin, 'spike');
  }

  /**
   * SDK client with `identity`'s SVID, talking to the first Nexus, or to `opts.urls` (e.g.
   * `stack.nexusUrls` for fail-over across every instance, or one instance's URL).
   * `retryUnavailableMs` defaults to 0 here, not the SDK's 5 s: tests of a Nexus that is down
   * or not ready see each refusal and each 503 at once.
   */
  async client(identity: string, opts: { urls?: string[]; timeoutMs?: number; retryUnavailableMs?: number } = {}): Promise<NexusClient> {
    const [{ WorkloadX509Source }, { NexusClient }] = await Promise.all([import('../../src/spiffe/index.js'), import('../../src/sdk/index.js')]);
    const source = await WorkloadX509Source.open({ endpoint: this.socket(identity), timeoutMs: 15_000 });
    const client = await NexusClient.connect({
      urls: opts.urls ?? [this.nexusUrl],
      source,
      retryUnavailableMs: opts.retryUnavailableMs ?? 0,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
    this.#clients.push({ client, source });
    return client;
  }

  /** Polls Nexus instance `index` (1-based, default the first) until it is ready. */
  async waitReady(timeoutMs = 90_000, index = 1): Promise<void> {
    const name = this.nexusName(index);
    const c = await this.client('pilot', { urls: [this.nexusUrls[index - 1]!] });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await c.listSecrets();
        return;
      } catch (e) {
        // Any answer but 503 means the readiness gate is open (an unknown route answers 400
        // once ready, 503 before), so this works whatever routes the backend serves.
        const code = (e as { code?: string }).code;
        if (code !== 'state_not_ready' && code !== 'net_peer_connection') return;
        if (Date.now() > deadline) {
          // The log's own lines, not the request lines this poll produces.
          const own = this.logs(name).split('\n').filter((l) => !l.includes('"msg":"request"')).join('\n');
          throw new Error(`${name} not ready after ${timeoutMs} ms: ${own.slice(-3000)}`);
        }
      }
      // Short: the gate opens within a few hundred ms of the ready line (Keepers up), and each
      // poll is one request on a kept connection.
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  clearLogs(name: string): void {
    this.#children.clearLogs(name);
  }

  logs(name?: string): string {
    return this.#children.logs(name);
  }

  /** `name`'s JSON log lines, parsed; only those at `level` when given (`error`, `warn`, …). */
  logLines(name: string, level?: string): Record<string, unknown>[] {
    return this.logs(name).split('\n').filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => level === undefined || l['level'] === level);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const { client, source } of this.#clients) {
      await client.close().catch(() => undefined);
      source.close();
    }
    await this.#children.killAll();
    fs.rmSync(this.dir, { recursive: true, force: true });
    await this.#postgres?.stop();
  }
}

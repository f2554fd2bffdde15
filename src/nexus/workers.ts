/**
 * Several cores (SPIKE_NEXUS_WORKERS > 1, postgres only): `node:cluster` with N worker
 * processes sharing the one mTLS listener; the primary accepts connections and hands each to a
 * worker in turn (Node's round-robin), holds no key, opens no store and serves nothing itself.
 *
 * Every worker is a whole Nexus on the shared database, exactly like several Nexus instances
 * on one PostgreSQL (docs/ha.md): it fetches its own SVID, recovers the root key from the
 * Keepers itself, checks the stored policy generation before every policy decision (so a
 * policy deleted through one worker denies at the very next request on every worker) and
 * advances the one monotonic commit anchor. What is per worker: the audit file (one hash chain
 * per writer: `audit.log` becomes `audit.w1.log`, `audit.w2.log`, …), the operations listener
 * (worker i on the configured port + i − 1) and the connection budgets.
 *
 * Worker 1 starts first and the others once it listens, so a bad setting or a taken port fails
 * once, with one line. The primary prints `spike-nexus ready on port N (W workers)` once every
 * worker listens,
 * restarts a worker that dies (with backoff; the replacement listens only once it has
 * recovered the root key and loaded the policies, so the connections handed to it never meet
 * `state_not_ready` while the others serve), and stops them all on SIGTERM/SIGINT. A worker
 * that dies before it ever listened (a bad setting, a port in use) stops the whole Nexus: it
 * would only die again. A worker whose primary is gone exits at once (Node closes the IPC
 * channel and the worker ends itself), so a `kill -9` of the primary leaves no worker behind.
 */
import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import type { NexusConfig } from '../config/index.js';
import { backoffDelay, type Logger } from '../lib/index.js';

/** Names the worker (1-based) in a worker's environment; unset in the primary. */
export const WORKER_ENV = 'SPIKE_NEXUS_WORKER_ID';

/** Set in a worker that replaces one that died: it listens only once it holds the key. */
const REPLACEMENT_ENV = 'SPIKE_NEXUS_WORKER_REPLACEMENT';
/**
 * The longest a replacement waits for its key before listening anyway (its connections then
 * answer `state_not_ready` until the key is in, as any Nexus does while it recovers).
 */
export const REPLACEMENT_LISTEN_WAIT_MS = 30_000;

/** A worker that served this long before dying restarts without accumulated backoff. */
const HEALTHY_MS = 30_000;
/** How long the primary waits for workers to stop on a signal before killing them. */
const STOP_GRACE_MS = 15_000;

/** Worker → primary: this worker listens. */
interface Listening { kind: 'spike-nexus-listening'; port: number; ops: string | null }

function isListening(m: unknown): m is Listening {
  return typeof m === 'object' && m !== null && (m as Listening).kind === 'spike-nexus-listening' &&
    typeof (m as Listening).port === 'number';
}

/** The worker id of this process (1-based), or undefined outside a worker. */
export function workerId(env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (!cluster.isWorker) return undefined;
  const n = Number.parseInt(env[WORKER_ENV] ?? '', 10);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** True in a worker forked to replace one that died (not at the first start). */
export function isReplacement(env: NodeJS.ProcessEnv = process.env): boolean {
  return workerId(env) !== undefined && env[REPLACEMENT_ENV] === '1';
}

/** `audit.log` → `audit.w2.log` (a name without extension gets `.w2` appended). */
export function workerAuditFile(file: string, id: number): string {
  const ext = path.extname(file);
  const stem = ext === '' ? file : file.slice(0, -ext.length);
  return `${stem}.w${id}${ext}`;
}

/** The configuration one worker runs with: its own audit file and operations port. */
export function workerConfig(cfg: NexusConfig, id: number): NexusConfig {
  return {
    ...cfg,
    ...(cfg.auditLog !== undefined && cfg.auditLog !== '-' ? { auditLog: workerAuditFile(cfg.auditLog, id) } : {}),
    ...(cfg.ops !== undefined && cfg.ops.port !== 0 ? { ops: { ...cfg.ops, port: cfg.ops.port + id - 1 } } : {}),
  };
}

/** Tells the primary this worker listens (no-op outside a worker). */
export function reportListening(port: number, ops: string | undefined): void {
  const m: Listening = { kind: 'spike-nexus-listening', port, ops: ops ?? null };
  process.send?.(m);
}

interface Slot {
  id: number;
  worker: Worker | undefined;
  startedAt: number;
  listened: boolean;
  restarts: number;
}

/**
 * Runs the primary: forks `cfg.workers` workers and supervises them until a signal. Resolves
 * with the exit code the process should end with.
 */
export function runPrimary(cfg: NexusConfig, logger: Logger, write: (line: string) => void = (l) => process.stderr.write(l)): Promise<number> {
  return new Promise((resolve) => {
    const slots: Slot[] = Array.from({ length: cfg.workers }, (_, i) => ({ id: i + 1, worker: undefined, startedAt: 0, listened: false, restarts: 0 }));
    let stopping = false;
    let announced = false;
    let othersForked = false;
    let exitCode = 0;
    let hard: NodeJS.Timeout | undefined;

    const alive = (): number => slots.filter((s) => s.worker !== undefined).length;
    const finishIfDone = (): void => {
      if (stopping && alive() === 0) {
        if (hard) clearTimeout(hard);
        resolve(exitCode);
      }
    };
    const stopAll = (code: number, why: string): void => {
      if (stopping) return;
      stopping = true;
      exitCode = code;
      logger.info({ reason: why, workers: alive() }, 'stopping workers');
      for (const s of slots) s.worker?.process.kill('SIGTERM');
      hard = setTimeout(() => {
        for (const s of slots) s.worker?.process.kill('SIGKILL');
      }, STOP_GRACE_MS);
      finishIfDone();
    };

    const fork = (slot: Slot, replacement = false): void => {
      const w = cluster.fork({ [WORKER_ENV]: String(slot.id), ...(replacement ? { [REPLACEMENT_ENV]: '1' } : {}) });
      slot.worker = w;
      slot.startedAt = Date.now();
      slot.listened = false;
      w.on('message', (m: unknown) => {
        if (!isListening(m) || slot.worker !== w) return;
        const first = !slot.listened;
        slot.listened = true;
        // Worker 1 starts alone: a setting or port that fails fails once, with one line.
        if (first && slot.id === 1 && !othersForked) {
          othersForked = true;
          for (const s of slots.slice(1)) fork(s);
        }
        if (m.ops !== null) write(`spike-nexus worker ${slot.id} operations listener on ${m.ops}\n`);
        if (!announced && slots.every((s) => s.listened)) {
          announced = true;
          write(`spike-nexus ready on port ${m.port} (${cfg.workers} workers)\n`);
        } else if (announced) logger.info({ worker: slot.id }, 'worker listening again');
      });
      w.on('exit', (code, signal) => {
        if (slot.worker !== w) return;
        slot.worker = undefined;
        if (stopping) return finishIfDone();
        logger.error({ worker: slot.id, code, signal }, 'worker exited');
        if (!slot.listened && !announced) return stopAll(1, 'a worker failed to start');
        if (Date.now() - slot.startedAt >= HEALTHY_MS) slot.restarts = 0;
        const wait = backoffDelay(slot.restarts++, { initialMs: 100, maxMs: 10_000 });
        setTimeout(() => {
          if (!stopping) fork(slot, true);
        }, wait);
      });
    };

    const onSignal = (sig: NodeJS.Signals): void => stopAll(0, sig);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    fork(slots[0]!);
  });
}

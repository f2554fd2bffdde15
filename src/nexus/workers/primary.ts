/**
 * Several cores (SPIKE_NEXUS_WORKERS > 1, sqlite or postgres): `node:cluster` with N worker
 * processes sharing the one mTLS listening socket, each accepting from it itself (the kernel
 * picks which worker takes a connection; not Node's round-robin through the primary, which
 * would queue a connection flood without bound before any worker's budget saw it). The primary
 * holds no key, opens no store and serves nothing itself.
 *
 * Every worker is a whole Nexus on the shared store, like several Nexus instances on one
 * database (docs/ha.md): it fetches its own SVID, recovers the root key from the Keepers
 * itself, checks the stored policy generation before every policy decision (so a policy
 * deleted through one worker denies at the very next request on every worker) and advances the
 * one commit anchor. What is per worker: the audit file (one hash chain per writer:
 * `audit.log` becomes `audit.w1.log`, `audit.w2.log`, …), the operations listener (worker i on
 * the configured port + i − 1) and the connection budgets.
 *
 * Start: worker 1 first, the others once it listens, so a bad setting or a taken port fails
 * once, with one line; `spike-nexus ready on port N (W workers)` once every worker listens.
 * A worker that stops is replaced (backoff); the replacement listens only once it holds the
 * root key and the policies, unless no other worker listens (then at once). A slot that keeps
 * failing young (MAX_QUICK_RESTARTS in a row) stops the whole Nexus with exit 1. A worker that
 * rotated the root key or accepted a rollback asks for the others to be replaced: their
 * per-process key state is stale, and replacements recover it from the Keepers. SIGTERM/SIGINT
 * stop every worker (exit 1 if one had to be killed or failed to stop cleanly). A worker whose
 * primary is gone exits at once (Node closes the IPC channel), so a `kill -9` of the primary
 * leaves no worker behind.
 */
import cluster, { type Worker } from 'node:cluster';
import type { NexusConfig } from '../../config/index.js';
import { backoffDelay, type Logger } from '../../lib/index.js';
import { workerMessage, type ListenNow } from './messages.js';
import { REPLACEMENT_ENV, WORKER_ENV } from './worker.js';

/** A worker that served this long before stopping restarts without accumulated backoff. */
const HEALTHY_MS = 30_000;
/** Replacements of one slot in a row that each died younger than HEALTHY_MS: then stop. */
const MAX_QUICK_RESTARTS = 5;
/** How long the primary waits for workers to stop on a signal before killing them. */
const STOP_GRACE_MS = 15_000;

interface Slot {
  id: number;
  worker: Worker | undefined;
  startedAt: number;
  /** Listened at least once (this incarnation). */
  listened: boolean;
  /** Listens now. */
  listening: boolean;
  /** A replacement waiting for its key. */
  holding: boolean;
  /** Stopped on purpose (recycled): replaced at once, not counted as a failure. */
  recycling: boolean;
  restarts: number;
}

/**
 * Runs the primary: forks `cfg.workers` workers and supervises them until a signal. Resolves
 * with the exit code the process should end with.
 */
export function runPrimary(cfg: NexusConfig, logger: Logger, write: (line: string) => void = (l) => process.stderr.write(l)): Promise<number> {
  return new Promise((resolve) => {
    const slots: Slot[] = Array.from({ length: cfg.workers }, (_, i) => ({
      id: i + 1, worker: undefined, startedAt: 0, listened: false, listening: false, holding: false, recycling: false, restarts: 0,
    }));
    let stopping = false;
    let announced = false;
    let othersForked = false;
    let exitCode = 0;
    let hard: NodeJS.Timeout | undefined;
    const listenNow: ListenNow = { kind: 'spike-nexus-listen-now' };

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
        exitCode = 1;
        for (const s of slots) s.worker?.process.kill('SIGKILL');
      }, STOP_GRACE_MS);
      finishIfDone();
    };
    /** No worker listens: every replacement that waits for its key listens now. */
    const releaseHolders = (): void => {
      if (slots.some((s) => s.listening)) return;
      for (const s of slots) if (s.holding) s.worker?.send(listenNow);
    };

    const onListening = (slot: Slot, port: number, ops: string | null): void => {
      const first = !slot.listened;
      slot.listened = true;
      slot.listening = true;
      slot.holding = false;
      // Worker 1 starts alone: a setting or port that fails fails once, with one line.
      if (first && slot.id === 1 && !othersForked) {
        othersForked = true;
        for (const s of slots.slice(1)) fork(s);
      }
      if (ops !== null) write(`spike-nexus worker ${slot.id} operations listener on ${ops}\n`);
      if (!announced && slots.every((s) => s.listened)) {
        announced = true;
        write(`spike-nexus ready on port ${port} (${cfg.workers} workers)\n`);
      } else if (announced) logger.info({ worker: slot.id }, 'worker listening again');
    };

    /** Stops a worker to be replaced at once (not counted as a failure). */
    const recycle = (s: Slot): void => {
      if (s.worker === undefined || s.recycling) return;
      s.recycling = true;
      s.worker.process.kill('SIGTERM');
    };
    const recycleOthers = (from: Slot, why: string): void => {
      logger.info({ worker: from.id, reason: why }, 'replacing the other workers');
      for (const s of slots) if (s !== from) recycle(s);
    };
    // A worker that asks to be replaced while young (it turned stale again at once) waits
    // with the same backoff as a failing one: never a tight loop of forks and key recoveries.
    const replace = (slot: Slot, why: string): void => {
      logger.info({ worker: slot.id, reason: why }, 'replacing a worker');
      const w = slot.worker;
      if (Date.now() - slot.startedAt >= HEALTHY_MS) return recycle(slot);
      setTimeout(() => {
        if (!stopping && slot.worker === w) recycle(slot);
      }, backoffDelay(slot.restarts++, { initialMs: 100, maxMs: 10_000 })).unref();
    };

    const onExit = (slot: Slot, code: number | null, signal: NodeJS.Signals | null): void => {
      slot.worker = undefined;
      slot.listening = false;
      slot.holding = false;
      if (stopping) {
        if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGINT') exitCode = 1;
        return finishIfDone();
      }
      releaseHolders();
      if (slot.recycling) {
        slot.recycling = false;
        fork(slot, true);
        return;
      }
      logger.error({ worker: slot.id, code, signal }, 'worker exited');
      if (!slot.listened && !announced) {
        // A worker stopped by the terminal's Ctrl-C (the whole process group) is no failure.
        const interrupted = code === 0 || signal === 'SIGINT' || signal === 'SIGTERM';
        return stopAll(interrupted ? 0 : 1, interrupted ? 'interrupted during start' : 'a worker failed to start');
      }
      if (Date.now() - slot.startedAt >= HEALTHY_MS) slot.restarts = 0;
      if (slot.restarts >= MAX_QUICK_RESTARTS) return stopAll(1, `worker ${slot.id} keeps failing`);
      const wait = backoffDelay(slot.restarts++, { initialMs: 100, maxMs: 10_000 });
      setTimeout(() => {
        if (!stopping) fork(slot, true);
      }, wait);
    };

    const fork = (slot: Slot, replacement = false): void => {
      const w = cluster.fork({ [WORKER_ENV]: String(slot.id), ...(replacement ? { [REPLACEMENT_ENV]: '1' } : {}) });
      slot.worker = w;
      slot.startedAt = Date.now();
      slot.listened = false;
      w.on('message', (raw: unknown) => {
        const m = workerMessage(raw);
        if (m === undefined || slot.worker !== w) return;
        if (m.kind === 'spike-nexus-listening') onListening(slot, m.port, m.ops);
        else if (m.kind === 'spike-nexus-holding') {
          slot.holding = true;
          if (!slots.some((s) => s !== slot && s.listening)) w.send(listenNow);
        } else if (m.kind === 'spike-nexus-replace-me') replace(slot, m.why);
        else recycleOthers(slot, m.why);
      });
      w.on('exit', (code, signal) => {
        if (slot.worker === w) onExit(slot, code, signal as NodeJS.Signals | null);
      });
    };

    // Each worker accepts from the shared socket itself (not round-robin through the primary):
    // a connection flood then meets every worker's own connection budgets at accept, as with
    // one process, instead of queueing without bound in the primary.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    const onSignal = (sig: NodeJS.Signals): void => stopAll(0, sig);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    fork(slots[0]!);
  });
}

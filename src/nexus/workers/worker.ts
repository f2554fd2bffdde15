/**
 * The worker side of several cores (primary.ts): which worker this process is, the
 * configuration it runs with, and what it tells the primary.
 */
import cluster from 'node:cluster';
import path from 'node:path';
import type { NexusConfig } from '../../config/index.js';
import { isListenNow, type Holding, type Listening, type RecycleOthers, type ReplaceMe } from './messages.js';

/** Names the worker (1-based) in a worker's environment; unset in the primary. */
export const WORKER_ENV = 'SPIKE_NEXUS_WORKER_ID';
/** Set in a worker that replaces one that stopped: it listens only once it holds the key. */
export const REPLACEMENT_ENV = 'SPIKE_NEXUS_WORKER_REPLACEMENT';

/** The worker id of this process (1-based), or undefined outside a worker. */
export function workerId(env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (!cluster.isWorker) return undefined;
  const n = Number.parseInt(env[WORKER_ENV] ?? '', 10);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** True in a worker forked to replace one that stopped (not at the first start). */
export function isReplacement(env: NodeJS.ProcessEnv = process.env): boolean {
  return workerId(env) !== undefined && env[REPLACEMENT_ENV] === '1';
}

/** `audit.log` → `audit.w2.log` (a name without extension gets `.w2` appended). */
export function workerAuditFile(file: string, id: number): string {
  const ext = path.extname(file);
  const stem = ext === '' ? file : file.slice(0, -ext.length);
  return `${stem}.w${id}${ext}`;
}

/**
 * The configuration one worker runs with: its own audit file and operations port; the
 * scheduled share refresh runs in worker 1 only (one refresh per interval, not one per worker).
 */
export function workerConfig(cfg: NexusConfig, id: number): NexusConfig {
  return {
    ...cfg,
    ...(id > 1 ? { shareRefreshIntervalMs: 0 } : {}),
    ...(cfg.auditLog !== undefined && cfg.auditLog !== '-' ? { auditLog: workerAuditFile(cfg.auditLog, id) } : {}),
    ...(cfg.ops !== undefined ? { ops: { ...cfg.ops, port: cfg.ops.port + id - 1 } } : {}),
  };
}

/** Tells the primary this worker listens (no-op outside a worker). */
export function reportListening(port: number, ops: string | undefined): void {
  const m: Listening = { kind: 'spike-nexus-listening', port, ops: ops ?? null };
  process.send?.(m);
}

/**
 * A replacement's wait before it listens: until `servable()` (root key and policies in), or
 * until the primary answers that no other worker listens (then it listens at once and answers
 * `state_not_ready` until its key is in, as a lone Nexus does).
 */
export function replacementTurn(servable: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      clearInterval(poll);
      process.off('message', onMessage);
      resolve();
    };
    const onMessage = (m: unknown): void => {
      if (isListenNow(m)) finish();
    };
    process.on('message', onMessage);
    const poll = setInterval(() => {
      if (servable()) finish();
    }, 50);
    const hello: Holding = { kind: 'spike-nexus-holding' };
    process.send?.(hello);
  });
}

/** Asks the primary to replace this worker (no-op outside a worker). */
export function replaceMe(why: string): void {
  const m: ReplaceMe = { kind: 'spike-nexus-replace-me', why };
  process.send?.(m);
}

/** Asks the primary to replace every other worker (no-op outside a worker). */
export function recycleOthers(why: string): void {
  const m: RecycleOthers = { kind: 'spike-nexus-recycle-others', why };
  process.send?.(m);
}

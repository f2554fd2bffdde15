/**
 * The messages between the primary and its workers (over node:cluster's IPC channel). Nothing
 * secret ever crosses it: ports, addresses and reasons only.
 */

/** Worker → primary: this worker listens on the shared port. */
export interface Listening { kind: 'spike-nexus-listening'; port: number; ops: string | null }
/** Worker → primary: a replacement waits for its key before listening. */
export interface Holding { kind: 'spike-nexus-holding' }
/**
 * Worker → primary: an operator action here (root-key rotation, accepted rollback) left every
 * other worker with stale per-process state; replace them (they recover from the Keepers).
 */
export interface RecycleOthers { kind: 'spike-nexus-recycle-others'; why: string }
/** Worker → primary: this worker's key state is stale (another worker rotated the root key); replace it. */
export interface ReplaceMe { kind: 'spike-nexus-replace-me'; why: string }
/** Primary → worker: no other worker listens; listen now, ready or not. */
export interface ListenNow { kind: 'spike-nexus-listen-now' }

export type WorkerMessage = Listening | Holding | RecycleOthers | ReplaceMe;

/** A well-formed worker message, or undefined. */
export function workerMessage(m: unknown): WorkerMessage | undefined {
  if (typeof m !== 'object' || m === null) return undefined;
  const x = m as { kind?: unknown; port?: unknown; ops?: unknown; why?: unknown };
  if (x.kind === 'spike-nexus-listening') {
    return typeof x.port === 'number' && (x.ops === null || typeof x.ops === 'string') ? { kind: x.kind, port: x.port, ops: x.ops } : undefined;
  }
  if (x.kind === 'spike-nexus-holding') return { kind: x.kind };
  if (x.kind === 'spike-nexus-recycle-others' || x.kind === 'spike-nexus-replace-me') {
    return typeof x.why === 'string' ? { kind: x.kind, why: x.why.slice(0, 64) } : undefined;
  }
  return undefined;
}

export function isListenNow(m: unknown): m is ListenNow {
  return typeof m === 'object' && m !== null && (m as ListenNow).kind === 'spike-nexus-listen-now';
}

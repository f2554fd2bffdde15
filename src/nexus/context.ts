/**
 * Everything a Nexus route module needs, built once at start-up by server.ts. Route
 * modules (routes/*.ts) are functions `(ctx) => Route[]`; the route table is their union.
 */
import type { Recognisers } from '../protocol/index.js';
import type { Route } from '../http/index.js';
import type { NexusConfig } from '../config/index.js';
import type { Logger } from '../lib/index.js';
import type { Store } from '../store/index.js';
import type { NexusAuthorizer, NexusGuards } from './authz.js';
import type { KeyState } from './keys/state.js';
import type { DecisionPacer, PolicyEngine, PolicySync } from './policy/index.js';
import type { KeeperSync } from './keys/recovery.js';
import type { SharingMover } from './keys/move.js';
import type { RootRotation } from './keys/rotation.js';
import type { AuditEvents } from './audit.js';
import type { RollbackGuard } from './anchor/index.js';

export interface NexusContext {
  readonly cfg: NexusConfig;
  readonly store: Store;
  readonly keys: KeyState;
  readonly ids: Recognisers;
  readonly engine: PolicyEngine;
  /** Paces costly policy decisions over turns of the event loop (FI-13). */
  readonly pacer: DecisionPacer;
  readonly authz: NexusAuthorizer;
  readonly guards: NexusGuards;
  readonly policies: PolicySync;
  readonly logger: Logger;
  /** Lifecycle events for the audit trail (a no-op when SPIKE_NEXUS_AUDIT_LOG is unset). */
  readonly audit: AuditEvents;
  /** Keeper recovery/re-push (absent in memory mode). */
  readonly sync: KeeperSync | undefined;
  /** Rollback detection (absent where nothing persists: memory, lite). */
  readonly rollback?: RollbackGuard | undefined;
  /** Sharing moves: share refresh, Keeper set change (absent in memory mode). */
  readonly mover?: SharingMover;
  /** Root-key rotation and its background re-encryption (absent in memory and lite modes). */
  readonly rotation?: RootRotation;
  /** Counts bytes through the cipher API (metrics; absent when the operations listener is off). */
  readonly onCipherBytes?: (direction: 'in' | 'out', bytes: number) => void;
  /**
   * Several workers (SPIKE_NEXUS_WORKERS): called after an operator action that leaves the
   * other workers' per-process key state stale (root rotation, accepted rollback); they are
   * replaced and recover from the Keepers.
   */
  readonly othersStale?: (why: 'root_rotation' | 'rollback_accepted') => void;
}

export type RouteModule = (ctx: NexusContext) => Route[];

/**
 * Nexus's root-key custody: the in-memory key state (`state.ts`), the public sharing record
 * and the one place a rebuilt key is accepted (`sharing.ts`), and recovery of the key from
 * the Keepers with re-push of their shares (`recovery.ts`).
 */
export * from './state.js';
export * from './sharing.js';
export * from './recovery.js';
export { KeeperProbe } from './probe.js';

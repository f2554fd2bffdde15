/**
 * Nexus's root-key custody: the in-memory key state (`state.ts`), the public sharing record
 * and the one place a rebuilt key is accepted (`sharing.ts`), recovery of the key from
 * the Keepers with re-push of their shares (`recovery.ts`, the verified shares and the
 * rebuild in `recovery-shares.ts`), the two-phase sharing move (share refresh, Keeper set
 * change: `move.ts`, its Keeper pushes in `move-keepers.ts`, its pending record in `pending.ts`),
 * root-key rotation (`rotation.ts`) and the cipher API's keys by version (`cipher-keys.ts`).
 */
export * from './state.js';
export * from './sharing.js';
export * from './recovery.js';
export { KeeperProbe } from './probe.js';
export * from './pending.js';
export * from './move.js';
export * from './rotation.js';
export * from './cipher-keys.js';

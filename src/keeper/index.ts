/**
 * The Keeper: a tiny mTLS server that holds one share in memory. Outside code (Nexus,
 * Bootstrap) uses its client and the epoch Bootstrap may seed.
 */
export { KeeperCallError, KeeperClient, keeperFailureFields } from './client.js';
export { BOOTSTRAP_EPOCH, KeeperSlotError, ShareSlot } from './slot.js';
export { type KeeperStatus } from './status.js';

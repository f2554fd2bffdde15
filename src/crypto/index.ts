/**
 * The crypto core (D5–D8): root key, Shamir over the P-256 scalar
 * field with Feldman commitments, purpose keys, bound AEAD envelopes, key check, path
 * HMAC, SPIKE share encodings and zeroing helpers. See each module's header for which
 * values are secret and where they are wiped.
 *
 * Two doors: this one (everything) and `curve-free.ts` (everything that loads no curve code,
 * re-exported here whole), for importers that must not evaluate @noble/curves.
 */
export * from './curve-free.js';
export { RootKey } from './rootkey.js';
export { splitSecret, combineShares, interpolateShare, spikeCompatibleShares } from './shamir.js';
export { Commitments } from './feldman.js';

/**
 * The crypto core (D5–D8): root key, Shamir over the P-256 scalar
 * field with Feldman commitments, purpose keys, bound AEAD envelopes, key check, path
 * HMAC, SPIKE share encodings and zeroing helpers. See each module's header for which
 * values are secret and where they are wiped.
 */
export { CryptoError } from './errors.js';
export { wipe } from './wipe.js';
export { systemRandom, type RandomSource } from './random.js';
export { RootKey } from './rootkey.js';
export { type Share, MAX_SHARE_ID, SHARE_VALUE_BYTES, wipeShare } from './share.js';
export { splitSecret, combineShares, interpolateShare, spikeCompatibleShares } from './shamir.js';
export { Commitments } from './feldman.js';
export { PURPOSES, derivePurposeKey, hkdfSha256 } from './purpose.js';
export { Aead, aad, envelopeKeyId, gcmSeal, gcmOpen, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, AEAD_MIN_ENVELOPE_BYTES } from './aead.js';
export { makeKeyCheck, checkKeyCheck } from './kcv.js';
export { PathHasher } from './hmac.js';
export {
  shareValueToJsonArray, shareValueFromJsonArray, formatShardJsonArray, formatShardBody, formatRestoreBody,
  formatRecoveryFile, parseRecoveryFile, recoveryFileName, sharesToRecoverMap, sharesFromRecoverMap, formatRecoverBody,
} from './encoding.js';

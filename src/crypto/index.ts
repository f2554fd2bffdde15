/**
 * The crypto core (D5–D8): root key, Shamir over the P-256 scalar
 * field with Feldman commitments, purpose keys, bound AEAD envelopes, key check, path
 * HMAC, SPIKE share encodings and zeroing helpers. See each module's header for which
 * values are secret and where they are wiped.
 */
export { CryptoError, CRYPTO_ERROR_MESSAGES, type CryptoErrorCode } from './errors.js';
export { wipe, withWiped } from './wipe.js';
export { systemRandom, type RandomSource } from './random.js';
export { RootKey } from './rootkey.js';
export { type Share, MAX_SHARE_ID, SHARE_VALUE_BYTES, isValidShareId, shareScalar, wipeShare } from './share.js';
export {
  type SplitResult, assertShamirParams, splitSecret, combineShares, interpolateShare, spikeCompatibleShares,
} from './shamir.js';
export { Commitments } from './feldman.js';
export { type Purpose, PURPOSES, PURPOSE_KEY_BYTES, derivePurposeKey, hkdfSha256 } from './purpose.js';
export {
  Aead, aad, envelopeKeyId, gcmSeal, gcmOpen, AEAD_FORMAT_VERSION, AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES,
  AEAD_HEADER_BYTES, AEAD_MIN_ENVELOPE_BYTES,
} from './aead.js';
export { makeKeyCheck, checkKeyCheck, KCV_KEY_ID } from './kcv.js';
export { PathHasher } from './hmac.js';
export {
  shareValueToJsonArray, shareValueFromJsonArray, formatShardJsonArray, formatShardBody, formatRestoreBody,
  formatRecoveryFile, parseRecoveryFile, recoveryFileName, sharesToRecoverMap, sharesFromRecoverMap, formatRecoverBody,
} from './encoding.js';

/**
 * The crypto core's second door: every part of src/crypto that loads no curve code
 * (@noble/curves, which field.ts imports): errors, zeroing, the random source, share shapes
 * and the SPIKE share encodings, purpose keys, AEAD envelopes, key check and path HMAC
 * (these take a `RootKey` as a type only). Importers that never do curve arithmetic (the wire
 * contract's curve-free door, so the SDK client and every `spike` call) enter here; evaluating
 * noble costs each process its module code and a Web Crypto probe (issue 15). index.ts
 * re-exports all of this and adds the curve code: the root key, Shamir and Feldman.
 */
export { CryptoError } from './errors.js';
export { wasFreed, wipe, wipeAndFree } from './wipe.js';
export { systemRandom, type RandomSource } from './random.js';
export { type Share, MAX_SHARE_ID, SHARE_VALUE_BYTES, wipeShare } from './share.js';
export { PURPOSES, derivePurposeKey, hkdfSha256 } from './purpose.js';
export { Aead, aad, envelopeKeyId, gcmSeal, gcmOpen, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, AEAD_MIN_ENVELOPE_BYTES } from './aead.js';
export { makeKeyCheck, checkKeyCheck } from './kcv.js';
export { PathHasher } from './hmac.js';
export {
  shareValueToJsonArray, shareValueFromJsonArray, formatShardJsonArray, formatShardBody, formatRestoreBody,
  formatRecoveryFile, parseRecoveryFile, recoveryFileName, sharesToRecoverMap, sharesFromRecoverMap, formatRecoverBody,
} from './encoding.js';

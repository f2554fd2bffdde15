/**
 * Typed errors of the crypto core.
 *
 * Every failure in `src/crypto/` is a `CryptoError` with a stable `code` and a fixed
 * message chosen by that code alone: no message ever contains an input value, a key
 * byte, a share, an id or a length taken from the input. In particular every AEAD
 * failure (wrong key, wrong key id, wrong AAD, truncated or tampered envelope, bad
 * version byte) is the single code `crypto_decrypt_failed`.
 */
import { SpikeError } from '../lib/index.js';

/** Stable codes and their fixed messages. */
const CRYPTO_ERROR_MESSAGES = {
  crypto_decrypt_failed: 'decryption failed',
  crypto_bad_key: 'invalid key material',
  crypto_bad_encoding: 'invalid encoding',
  crypto_bad_input: 'invalid argument',
  crypto_key_destroyed: 'key has been destroyed',
  shamir_invalid_share: 'invalid share',
  shamir_duplicate_id: 'duplicate share id',
  shamir_too_few_shares: 'not enough shares to reconstruct',
  shamir_bad_params: 'invalid sharing parameters',
  shamir_verify_failed: 'share verification failed',
  shamir_inconsistent_shares: 'shares are inconsistent',
  feldman_bad_commitments: 'invalid commitments',
} as const;

type CryptoErrorCode = keyof typeof CRYPTO_ERROR_MESSAGES;

export class CryptoError extends SpikeError {
  declare readonly code: CryptoErrorCode;
  constructor(code: CryptoErrorCode, options?: { cause?: unknown }) {
    super(code, CRYPTO_ERROR_MESSAGES[code], options);
  }
}

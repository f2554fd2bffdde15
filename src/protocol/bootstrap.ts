/**
 * The Bootstrap-facing Nexus routes: the verify probe (`/v1/bootstrap/verify`) and the
 * additive run-once check (`/v1/bootstrap/status`).
 *
 * The probe is AES-GCM under the `bootstrap-verify/v1` purpose key (D7) with associated data
 * {@link VERIFY_AAD}, never the storage or cipher key, so the verify route decrypts nothing
 * else; Nexus answers the hex SHA-256 of the plaintext.
 */
import { type Infer, s } from '../http/index.js';
import { LIMITS } from './limits.js';

/** Associated data of the verify probe (binds the ciphertext to its purpose). */
export const VERIFY_AAD = Buffer.from('spike/bootstrap-verify/v1');

export const BootstrapVerifyRequest = s.object({
  nonce: s.base64({ exactBytes: LIMITS.nonceBytes }),
  ciphertext: s.base64(),
});
export type BootstrapVerifyRequest = Infer<typeof BootstrapVerifyRequest>;
export type BootstrapVerifyResponse = { hash: string; err?: string };

/** additive: `{}` → whether the store already holds a key-check record. */
export const BootstrapStatusRequest = s.empty();
export type BootstrapStatusRequest = Infer<typeof BootstrapStatusRequest>;
export type BootstrapStatusResponse = { initialized: boolean };

/** Zero-valued error body of the verify route (`code` is the wire error code). */
export const BOOTSTRAP_ERROR_SHAPES = {
  verify: (code: string) => ({ hash: '', err: code }),
} as const;

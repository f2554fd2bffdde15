/**
 * The cipher routes (`/v1/cipher/encrypt`, `/v1/cipher/decrypt`): the content type that
 * selects stream mode, and the JSON mode's request schemas, response types and zero-valued
 * error shapes (the stream mode has no JSON body). `[]byte` fields are standard base64.
 */
import { type Infer, s } from '../http/index.js';

/** Content type that selects the cipher stream mode (exact match). */
export { OCTET_STREAM } from '../http/index.js';

export const CipherEncryptRequest = s.object({
  plaintext: s.optional(s.nullable(s.base64(), Buffer.alloc(0)), Buffer.alloc(0)),
  algorithm: s.optional(s.string(), ''),
});
export type CipherEncryptRequest = Infer<typeof CipherEncryptRequest>;
export type CipherEncryptResponse = {
  version: number;
  nonce: Uint8Array | null;
  ciphertext: Uint8Array | null;
  err?: string;
};

export const CipherDecryptRequest = s.object({
  version: s.optional(s.int({ min: 0, max: 255, unsigned: true }), 0), // Go: `byte`
  nonce: s.optional(s.nullable(s.base64(), Buffer.alloc(0)), Buffer.alloc(0)),
  ciphertext: s.optional(s.nullable(s.base64(), Buffer.alloc(0)), Buffer.alloc(0)),
  algorithm: s.optional(s.string(), ''),
});
export type CipherDecryptRequest = Infer<typeof CipherDecryptRequest>;
export type CipherDecryptResponse = { plaintext: Uint8Array | null; err?: string };

/** Zero-valued error bodies of the JSON cipher mode (`code` is the wire error code). */
export const CIPHER_ERROR_SHAPES = {
  encrypt: (code: string) => ({ version: 0, nonce: null, ciphertext: null, err: code }),
  decrypt: (code: string) => ({ plaintext: null, err: code }),
} as const;

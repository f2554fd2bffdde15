/**
 * Size limits of request fields, in one place. The grammar lengths are SPIKE's; the entries
 * of {@link LIMITS} and the share-epoch cap are this project's additive bounds (SPIKE has
 * none). The share-id cap is `MAX_SHARE_ID` of `src/crypto`.
 */
import { AEAD_NONCE_BYTES } from '../crypto/curve-free.js';

/** Secret path: 1..500 characters. */
export const MAX_PATH_LENGTH = 500;
/** Secret value key names and policy names: 1..250 characters. */
export const MAX_NAME_LENGTH = 250;
/** Policy `pathPattern`: 1..500 characters. */
export const MAX_PATH_PATTERN_LENGTH = 500;
/** SPIKE puts no bound on the SPIFFE-ID pattern; we cap it (bounded compile cost). */
export const MAX_SPIFFEID_PATTERN_LENGTH = 2048;

export const LIMITS = {
  /** entries in `values` (the JSON member cap is 1,000 as well) */
  maxValues: 1000,
  /** versions listed in one delete/undelete/destroy (SEC-10) */
  maxVersionsPerCall: 100,
  /** additive per-secret max versions */
  maxMaxVersions: 10_000,
  maxCustomMetadata: 64,
  maxCustomMetadataValue: 1024,
  /** entries in a policy's `permissions` list (duplicates allowed, as in SPIKE) */
  maxPermissionEntries: 16,
  /** keys in one page of an additive paged secret list (`limit`) */
  maxListPage: 10_000,
  /** nonce size of AES-GCM */
  nonceBytes: AEAD_NONCE_BYTES,
} as const;

/**
 * ours: the largest streamed (octet-stream) cipher plaintext, 64 MiB — the default and the
 * highest accepted `SPIKE_NEXUS_CRYPTO_MAX_STREAM_SIZE`. One constant for both directions: a
 * stream decrypt buffers its ciphertext (one GCM tag at the end), so encrypt never makes a
 * ciphertext that decrypt would refuse; the CLI collects no more than this (plus an envelope).
 */
export const MAX_CIPHER_STREAM_BYTES = 64 << 20;

/**
 * Largest share epoch accepted from anyone (on the wire and in the Keeper slot): one refresh
 * a second for over a century stays below it, and it keeps epochs far from the
 * float-precision edge.
 */
export const MAX_SHARE_EPOCH = 2 ** 32 - 1;

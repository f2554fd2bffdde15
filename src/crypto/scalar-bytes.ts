/**
 * Length of a P-256 scalar in bytes, big-endian: a share value and a root key are one. Kept
 * apart from field.ts, which loads the curve code (@noble/curves), so that share shapes and
 * encodings, and the wire contract built on them, can name the length without loading it
 * (issue 15: every `spike` call).
 */
export const SCALAR_BYTES = 32;

/**
 * Zeroing helpers.
 *
 * Secret buffers (root key copies, purpose keys, share values, HMAC/AES keys) are
 * overwritten with zeros as soon as they are no longer needed, normally in a `finally`.
 * JavaScript gives no guarantee that the engine did not copy the bytes elsewhere (e.g.
 * when Node hands a key to OpenSSL), and BigInt values cannot be wiped at all; zeroing
 * what we hold is still the cheapest defence against later heap disclosure.
 */

/** Overwrites every given buffer with zeros; `undefined`/`null` entries are skipped. */
export function wipe(...bufs: (Uint8Array | undefined | null)[]): void {
  for (const b of bufs) {
    if (b) b.fill(0);
  }
}

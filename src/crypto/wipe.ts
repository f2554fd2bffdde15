/**
 * Zeroing helpers.
 *
 * Secret buffers (root key copies, purpose keys, share values, HMAC/AES keys) are
 * overwritten with zeros as soon as they are no longer needed, normally in a `finally`.
 * JavaScript gives no guarantee that the engine did not copy the bytes elsewhere (e.g.
 * when Node hands a key to OpenSSL), and BigInt values cannot be wiped at all; zeroing
 * what we hold is still the cheapest defence against later heap disclosure.
 *
 * {@link wipeAndFree} also gives a large buffer's memory back at once. Node allocates every
 * request-body chunk and every cipher output as an ArrayBuffer of its own, which V8 frees only
 * when a collection finds it dead, and V8 counts that memory as "external": about every 32 MiB
 * of it starts a full (mark-compact) collection. Nexus streaming 64 MiB through the cipher
 * allocated ~128 MiB of such buffers and ran four or more full collections per stream, a fifth
 * of its CPU. A buffer whose memory is handed back as soon as it has served never counts.
 */

/** Overwrites every given buffer with zeros; `undefined`/`null` and already freed entries are skipped. */
export function wipe(...bufs: (Uint8Array | undefined | null)[]): void {
  for (const b of bufs) {
    // A buffer freed by wipeAndFree has length 0; filling it would throw.
    if (b && b.byteLength !== 0) b.fill(0);
  }
}

/** Smallest buffer worth freeing early (Node's pooled small buffers are all smaller). */
export const FREE_MIN_BYTES = 4096;

/** ArrayBuffers {@link wipeAndFree} freed (see {@link wasFreed}). */
const freed = new WeakSet<ArrayBuffer>();

/** The closed port that takes freed buffers (made on first use). */
let drop: InstanceType<typeof MessagePort> | undefined;

/**
 * Zeroes `b`, then, when `b` spans the whole of an ArrayBuffer of at least
 * {@link FREE_MIN_BYTES}, frees that memory now: the ArrayBuffer is transferred into a message
 * port that is already closed, which detaches it (every view of it then has length 0) and lets
 * Node drop the message and its memory at once. Returns whether it was freed.
 *
 * Only for a buffer the caller owns outright: no other code may still read or write any view
 * of its ArrayBuffer (a chunk handed over by the body reader, a cipher's fresh output, a reply
 * chunk once written). A view of part of an ArrayBuffer (a slice of Node's shared pool, a
 * subarray) is only zeroed. Calling it again on a freed buffer does nothing.
 */
export function wipeAndFree(b: Uint8Array): boolean {
  if (b.byteLength === 0) return false;
  b.fill(0);
  const ab = b.buffer;
  if (b.byteLength < FREE_MIN_BYTES || b.byteOffset !== 0 || !(ab instanceof ArrayBuffer) || ab.byteLength !== b.byteLength) return false;
  try {
    drop ??= closedPort();
    drop.postMessage(null, [ab]);
  } catch {
    return false; // not transferable (e.g. marked so by Node): zeroed, freed by the collector later
  }
  if (ab.byteLength !== 0) return false;
  freed.add(ab);
  return true;
}

/**
 * Whether `b` is a view of memory {@link wipeAndFree} has freed (it then reads as empty): a
 * chunk used after it was handed over, which must fail loudly rather than pass as empty.
 */
export function wasFreed(b: Uint8Array): boolean {
  return b.byteLength === 0 && b.buffer instanceof ArrayBuffer && freed.has(b.buffer);
}

function closedPort(): InstanceType<typeof MessagePort> {
  const { port1 } = new MessageChannel();
  port1.close();
  return port1;
}

/**
 * Stream decrypt (`POST /v1/cipher/decrypt`, `application/octet-stream`): SPIKE's framing
 * `0x01 ‖ nonce(12) ‖ ct ‖ tag(16)` in, raw plaintext out. See cipher.ts for the formats,
 * limits and error codes; this module holds the part that buffers.
 *
 * SPIKE's format has one GCM tag at the end, so no plaintext may leave before the whole body
 * was read and the tag checked. We buffer the **ciphertext** (never the plaintext): pass 1
 * checks the tag (its plaintext is zeroed chunk by chunk), pass 2 decrypts the same held bytes
 * again and streams them out with back-pressure. Memory per request is the ciphertext plus one
 * working chunk, reserved from the cipher budget (cipher-budget.ts) before it is held: the
 * declared `Content-Length` up front (one pre-sized buffer), or chunk by chunk when the body is
 * chunked (the chunks are kept as they came, no concatenating copy). The held bytes are zeroed
 * and the reservation returned when the request ends in any way: an error before the reply
 * (`finally` below), the reply written out, or the reply stopped (client gone, socket
 * destroyed by the inactivity timeout: the router stops iterating, `releasingIterable` runs).
 */
import { createDecipheriv } from 'node:crypto';
import { PlainTextError, REASON, badRequest, payloadTooLarge } from '../../api/errors.js';
import type { StreamContext, StreamReply } from '../../api/router.js';
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, wipe } from '../../crypto/index.js';
import { type ByteBudget, type Reservation, releasingIterable } from './cipher-budget.js';

/** Working chunk of the decrypt passes (also the per-request slack reserved on top of the body). */
export const DECRYPT_CHUNK_BYTES = 64 * 1024;
const HEADER = 1 + AEAD_NONCE_BYTES;

/** The body as received: one pre-sized buffer, or the chunks as they arrived. */
export class HeldBytes {
  readonly #parts: Buffer[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(b: Buffer): void {
    this.#parts.push(b);
    this.#length += b.length;
  }

  /** Views (no copies) of at most `max` bytes covering `[start, end)`. */
  *views(start: number, end: number, max: number): Generator<Buffer> {
    let base = 0;
    for (const p of this.#parts) {
      const from = Math.max(start, base);
      const to = Math.min(end, base + p.length);
      for (let o = from; o < to; o += max) yield p.subarray(o - base, Math.min(to, o + max) - base);
      base += p.length;
      if (base >= end) return;
    }
  }

  /** A copy of `[start, end)` (for the small header and tag fields). */
  copy(start: number, end: number): Buffer {
    return Buffer.concat([...this.views(start, end, end - start || 1)], end - start);
  }

  /** Zeroes and drops everything. */
  wipe(): void {
    for (const p of this.#parts) p.fill(0);
    this.#parts.length = 0;
    this.#length = 0;
  }
}

/**
 * Reads the body into `held`. With a declared length the reservation already covers it and
 * one buffer of that size is filled; otherwise each chunk is reserved before it is kept (over
 * budget: 503, over the whole budget: 400). `cap` is the body limit (the router checks it
 * too). On error the caller wipes `held`; the chunk in hand is zeroed here.
 */
export async function collectBody(
  body: AsyncIterable<Buffer>, declared: number | undefined, cap: number, res: Reservation, held: HeldBytes,
): Promise<void> {
  if (declared !== undefined) {
    const out = Buffer.alloc(declared);
    held.push(out);
    let off = 0;
    for await (const c of body) {
      try {
        if (off + c.length > declared) throw payloadTooLarge();
        c.copy(out, off);
        off += c.length;
      } finally {
        c.fill(0);
      }
    }
    // Unreachable over HTTP/1.1 (a short body is a read error); never decrypt the zero tail.
    if (off !== declared) throw badRequest(REASON.readFailed, 'failed to read request body', { closeConnection: true });
    return;
  }
  for await (const c of body) {
    try {
      if (held.length + c.length > cap) throw payloadTooLarge();
      res.grow(c.length);
    } catch (e) {
      c.fill(0);
      throw e;
    }
    held.push(c);
  }
}

export interface StreamDecryptOptions {
  budget: ByteBudget;
  /** Largest body (framing included). */
  cap: number;
  /** The only accepted version byte. */
  version: number;
  /** A copy of the key (wiped here), or throws the `PlainTextError` to answer. */
  key(): Uint8Array;
  /** GCM associated data of `version`. */
  aad(version: number): Uint8Array;
}

const decryptFailed = (): PlainTextError => new PlainTextError(400, 'decryption failed', { reason: 'decryption_failed' });

/** Handles one stream decrypt (see the module comment). */
export async function streamDecrypt(sctx: StreamContext, o: StreamDecryptOptions): Promise<StreamReply> {
  const declared = sctx.declaredLength;
  const res = o.budget.reserve((declared ?? 0) + DECRYPT_CHUNK_BYTES);
  const held = new HeldBytes();
  let handedOver = false;
  let key: Uint8Array | undefined;
  try {
    key = o.key();
    await collectBody(sctx.body(), declared, o.cap, res, held);
    const n = held.length;
    if (n < 1) throw new PlainTextError(400, 'crypto_failed_to_read_version', { reason: 'short_body' });
    const version = held.copy(0, 1)[0]!;
    if (version !== o.version) throw new PlainTextError(400, 'crypto_unsupported_version', { reason: 'unsupported_version' });
    if (n < HEADER) throw new PlainTextError(400, 'crypto_failed_to_read_nonce', { reason: 'short_body' });
    if (n < HEADER + AEAD_TAG_BYTES) throw decryptFailed();
    const nonce = held.copy(1, HEADER);
    const tag = held.copy(n - AEAD_TAG_BYTES, n);
    const ad = o.aad(version);
    // Pass 1: check the tag; this pass's plaintext is zeroed and never leaves.
    const check = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
    check.setAAD(ad);
    check.setAuthTag(tag);
    try {
      for (const v of held.views(HEADER, n - AEAD_TAG_BYTES, DECRYPT_CHUNK_BYTES)) check.update(v).fill(0);
      check.final().fill(0);
    } catch {
      throw decryptFailed();
    }
    // Pass 2: the same (now authenticated, held) bytes again, streamed out.
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
    d.setAAD(ad);
    d.setAuthTag(tag);
    async function* plaintext(): AsyncGenerator<Uint8Array> {
      for (const v of held.views(HEADER, n - AEAD_TAG_BYTES, DECRYPT_CHUNK_BYTES)) yield d.update(v);
      yield d.final();
    }
    const chunks = releasingIterable(plaintext(), () => {
      held.wipe();
      res.release();
    });
    handedOver = true;
    return { kind: 'stream', chunks, length: n - HEADER - AEAD_TAG_BYTES };
  } finally {
    wipe(key);
    if (!handedOver) {
      held.wipe();
      res.release();
    }
  }
}

/**
 * Stream decrypt (`POST /v1/cipher/decrypt`, `application/octet-stream`): SPIKE's framing
 * `0x01 ‖ nonce(12) ‖ ct ‖ tag(16)` in, raw plaintext out. See cipher.ts for the formats,
 * limits and error codes; this module holds the part that buffers.
 *
 * SPIKE's format has one GCM tag at the end, so no plaintext may leave before the whole body
 * was read and the tag checked. We buffer the **ciphertext** (never the plaintext): pass 1
 * checks the tag (its plaintext is zeroed chunk by chunk), pass 2 decrypts the same held bytes
 * again and streams them out with back-pressure. Memory per request is the ciphertext plus one
 * working chunk, reserved from the cipher budget (cipher-budget.ts, under the caller's SPIFFE
 * ID) as it is held: each chunk as it arrives (kept as it came, no pre-sized buffer and no
 * concatenating copy), the working chunk once the body is in. A declared `Content-Length` is
 * checked against the cap and the whole budget before reading, but reserves nothing: a
 * request that sent only its headers holds no budget.
 *
 * The reply must be delivered within {@link replyDeadlineMs} (max(30 s, plaintext at
 * 1 MiB/s)): a client that reads it slowly — fast enough for the socket inactivity timeout
 * never to fire — would otherwise keep the ciphertext and its reservation for as long as it
 * likes. At the deadline the held bytes are zeroed and the reservation returned at once; the
 * reply stops there, and the connection is destroyed as soon as the router's writer asks for
 * the next chunk (the next time the client's socket drains; a client that reads nothing at all
 * meets the socket inactivity timeout instead).
 *
 * The held bytes are zeroed and the reservation returned when the request ends in any way: an
 * error before the reply (`finally` below), the reply written out, the reply stopped (client
 * gone, socket destroyed by the inactivity timeout: the router stops iterating,
 * `releasingIterable` runs) or the reply deadline.
 */
import { createDecipheriv } from 'node:crypto';
import { ApiError, ERR, PlainTextError, REASON, badRequest, payloadTooLarge } from '../../protocol/index.js';
import type { StreamContext, StreamReply } from '../../http/index.js';
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, wipe, wipeAndFree } from '../../crypto/index.js';
import { type ByteBudget, type Reservation, releasingIterable } from './cipher-budget.js';

/** Working chunk of the decrypt passes (also the per-request slack reserved on top of the body). */
export const DECRYPT_CHUNK_BYTES = 64 * 1024;
const HEADER = 1 + AEAD_NONCE_BYTES;

/** The body as received: the chunks as they arrived. */
class HeldBytes {
  readonly #parts: Buffer[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(b: Buffer): void {
    this.#parts.push(b);
    this.#length += b.length;
  }

  /** Views (no copies) of at most `max` bytes covering `[start, end)`; none once wiped. */
  *views(start: number, end: number, max: number): Generator<Buffer> {
    let base = 0;
    for (const p of this.#parts) {
      const from = Math.max(start, base);
      const to = Math.min(end, base + p.length);
      for (let o = from; o < to; o += max) {
        if (this.#parts.length === 0) return; // wiped meanwhile (reply deadline): its parts are freed
        yield p.subarray(o - base, Math.min(to, o + max) - base);
      }
      base += p.length;
      if (base >= end) return;
    }
  }

  /** A copy of `[start, end)` (for the small header and tag fields). */
  copy(start: number, end: number): Buffer {
    return Buffer.concat([...this.views(start, end, end - start || 1)], end - start);
  }

  /** Zeroes, frees and drops everything (the parts are the body reader's chunks, handed over). */
  wipe(): void {
    for (const p of this.#parts) wipeAndFree(p);
    this.#parts.length = 0;
    this.#length = 0;
  }
}

/**
 * Reads the body into `held`, reserving each chunk on `res` before it is kept (over the free
 * budget or the caller's share: 503; over the whole budget: 400). `declared` (checked by the
 * router against the cap) bounds the body when given; otherwise `cap` does (the router checks
 * it too). On error the caller wipes `held`; the chunk in hand is zeroed here.
 */
async function collectBody(
  body: AsyncIterable<Buffer>, declared: number | undefined, cap: number, res: Reservation, held: HeldBytes,
): Promise<void> {
  const max = declared ?? cap;
  for await (const c of body) {
    try {
      if (held.length + c.length > max) throw payloadTooLarge();
      res.grow(c.length);
    } catch (e) {
      c.fill(0);
      throw e;
    }
    held.push(c);
  }
  // Unreachable over HTTP/1.1 (a short body is a read error); never decrypt a partial body.
  if (declared !== undefined && held.length !== declared) {
    throw badRequest(REASON.readFailed, 'failed to read request body', { closeConnection: true });
  }
}

/** How long a streamed reply may take to be delivered (see {@link replyDeadlineMs}). */
export interface ReplyDeadline {
  /** Never less than this (ms). */
  readonly minMs: number;
  /** The slowest delivery allowed for longer replies (bytes per second). */
  readonly bytesPerSecond: number;
}

/** max(30 s, size at 1 MiB/s): a 64 MiB reply has 64 s. */
export const DEFAULT_REPLY_DEADLINE: ReplyDeadline = Object.freeze({ minMs: 30_000, bytesPerSecond: 1024 * 1024 });

/** The time (ms) a reply of `bytes` may take from the moment it is handed to the writer. */
function replyDeadlineMs(bytes: number, d: ReplyDeadline = DEFAULT_REPLY_DEADLINE): number {
  return Math.max(d.minMs, Math.ceil((bytes / d.bytesPerSecond) * 1000));
}

/** The reply was not read in time (logged as `reply_too_slow`; the reply is cut off). */
const replyTooSlow = (): ApiError => new ApiError(ERR.badRequest, 'reply not read in time', { reason: 'reply_too_slow', closeConnection: true });

interface StreamDecryptOptions {
  budget: ByteBudget;
  /** How long the reply may take (default {@link DEFAULT_REPLY_DEADLINE}). */
  replyDeadline?: ReplyDeadline;
  /** Largest body (framing included). */
  cap: number;
  /** A copy of the key of version byte `version` (wiped here), undefined for an unknown version, or throws the `PlainTextError` to answer. */
  key(version: number): Uint8Array | undefined;
  /** GCM associated data of `version`. */
  aad(version: number): Uint8Array;
}

const decryptFailed = (): PlainTextError => new PlainTextError(400, 'decryption failed', { reason: 'decryption_failed' });

/** Handles one stream decrypt (see the module comment). */
export async function streamDecrypt(sctx: StreamContext, o: StreamDecryptOptions): Promise<StreamReply> {
  const declared = sctx.declaredLength;
  // Never fits, whatever the others do: 400 before reading (retrying never helps).
  if (declared !== undefined && declared + DECRYPT_CHUNK_BYTES > o.budget.limit) throw payloadTooLarge();
  // Nothing is held yet, so nothing is reserved yet: the body's chunks grow this as they come.
  const res = o.budget.reserve(0, sctx.peer.toString());
  const held = new HeldBytes();
  let handedOver = false;
  let key: Uint8Array | undefined;
  try {
    await collectBody(sctx.body(), declared, o.cap, res, held);
    res.grow(DECRYPT_CHUNK_BYTES); // the passes' working chunk
    const n = held.length;
    if (n < 1) throw new PlainTextError(400, 'crypto_failed_to_read_version', { reason: 'short_body' });
    const version = held.copy(0, 1)[0]!;
    key = o.key(version);
    if (key === undefined) throw new PlainTextError(400, 'crypto_unsupported_version', { reason: 'unsupported_version' });
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
      for (const v of held.views(HEADER, n - AEAD_TAG_BYTES, DECRYPT_CHUNK_BYTES)) wipeAndFree(check.update(v));
      wipeAndFree(check.final());
    } catch {
      throw decryptFailed();
    }
    // Pass 2: the same (now authenticated, held) bytes again, streamed out.
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
    d.setAAD(ad);
    d.setAuthTag(tag);
    let cut = false;
    async function* plaintext(): AsyncGenerator<Uint8Array> {
      for (const v of held.views(HEADER, n - AEAD_TAG_BYTES, DECRYPT_CHUNK_BYTES)) {
        if (cut) break;
        yield d.update(v);
      }
      if (cut) throw replyTooSlow();
      yield d.final();
    }
    const length = n - HEADER - AEAD_TAG_BYTES;
    const giveBack = (): void => {
      clearTimeout(timer);
      held.wipe();
      res.release();
    };
    // A slow reader is cut at the deadline: the bytes and the reservation go back now, the
    // reply stops at the writer's next pull (see the module comment).
    const timer = setTimeout(() => {
      cut = true;
      giveBack();
    }, replyDeadlineMs(length, o.replyDeadline));
    timer.unref();
    const chunks = releasingIterable(plaintext(), giveBack);
    handedOver = true;
    return { kind: 'stream', chunks, length };
  } finally {
    wipe(key);
    if (!handedOver) {
      held.wipe();
      res.release();
    }
  }
}

/**
 * Encryption as a service (D1, D7; CIP-*):
 *   POST /v1/cipher/encrypt   JSON `{plaintext}` → `{version, nonce, ciphertext}`;
 *                             stream (octet-stream) plaintext → `0x01 ‖ nonce(12) ‖ ct ‖ tag(16)`
 *   POST /v1/cipher/decrypt   JSON `{version, nonce, ciphertext}` → `{plaintext}`;
 *                             stream `0x01 ‖ nonce ‖ ct ‖ tag` → raw plaintext
 * SPIKE's formats and permission rule (Pilot, Lite always, else `execute` on
 * `spike/system/cipher/exec`: `ctx.guards.cipher`).
 *
 * Keys and binding. The key is the `cipher/v1` purpose key (HKDF from the root, D7), never the
 * storage key, derived per request and wiped once OpenSSL has it. Every message is
 * AES-256-GCM with AAD = `aad("spike-ts/cipher-api", version)`, so (a) a storage row (other
 * key, D8 AAD) never opens here (CIP-07), and (b) unlike SPIKE, the version byte is
 * authenticated. The version (JSON `version`, the stream's first byte) names the **cipher key
 * generation** (keys/cipher-keys.ts): 1 = `cipher/v1` of the first root key in SPIKE's layout;
 * each root-key rotation (or the AES-GCM seal limit) adds the next version with the same
 * layout. Encrypt uses the current version; decrypt accepts every version still held; unknown
 * versions are refused (400).
 *   POST /v1/cipher/rewrap    (additive) JSON, decrypt's request shape → encrypt's answer: the
 *                             ciphertext re-encrypted under the current version; the plaintext
 *                             never leaves Nexus (wiped in between). Same guard as decrypt and
 *                             encrypt (`ctx.guards.cipher`): a caller who may rewrap may already
 *                             decrypt and encrypt, so it grants nothing new.
 *
 * Limits. JSON: plaintext ≤ `maxCiphertextBytes − 16` (so every ciphertext we make fits the
 * decrypt limit; SPIKE accepts a plaintext it then cannot decrypt), ciphertext ≤
 * `maxCiphertextBytes`. Stream: plaintext ≤ `maxStreamBytes` (default and maximum
 * {@link MAX_CIPHER_STREAM_BYTES}, 64 MiB, both directions), ciphertext ≤ that + 29. A declared
 * `Content-Length` over the cap is refused before anything is read; otherwise the running count
 * decides. Oversize is 400 `api_bad_request` (message "request body too large"; SPIKE clients
 * understand 400, not 413: D1). If an encrypt stream without `Content-Length` crosses the cap
 * after the answer started, the answer is cut off (no final tag, so it never decrypts). A stream
 * body below the router's minimum pace (16 KiB/s while waited for) is 408 (FI-08; body-pace.ts).
 *
 * Memory budget (cipher-budget.ts). Every cipher request reserves the bytes it is about to hold
 * from one budget per process (`cipherMemoryBudgetBytes`), under its caller's SPIFFE ID, before
 * holding them, and gives them back when it ends in any way: stream decrypt its ciphertext as
 * it arrives plus one chunk (cipher-stream.ts; headers alone hold nothing), stream encrypt a
 * fixed {@link ENCRYPT_STREAM_RESERVE_BYTES} for its chunks in flight, JSON requests an
 * estimate of their buffers ({@link jsonReserveBytes}) while they are handled. One caller may
 * hold at most its share ({@link callerShare}: a quarter of the budget, at least the largest
 * single request). No room now (budget or share) → 503 `state_not_ready` "cipher memory budget
 * exhausted, try again later" (the connection is closed); bigger than the whole budget → 400
 * as oversize. A stream decrypt's reply must be delivered within max(30 s, plaintext at
 * 1 MiB/s) ({@link DEFAULT_REPLY_DEADLINE}), else it is cut off and its budget returned.
 *
 * Streaming and memory. Encrypt streams both ways (cipher-encrypt-stream.ts): each request
 * chunk goes through `createCipheriv` and out, the tag is appended at the end — a bounded
 * few chunks in memory, whatever the size. Decrypt of SPIKE's format cannot stream safely: it has one GCM tag at the
 * end, so releasing plaintext before the whole body is read would release unauthenticated
 * data. We buffer the ciphertext (bounded by the stream cap and the budget), check the tag in a
 * first pass, then stream the plaintext out in a second pass (cipher-stream.ts). No plaintext
 * is held beyond one chunk, and none is sent before the tag verified. (A chunked format with
 * per-chunk tags would lift the cap; it is not built, to keep the wire format SPIKE's.)
 *
 * Errors (D1, gaps B11/G10). A failed decrypt — flipped bit, wrong key, a storage row, a
 * ciphertext shorter than the tag — is 400 in both modes: JSON `{"plaintext":null,
 * "err":"api_bad_request","message":"decryption failed"}`, stream text `decryption failed`
 * (SPIKE answers JSON failures with 500, which its SDK reports as a connection error). Stream
 * framing errors keep SPIKE's text codes: `crypto_failed_to_read_version`,
 * `crypto_unsupported_version`, `crypto_failed_to_read_nonce`.
 */
import { ApiError, ERR, PlainTextError, REASON, badRequest, CipherDecryptRequest, CipherEncryptRequest, ERROR_SHAPES, PATHS } from '../../protocol/index.js';
import { type Route, type StreamContext, type StreamReply, defineRoute } from '../../http/index.js';
import { MAX_CIPHER_STREAM_BYTES } from '../../config/index.js';
import {
  aad, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, gcmOpen, gcmSeal, systemRandom, wipe,
} from '../../crypto/index.js';
import { CipherKeys } from '../keys/cipher-keys.js';
import type { NexusContext } from '../context.js';
import { ByteBudget, callerShare, releasingIterable } from './cipher-budget.js';
import { DECRYPT_CHUNK_BYTES, DEFAULT_REPLY_DEADLINE, type ReplyDeadline, streamDecrypt } from './cipher-stream.js';
import { ENCRYPT_READ_AHEAD_BYTES, ENCRYPT_STREAM_RESERVE_BYTES, STREAM_OVERHEAD_BYTES, streamEncrypt } from './cipher-encrypt-stream.js';

export { ENCRYPT_STREAM_RESERVE_BYTES } from './cipher-encrypt-stream.js';

/** Largest stream ciphertext buffered for a decrypt (see the module header): 64 MiB + framing. */
const MAX_STREAM_DECRYPT_BYTES = MAX_CIPHER_STREAM_BYTES + STREAM_OVERHEAD_BYTES;

/** GCM associated data of cipher-API messages of key generation `version`. */
function cipherAad(version: number): Uint8Array {
  return aad('spike-ts/cipher-api', version);
}

/** Largest stream plaintext accepted for `maxStreamBytes`. */
function streamPlaintextCap(maxStreamBytes: number): number {
  return Math.max(0, Math.min(maxStreamBytes, MAX_STREAM_DECRYPT_BYTES - STREAM_OVERHEAD_BYTES));
}

/**
 * Budget held by a JSON request with an `n`-byte payload while it is handled: about the raw
 * body (4n/3 base64), the decoded input (n), the output (n + 16) and its JSON encoding (4n/3),
 * rounded up to 5n, plus slack for the JSON framing.
 */
export function jsonReserveBytes(n: number): number {
  return 5 * n + 4096;
}

/** Largest JSON plaintext for `maxCiphertextBytes` (its ciphertext must fit the same limit). */
function jsonPlaintextCap(maxCiphertextBytes: number): number {
  return Math.max(0, maxCiphertextBytes - AEAD_TAG_BYTES);
}

function notAvailable(stream: boolean): ApiError {
  return stream
    ? new PlainTextError(500, 'crypto_cipher_not_available', { reason: 'cipher_unavailable' })
    : new ApiError(ERR.internal, 'cipher not available', { reason: 'cipher_unavailable' });
}

/** The current version and its key (a copy the caller wipes), one encryption counted. */
async function encryptKey(keys: CipherKeys, stream: boolean): Promise<{ version: number; key: Uint8Array }> {
  try {
    return await keys.forEncrypt();
  } catch {
    throw notAvailable(stream);
  }
}

/** The key of generation `version` (a copy the caller wipes), undefined for an unknown version. */
function decryptKey(keys: CipherKeys, version: number, stream: boolean): Uint8Array | undefined {
  try {
    return keys.forDecrypt(version);
  } catch {
    throw notAvailable(stream);
  }
}

const decryptFailedJson = (): ApiError => badRequest('decryption_failed', 'decryption failed');

/**
 * The most one cipher request can reserve under `cfg`: a full-size stream decrypt (ciphertext
 * plus working chunk), the largest JSON request, or a stream encrypt's fixed reserve.
 */
function largestCipherRequest(cfg: { maxStreamBytes: number; maxCiphertextBytes: number }): number {
  return Math.max(
    streamPlaintextCap(cfg.maxStreamBytes) + STREAM_OVERHEAD_BYTES + DECRYPT_CHUNK_BYTES,
    jsonReserveBytes(cfg.maxCiphertextBytes),
    ENCRYPT_STREAM_RESERVE_BYTES,
  );
}

/**
 * The cipher routes, with a fresh budget of `cfg.cipherMemoryBudgetBytes` (one per Nexus) and a
 * per-caller share of {@link callerShare} (default settings: 256 MiB, 64 MiB + 29 + 64 KiB each).
 */
export function cipherRoutes(ctx: NexusContext): Route[] {
  const limit = ctx.cfg.cipherMemoryBudgetBytes;
  return cipherRoutesWith(ctx, new ByteBudget(limit, { perCaller: callerShare(limit, largestCipherRequest(ctx.cfg)) }));
}

interface CipherRouteOptions {
  /** How long a stream decrypt's reply may take (default {@link DEFAULT_REPLY_DEADLINE}). */
  replyDeadline?: ReplyDeadline;
}

/** The cipher routes drawing on `budget` (tests pass their own to watch it). */
export function cipherRoutesWith(ctx: NexusContext, budget: ByteBudget, opts: CipherRouteOptions = {}): Route[] {
  const { cfg } = ctx;
  const keys = new CipherKeys(ctx.keys, ctx.store);
  const count = ctx.onCipherBytes ?? ((): void => undefined);
  /** Passes chunks through unchanged (they are still zeroed after sending), counting them. */
  async function* counted<T extends Uint8Array>(chunks: AsyncIterable<T>, direction: 'in' | 'out'): AsyncGenerator<T> {
    for await (const chunk of chunks) {
      count(direction, chunk.length);
      yield chunk;
    }
  }
  const countedReply = (reply: Uint8Array | StreamReply): Uint8Array | StreamReply =>
    reply instanceof Uint8Array ? reply : { ...reply, chunks: counted(reply.chunks, 'out') };
  const countedContext = (sctx: StreamContext): StreamContext => ({
    peer: sctx.peer,
    log: sctx.log,
    declaredLength: sctx.declaredLength,
    readBody: async () => {
      const body = await sctx.readBody();
      count('in', body.length);
      return body;
    },
    body: () => counted(sctx.body(), 'in'),
  });
  const replyDeadline = opts.replyDeadline ?? DEFAULT_REPLY_DEADLINE;
  const jsonCap = jsonPlaintextCap(cfg.maxCiphertextBytes);
  const streamCap = streamPlaintextCap(cfg.maxStreamBytes);
  // A JSON body carries base64 (4/3) of up to maxCiphertextBytes plus a little framing.
  const jsonBodyCap = Math.max(cfg.maxBodyBytes, Math.ceil(cfg.maxCiphertextBytes / 3) * 4 + 4096);

  const encrypt = defineRoute({
    path: PATHS.encrypt,
    name: 'cipher.encrypt',
    body: CipherEncryptRequest,
    guard: ctx.guards.cipher,
    errorShape: ERROR_SHAPES.encrypt,
    maxBodyBytes: jsonBodyCap,
    handle: async ({ body, peer, afterSend }) => {
      afterSend(() => wipe(body.plaintext));
      if (body.plaintext.length > jsonCap) throw badRequest(REASON.payloadTooLarge, 'plaintext too large');
      const held = budget.reserve(jsonReserveBytes(body.plaintext.length), peer.toString());
      afterSend(() => held.release());
      const { version, key } = await encryptKey(keys, false);
      try {
        const nonce = systemRandom(AEAD_NONCE_BYTES);
        const ciphertext = gcmSeal(key, nonce, body.plaintext, cipherAad(version));
        count('in', body.plaintext.length);
        count('out', ciphertext.length);
        return { version, nonce, ciphertext };
      } finally {
        wipe(key);
      }
    },
    stream: {
      guard: ctx.guards.cipher,
      maxBodyBytes: streamCap,
      readAheadBytes: ENCRYPT_READ_AHEAD_BYTES,
      handle: (sctx): Promise<StreamReply> => streamEncrypt(sctx, { budget, key: () => encryptKey(keys, true), aad: cipherAad, count }),
    },
  });

  const decrypt = defineRoute({
    path: PATHS.decrypt,
    name: 'cipher.decrypt',
    body: CipherDecryptRequest,
    guard: ctx.guards.cipher,
    errorShape: ERROR_SHAPES.decrypt,
    maxBodyBytes: jsonBodyCap,
    handle: ({ body, peer, afterSend }) => {
      const held = budget.reserve(jsonReserveBytes(body.ciphertext.length), peer.toString());
      afterSend(() => held.release());
      const plaintext = openJson(body);
      afterSend(() => wipe(plaintext));
      count('in', body.ciphertext.length);
      count('out', plaintext.length);
      return { plaintext };
    },
    stream: {
      guard: ctx.guards.cipher,
      maxBodyBytes: streamCap + STREAM_OVERHEAD_BYTES,
      handle: async (sctx): Promise<Uint8Array | StreamReply> => countedReply(await streamDecrypt(countedContext(sctx), {
        budget,
        replyDeadline,
        cap: streamCap + STREAM_OVERHEAD_BYTES,
        key: (version) => decryptKey(keys, version, true),
        aad: cipherAad,
      })),
    },
  });

  /** Checks and opens a JSON decrypt/rewrap request; the plaintext is the caller's to wipe. */
  function openJson(body: CipherDecryptRequest): Uint8Array {
    if (decryptKeyHeld(body.version) === false) throw badRequest('unsupported_version', 'unsupported ciphertext version');
    if (body.nonce.length !== AEAD_NONCE_BYTES) throw badRequest('invalid_nonce', 'nonce must be 12 bytes');
    if (body.ciphertext.length > cfg.maxCiphertextBytes) throw badRequest(REASON.payloadTooLarge, 'ciphertext too large');
    if (body.ciphertext.length < AEAD_TAG_BYTES) throw decryptFailedJson();
    const key = decryptKey(keys, body.version, false);
    if (key === undefined) throw badRequest('unsupported_version', 'unsupported ciphertext version');
    try {
      return gcmOpen(key, body.nonce, body.ciphertext, cipherAad(body.version));
    } catch {
      throw decryptFailedJson();
    } finally {
      wipe(key);
    }
  }

  /** Whether version `v` is held (no key copy made). */
  function decryptKeyHeld(v: number): boolean {
    const key = decryptKey(keys, v, false);
    wipe(key);
    return key !== undefined;
  }

  const rewrap = defineRoute({
    path: PATHS.rewrap,
    name: 'cipher.rewrap',
    body: CipherDecryptRequest,
    guard: ctx.guards.cipher,
    errorShape: ERROR_SHAPES.encrypt,
    maxBodyBytes: jsonBodyCap,
    handle: async ({ body, peer, afterSend }) => {
      const held = budget.reserve(jsonReserveBytes(body.ciphertext.length), peer.toString());
      afterSend(() => held.release());
      const plaintext = openJson(body);
      try {
        const { version, key } = await encryptKey(keys, false);
        try {
          const nonce = systemRandom(AEAD_NONCE_BYTES);
          const ciphertext = gcmSeal(key, nonce, plaintext, cipherAad(version));
          count('in', body.ciphertext.length);
          count('out', ciphertext.length);
          return { version, nonce, ciphertext };
        } finally {
          wipe(key);
        }
      } finally {
        wipe(plaintext);
      }
    },
  });

  return [encrypt, decrypt, rewrap];
}

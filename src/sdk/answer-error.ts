/**
 * The SDK's reading of Nexus's answers on the wire level: a body read with a byte cap, and a
 * non-200 answer turned into a `NexusApiError` (the status-derived code, the body's `err`
 * code, the store failure, the outcome of a 503, and a short printable `message` as `detail`;
 * nothing else of a body is kept).
 */
import type { Readable } from 'node:stream';
import { AnswerTooLargeError, readAnswer } from '../spiffe/index.js';
import { storeFailureFromMessage, type StoreFailureKind } from '../protocol/curve-free.js';
import { NexusApiError, codeForStatus, outcomeFromBody, sanitizeDetail, sanitizeWireCode, type RequestOutcome, type RequestTarget } from './errors.js';

/** Reads a body up to `cap` bytes (readAnswer); throws `net_reading_response_body` past it or on I/O error. */
export async function readCapped(body: Readable, cap: number, status: number, at?: RequestTarget): Promise<Buffer> {
  try {
    return await readAnswer(body, cap);
  } catch (e) {
    if (e instanceof AnswerTooLargeError) throw new NexusApiError('net_reading_response_body', { status, at });
    throw new NexusApiError('net_reading_response_body', { status, cause: e, at });
  }
}

/** Extracts an error code from a small error body (JSON `err`/`Err`, or a plain-text code). */
export async function errorFromResponse(res: { statusCode: number; body: Readable }, at: RequestTarget): Promise<NexusApiError> {
  const status = res.statusCode;
  let wireErr: string | undefined;
  let storeFailure: StoreFailureKind | undefined;
  let outcome: RequestOutcome | undefined;
  let detail: string | undefined;
  try {
    const buf = await readCapped(res.body, 4096, status);
    const text = buf.toString('utf8').trim();
    if (text.startsWith('{')) {
      const j: unknown = JSON.parse(text);
      if (j && typeof j === 'object') {
        wireErr = sanitizeWireCode((j as Record<string, unknown>)['err']) ?? sanitizeWireCode((j as Record<string, unknown>)['Err']);
        storeFailure = storeFailureFromMessage((j as Record<string, unknown>)['message']);
        outcome = outcomeFromBody(status, (j as Record<string, unknown>)['outcome']);
        detail = sanitizeDetail((j as Record<string, unknown>)['message']);
      }
    } else {
      const line = text.split('\n')[0]?.trim() ?? '';
      wireErr = sanitizeWireCode(line.replace(/ /g, '_'));
    }
  } catch {
    // The status alone decides the code; an unreadable error body is not an extra failure.
  }
  return new NexusApiError(codeForStatus(status), { status, at, ...(wireErr ? { wireErr } : {}), ...(storeFailure ? { storeFailure } : {}), ...(outcome ? { outcome } : {}), ...(detail ? { detail } : {}) });
}

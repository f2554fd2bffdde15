/**
 * Paged secret listing for the SDK (additive to SPIKE's list, issue 18): the request body
 * from `{ prefix, limit, cursor }` (checked before anything is sent), the page decoder, and
 * an async iterator over every page. With no option the body is SPIKE's `{}` and the answer
 * is every visible path at once, exactly as before.
 *
 * Cursors: a page that more keys follow carries `next` (its last key); pass it back as
 * `cursor`. Paths are never deleted from the list, so a walk through the pages returns
 * every path that existed before the first page exactly once, in order, and never a path
 * twice; paths created during the walk appear when they sort after the current cursor.
 */
import { LIMITS, MAX_PATH_LENGTH, type RequestJson, type SecretListRequest, type SecretListResponse } from '../protocol/curve-free.js';
import { decodeListSecrets, isObject } from './decode.js';
import { NexusApiError, SdkUsageError } from './errors.js';
import type { CallOptions } from './types.js';

export interface ListSecretsOptions extends CallOptions {
  /** Only paths starting with this string (a plain prefix: `app/` or `app/db`). */
  prefix?: string;
  /** At most this many keys (1…10,000); absent = every key in one answer. */
  limit?: number;
  /** The `next` of the previous page: only keys after it. */
  cursor?: string;
}

/** One page; `next` is absent on the last page. */
export interface SecretPage {
  keys: string[];
  next?: string;
}

/** Page size of {@link eachSecretPath} when none is given. */
export const DEFAULT_LIST_PAGE = 1000;

function bad(msg: string): never {
  throw new SdkUsageError('sdk_bad_argument', msg);
}

/** The list request body (SPIKE's `{}` when no option is set). */
export function listRequest(opts: ListSecretsOptions): RequestJson<SecretListRequest> {
  if (!isObject(opts as unknown)) bad('list options must be an object');
  const body: RequestJson<SecretListRequest> = {};
  if (opts.prefix !== undefined) {
    if (typeof opts.prefix !== 'string' || opts.prefix.length > MAX_PATH_LENGTH) bad('prefix must be a string of at most 500 characters');
    if (opts.prefix !== '') body.prefix = opts.prefix;
  }
  if (opts.limit !== undefined) {
    if (!Number.isSafeInteger(opts.limit) || opts.limit < 1 || opts.limit > LIMITS.maxListPage) bad('limit must be an integer from 1 to 10000');
    body.limit = opts.limit;
  }
  if (opts.cursor !== undefined) {
    if (typeof opts.cursor !== 'string' || opts.cursor.length > MAX_PATH_LENGTH) bad('cursor must be a string of at most 500 characters');
    body.after = opts.cursor;
  }
  return body;
}

export function decodeSecretPage(body: Record<string, unknown>): SecretPage {
  const keys = decodeListSecrets(body);
  const next = Object.prototype.hasOwnProperty.call(body, 'next') ? body['next'] as SecretListResponse['next'] | null : undefined;
  if (next === undefined || next === null || next === '') return { keys };
  if (typeof next !== 'string') throw new NexusApiError('data_unmarshal_failure', { status: 200 });
  return { keys, next };
}

/** Most paths one listing yields (more: narrow it with a prefix). */
export const MAX_LISTED = 1_000_000;

/**
 * Every visible path under `prefix`, one page of `pageSize` at a time. A cursor that goes
 * back, or more than {@link MAX_LISTED} paths, ends it with `data_unmarshal_failure`.
 */
export async function* eachSecretPath(
  page: (opts: ListSecretsOptions) => Promise<SecretPage>,
  opts: { prefix?: string; pageSize?: number } & CallOptions = {},
): AsyncGenerator<string, void, undefined> {
  const limit = opts.pageSize ?? DEFAULT_LIST_PAGE;
  let cursor: string | undefined;
  let listed = 0;
  for (;;) {
    const p = await page({
      ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
      limit,
      ...(cursor !== undefined ? { cursor } : {}),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    });
    listed += Math.max(1, p.keys.length); // an empty page counts too: no endless empty pages
    // Pages move forward in code-unit order (Nexus's): a cursor that does not is a broken or
    // hostile answer, as is a listing too long to hold, not a reason to loop for ever.
    if (listed > MAX_LISTED || (p.next !== undefined && cursor !== undefined && p.next < cursor)) {
      throw new NexusApiError('data_unmarshal_failure', { status: 200 });
    }
    yield* p.keys;
    // A server without paging ignores `limit` and answers everything without `next`.
    if (p.next === undefined || p.next === cursor) return;
    cursor = p.next;
  }
}

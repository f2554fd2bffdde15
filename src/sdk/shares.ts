/**
 * The SDK side of the operator share messages, over the protocol's byte-level share reader
 * (`src/protocol/shares.ts`; shard bytes never become JS strings): a malformed recover body
 * becomes `NexusApiError('data_unmarshal_failure')`, its `err` a sanitised wire code, and a
 * share the caller wants to send is checked first (`SdkUsageError('sdk_bad_shard')`).
 */
import { SHARD_LENGTH, ShareBodyError, isAllZero, isValidShare, readRecoverBody, type Share } from '../protocol/curve-free.js';
import { NexusApiError, SdkUsageError, codeForBodyErr, sanitizeWireCode } from './errors.js';

export { SHARD_LENGTH, isAllZero } from '../protocol/curve-free.js';

/** Validates a share before it is sent or written anywhere. */
export function assertValidShare(id: number, value: Uint8Array): void {
  if (!isValidShare(id, value)) throw new SdkUsageError('sdk_bad_shard');
}

/** Result of {@link parseRecoverBody}: the shares (sorted by id) and a body `err`, if any. */
interface RecoverBody {
  shares: Share[];
  err: string | undefined;
}

/** Parses the recover response body. Wipes every share it allocated if parsing fails. */
export function parseRecoverBody(bytes: Uint8Array): RecoverBody {
  let body;
  try {
    body = readRecoverBody(bytes);
  } catch (e) {
    if (e instanceof ShareBodyError) throw new NexusApiError('data_unmarshal_failure', { status: 200 });
    throw e;
  }
  const err = body.err === undefined ? undefined : (sanitizeWireCode(body.err) ?? 'gen_general_failure');
  return { shares: body.shares, err };
}

/**
 * The shares of a recover answer (`raw` is zeroed): a body `err` or an empty, all-zero or
 * wrong-length share throws `NexusApiError`, with every share already parsed wiped first.
 */
export function recoverAnswerShares(raw: Buffer): Share[] {
  let parsed;
  try {
    parsed = parseRecoverBody(raw);
  } finally {
    raw.fill(0);
  }
  if (parsed.err !== undefined) {
    for (const s of parsed.shares) s.value.fill(0);
    throw new NexusApiError(codeForBodyErr(parsed.err), { status: 200, wireErr: parsed.err });
  }
  if (parsed.shares.length === 0 || parsed.shares.some((s) => isAllZero(s.value) || s.value.length !== SHARD_LENGTH)) {
    for (const s of parsed.shares) s.value.fill(0);
    throw new NexusApiError('data_unmarshal_failure', { status: 200 });
  }
  return parsed.shares;
}

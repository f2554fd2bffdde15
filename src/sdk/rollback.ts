/**
 * Decoding of the additive `accept-rollback` answer (docs/key-lifecycle.md): whether a
 * detected state rollback was accepted, and the counters involved.
 */
export interface AcceptRollbackResult {
  accepted: boolean;
  /** `serving` or `checking` (the start-up rollback check still runs). */
  state: string;
  storeCounter?: number;
  keeperCounter?: number;
  counter?: number;
}

const count = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);

export function decodeAcceptRollback(body: Record<string, unknown>): AcceptRollbackResult {
  if (typeof body['accepted'] !== 'boolean' || typeof body['state'] !== 'string' || !/^[a-z_]{1,32}$/.test(body['state'])) {
    throw new TypeError('malformed accept-rollback answer');
  }
  const out: AcceptRollbackResult = { accepted: body['accepted'], state: body['state'] };
  for (const k of ['storeCounter', 'keeperCounter', 'counter'] as const) {
    const v = count(body[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

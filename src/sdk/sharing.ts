/**
 * Decoding of the additive sharing-move answers (docs/key-lifecycle.md): `refresh-shares`
 * (new shares, same Keepers) and `reshare` (the configured Keepers, shares and threshold).
 * Public numbers only: the new epoch and the sharing's `threshold` of `shares`.
 */
export interface SharingResult {
  epoch: number;
  threshold: number;
  shares: number;
}

export interface ReshareResult extends SharingResult {
  /** False: the stored sharing already matched Nexus's Keeper settings; nothing moved. */
  changed: boolean;
}

const positive = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

export function decodeSharingResult(body: Record<string, unknown>, what: string): SharingResult {
  const { epoch, threshold, shares } = body;
  if (!positive(epoch) || !positive(threshold) || !positive(shares)) throw new TypeError(`malformed ${what} answer`);
  return { epoch, threshold, shares };
}

export function decodeReshare(body: Record<string, unknown>): ReshareResult {
  if (typeof body['changed'] !== 'boolean') throw new TypeError('malformed reshare answer');
  return { changed: body['changed'], ...decodeSharingResult(body, 'reshare') };
}

/**
 * The clock-skew hint (ENV-03): a peer SVID refused because it is expired or not yet valid by
 * this host's clock. With SVIDs that are renewed in time, the usual cause is a clock that is
 * off on one side, which the refusal alone does not say. Inbound (a server refusing a client's
 * SVID: `certTimeRefusal`) and outbound (a client refusing the server's: `certTimeCause`, for
 * Nexus calling Keepers and for the SDK and CLI calling Nexus) use the same words.
 */
import type { TLSSocket } from 'node:tls';

/** The verdicts about a certificate's dates: OpenSSL's verify codes and the SPIFFE verifier's. */
const TIME_CODES: Readonly<Record<string, 'expired' | 'not yet valid'>> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not yet valid',
  svid_expired: 'expired',
  svid_not_yet_valid: 'not yet valid',
};

/** The hint for a peer SVID refused for its dates (`code` one of the time codes), else undefined. */
export function clockSkewHint(peer: 'client' | 'server', code: string | undefined): string | undefined {
  const state = code === undefined ? undefined : TIME_CODES[code];
  if (state === undefined) return undefined;
  return `${peer} SVID ${state} by this host's clock; check for clock skew between this host, the ${peer} and the SPIFFE agent`;
}

/** The refusal's message when `socket` was refused for its certificate's dates, else undefined. */
export function certTimeRefusal(socket: TLSSocket | undefined): { reason: string; message: string } | undefined {
  const raw: unknown = socket?.authorizationError; // typed Error, a code string at run time
  const why = typeof raw === 'string' ? raw : (raw as { code?: unknown } | undefined)?.code;
  if (why !== 'CERT_HAS_EXPIRED' && why !== 'CERT_NOT_YET_VALID') return undefined;
  return { reason: why, message: clockSkewHint('client', why)! };
}

/**
 * The time code in `e`'s cause chain (an outbound call that refused the server's SVID for its
 * dates: OpenSSL's code, or the reason of the SPIFFE verifier's refusal), else undefined.
 */
export function certTimeCause(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 8 && cur !== null && typeof cur === 'object'; i++) {
    for (const k of ['code', 'reason'] as const) {
      const v = (cur as Record<string, unknown>)[k];
      if (typeof v === 'string' && Object.hasOwn(TIME_CODES, v)) return v;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

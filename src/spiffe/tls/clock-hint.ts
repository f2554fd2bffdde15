/**
 * The clock-skew hint (ENV-03): a peer SVID refused because it is expired or not yet valid by
 * this host's clock. With SVIDs that are renewed in time, the usual cause is a clock that is
 * off on one side, which the refusal alone does not say.
 */
import type { TLSSocket } from 'node:tls';

/** The refusal's message when `socket` was refused for its certificate's dates, else undefined. */
export function certTimeRefusal(socket: TLSSocket | undefined): { reason: string; message: string } | undefined {
  const raw: unknown = socket?.authorizationError; // typed Error, a code string at run time
  const why = typeof raw === 'string' ? raw : (raw as { code?: unknown } | undefined)?.code;
  if (why !== 'CERT_HAS_EXPIRED' && why !== 'CERT_NOT_YET_VALID') return undefined;
  const state = why === 'CERT_HAS_EXPIRED' ? 'expired' : 'not yet valid';
  return { reason: why, message: `client SVID ${state} by this host's clock; check for clock skew between this host, the client and the SPIFFE agent` };
}

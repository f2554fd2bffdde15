/**
 * Bootstrap-facing routes:
 *   POST /v1/bootstrap/verify   (SPIKE) Bootstrap's probe. Decrypts with the
 *        `bootstrap-verify/v1` purpose key (D7) and AAD `spike/bootstrap-verify/v1`, never the
 *        storage or cipher key, so this route cannot decrypt stored rows or cipher-API
 *        ciphertexts (C2). Answers the hex SHA-256 of the plaintext.
 *   POST /v1/bootstrap/status   (ours, additive) `{"initialized": bool}`: whether the store
 *        already holds a key-check record, so Bootstrap never replaces a key. Allowed before
 *        the key is present (that is when Bootstrap asks).
 *   POST /v1/operator/commitments (ours, additive) the public sharing parameters, for
 *        `spike operator verify-shard` (recover and restore roles, and Pilot).
 */
import { createHash } from 'node:crypto';
import { ApiError, ERR, badRequest, notReady, BootstrapStatusRequest, BootstrapVerifyRequest, CommitmentsRequest, ERROR_SHAPES, PATHS, VERIFY_AAD, type BootstrapStatusResponse, type CommitmentsResponse } from '../../protocol/index.js';
import { type Route, defineRoute, guardIdentity } from '../../http/index.js';
import { gcmOpen, wipe } from '../../crypto/index.js';
import type { NexusContext } from '../context.js';
import { isInitialized, loadSharing } from '../keys/sharing.js';

export function bootstrapRoutes(ctx: NexusContext): Route[] {
  const verify = defineRoute({
    path: PATHS.verify,
    body: BootstrapVerifyRequest,
    guard: ctx.guards.bootstrapVerify,
    errorShape: ERROR_SHAPES.verify,
    // Reachable before the key is in, only so that Bootstrap's probe can start a recovery
    // pass right away (it has just delivered the shares); it still answers 503 until ready.
    allowBeforeReady: true,
    handle: ({ body }) => {
      if (!ctx.keys.isReady()) {
        ctx.sync?.nudge();
        throw notReady();
      }
      if (body.nonce.length !== 12) throw badRequest('invalid_nonce', 'nonce must be 12 bytes');
      if (body.ciphertext.length > ctx.cfg.maxCiphertextBytes) throw badRequest('payload_too_large', 'ciphertext too large');
      const key = ctx.keys.verifyKey();
      let plain: Uint8Array | undefined;
      try {
        plain = gcmOpen(key, body.nonce, body.ciphertext, VERIFY_AAD);
        return { hash: createHash('sha256').update(plain).digest('hex') };
      } catch {
        throw new ApiError(ERR.internal, 'verification failed', { reason: 'verify_failed' });
      } finally {
        wipe(key, plain);
      }
    },
  });
  const status = defineRoute({
    path: PATHS.bootstrapStatus,
    body: BootstrapStatusRequest,
    guard: guardIdentity('bootstrap.status', (p) => ctx.ids.isBootstrap(p)),
    allowBeforeReady: true,
    handle: async (): Promise<BootstrapStatusResponse> => ({ initialized: ctx.store.kind === 'memory' ? true : await isInitialized(ctx.store) }),
  });
  const commitments = defineRoute({
    path: PATHS.commitments,
    body: CommitmentsRequest,
    guard: guardIdentity('operator.commitments', (p) =>
      ctx.ids.isPilotRecover(p) || ctx.ids.isPilotRestore(p) || ctx.ids.isPilotOperator(p)),
    allowBeforeReady: true,
    handle: async (): Promise<CommitmentsResponse> => {
      const sh = ctx.keys.sharing() ?? (ctx.store.kind === 'memory' ? undefined : await loadSharing(ctx.store));
      if (!sh) throw new ApiError(ERR.notFound, 'no sharing recorded yet', { reason: 'no_sharing' });
      return {
        commitments: Buffer.from(sh.commitments.toBytes()).toString('base64'),
        threshold: sh.threshold,
        shares: sh.shares,
        epoch: sh.epoch,
      };
    },
  });
  return [verify, status, commitments];
}

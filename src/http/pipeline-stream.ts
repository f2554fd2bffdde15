/**
 * The stream pipeline of a route (`Content-Type: application/octet-stream` on a route with a
 * stream variant). The variant's guard is identity-only, so the router's pre-check was the
 * whole authorisation. A declared `Content-Length` over the variant's cap is refused (400)
 * before anything is read. The handler then either reads the whole body through the capped
 * reader (`readBody()`), or pulls it chunk by chunk (`body()`: the cap is enforced on the
 * running count, and the request is only read as fast as the handler consumes it). Either
 * way the body must keep arriving at the router's stream body pace while it is waited for
 * (body-pace.ts), else 408 `body_too_slow` (FI-08): a stream body has no whole-body deadline. It
 * answers with bytes, or with a {@link StreamReply} written chunk by chunk with
 * back-pressure (reply.ts), so neither direction needs more than a bounded chunk in memory.
 */
import { wipe } from '../crypto/curve-free.js';
import { cappedChunks, declaredLength, readBody } from './body.js';
import type { BodyPace } from './body-pace.js';
import { ApiError, errorCode, payloadTooLarge } from './errors.js';
import type { Exchange } from './exchange.js';
import { isStreamReply, sendBytes, sendStream } from './reply.js';
import type { StreamVariant } from './route.js';

export async function runStreamRoute<P>(x: Exchange, variant: StreamVariant<P>, peer: P, pace: BodyPace): Promise<void> {
  x.decision = 'allow';
  const req = x.req;
  if (x.beforeHandle !== undefined) await x.beforeHandle(undefined);
  const declared = declaredLength(req);
  if (declared === null || (declared !== undefined && declared > variant.maxBodyBytes)) {
    req.pause();
    throw payloadTooLarge();
  }
  let collected: Buffer | undefined;
  let bodyUsed = false;
  const useBody = (): void => {
    if (bodyUsed) throw new ApiError(errorCode('internal'), 'request body read twice', { reason: 'body_reused' });
    bodyUsed = true;
  };
  try {
    const out = await variant.handle({
      peer,
      log: x.log,
      declaredLength: declared,
      readBody: async () => {
        useBody();
        collected = await readBody(req, variant.maxBodyBytes, { pace });
        return collected;
      },
      body: () => {
        useBody();
        return cappedChunks(req, variant.maxBodyBytes, { pace, readAheadBytes: variant.readAheadBytes ?? 0 });
      },
    });
    if (isStreamReply(out)) await sendStream(x, out);
    else sendBytes(x, out);
  } finally {
    wipe(collected); // may have been handed over as a reply chunk and freed: wipe() skips it then
  }
}

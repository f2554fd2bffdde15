/**
 * The JSON pipeline and key material (P21): a share in a request that is refused after its
 * body was decoded (by the body guard, or by the audit hook) is zeroed, since no handler ever
 * takes it; one the handler received is the handler's to keep. Real router, real HTTP server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/log.js';
import { SpiffeId } from '../spiffe/id.js';
import { serveRouter } from '../../test/helpers/router-server.js';
import { guardBody } from './guards.js';
import { defineRoute } from './route.js';
import { createRouter } from './router.js';
import { s } from './schema.js';
import '../protocol/errors.js'; // the wire error codes a router needs

const peer = SpiffeId.parse('spiffe://spike.ist/app/x');
const ShareBody = s.object({ shard: s.bytes32({ nonZero: true }), who: s.string() });

test('P21: a share decoded from a body the guard then refuses is zeroed; a share handed to the handler is kept', async () => {
  const kept: Buffer[] = [];
  const decoded: Buffer[] = [];
  const route = defineRoute({
    path: '/share',
    body: ShareBody,
    guard: guardBody<{ shard: Buffer; who: string }>('test.share', {
      admits: () => true,
      allow: (_p, b) => {
        decoded.push(b.shard);
        return b.who !== 'deny';
      },
    }),
    handle: ({ body }) => {
      kept.push(body.shard);
      return {};
    },
  });
  const router = createRouter([route], { isReady: () => true, logger: createLogger({ component: 't', destination: new Writable({ write(_c, _e, cb) { cb(); } }) }) });
  const srv = await serveRouter(router, peer);
  const post = async (who: string): Promise<number> => {
    const body = `{"shard":[${Array.from({ length: 32 }, (_, i) => i + 100).join(',')}],"who":"${who}"}`;
    const res = await fetch(`http://127.0.0.1:${srv.port}/share`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    await res.arrayBuffer();
    return res.status;
  };
  try {
    assert.equal(await post('deny'), 401);
    assert.equal(decoded.length, 1);
    assert.ok(decoded[0]!.every((x) => x === 0), 'the refused request\'s share is zeroed');
    assert.equal(await post('ok'), 200);
    assert.equal(kept.length, 1);
    assert.equal(kept[0]![31], 131, 'the handler\'s share is left to the handler');
  } finally {
    await srv.close();
  }
});

/**
 * The rotate-root-key route and the other workers of a Nexus (SPIKE_NEXUS_WORKERS > 1): when
 * the store's answer to the switch was lost (outcome unknown, so the switch may have
 * committed), the other workers' key state may be stale and must be replaced; a rotation
 * refused before its switch changes nothing for them. The store failure reaches the route
 * already mapped to its 503 answer, which once hid the unknown outcome from this check.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRouter, guardIdentity } from '../../http/index.js';
import { createLogger } from '../../lib/log.js';
import { PATHS } from '../../protocol/index.js';
import { SpiffeId } from '../../spiffe/id.js';
import { StoreError } from '../../store/index.js';
import { MemoryStore } from '../../store/memory.js';
import type { NexusContext } from '../context.js';
import { RotationError } from '../keys/rotation.js';
import { rotationRoutes } from './rotation.js';

/** POSTs rotate-root-key once to a router over `rotate`; returns the status and why the others were called stale. */
async function rotateWith(rotate: () => Promise<never>): Promise<{ status: number; body: string; stale: string[] }> {
  const stale: string[] = [];
  const ctx = {
    store: new MemoryStore(),
    rotation: { rotate },
    guards: { rotateRootKey: guardIdentity('operator.rotate_root_key', () => true) },
    othersStale: (why: string) => stale.push(why),
  } as unknown as NexusContext;
  const logger = createLogger({ component: 't', level: 'fatal', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const router = createRouter(rotationRoutes(ctx), { isReady: () => true, logger });
  const server = http.createServer((req, res) => void router(req, res, SpiffeId.parse('spiffe://spike.ist/spike/pilot/role/superuser')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${PATHS.rotateRootKey}`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    return { status: r.status, body: await r.text(), stale };
  } finally {
    server.close();
  }
}

test('a store answer lost during the switch (outcome unknown): 503 with that outcome, and the other workers are replaced', async () => {
  const r = await rotateWith(async () => { throw new StoreError('store_unavailable', { outcome: 'unknown', failure: 'unreachable' }); });
  assert.equal(r.status, 503);
  assert.match(r.body, /"outcome":"unknown"/);
  assert.deepEqual(r.stale, ['root_rotation']);
});

test('a rotation refused before its switch (store failure not applied, or a rotation refusal): the other workers are left alone', async () => {
  for (const fail of [
    () => new StoreError('store_unavailable', { outcome: 'not_applied', failure: 'unreachable' }),
    () => new RotationError('rotation_in_progress'),
  ]) {
    const r = await rotateWith(async () => { throw fail(); });
    assert.ok(r.status >= 400, r.body);
    assert.deepEqual(r.stale, [], r.body);
  }
});

/**
 * The lite backend keeps its sharing record in process memory only. A sharing move there
 * (refresh, reshare, or the scheduled refresh) moved every Keeper to a new epoch, and the
 * next Nexus start, finding no record, accepted only Bootstrap's epoch: the key could not be
 * rebuilt, restore had no sharing to check shards against, and Bootstrap was refused by the
 * Keepers, so the only way out was a new root key (every cipher-API ciphertext lost). Now
 * moves are refused on lite, before anything moves, and so is the refresh schedule.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNexusConfig } from '../../config/index.js';
import { PATHS } from '../../protocol/index.js';
import { LiteStore } from '../../store/lite.js';
import { startRouteHarness, type RouteHarness } from '../../../test/helpers/route-harness.js';
import { sharingRoutes } from './sharing.js';

const SUPERUSER = 'spiffe://spike.ist/spike/pilot/role/superuser';
let h: RouteHarness | undefined;
after(async () => h?.close());

test('lite backend: refresh-shares and reshare answer 400 lite_backend and move nothing', async () => {
  h = await startRouteHarness({ modules: [sharingRoutes], store: new LiteStore() });
  for (const path of [PATHS.refreshShares, PATHS.reshare]) {
    const r = await h.post(path, {}, SUPERUSER);
    assert.equal(r.status, 400, path);
    assert.equal((r.json as { err?: string }).err, 'api_bad_request', path);
    assert.match(r.body, /lite backend/, path);
    assert.match(h.logs(), /"reason":"lite_backend"/, path);
  }
});

test('lite backend: a scheduled share refresh is a configuration error', () => {
  const env = { SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2,https://c:3', SPIKE_NEXUS_SHARE_REFRESH_INTERVAL: '24h' };
  assert.throws(() => loadNexusConfig({ ...env, SPIKE_NEXUS_BACKEND_STORE: 'lite' }), /SPIKE_NEXUS_SHARE_REFRESH_INTERVAL.*lite backend/);
  assert.equal(loadNexusConfig({ ...env, SPIKE_NEXUS_BACKEND_STORE: 'sqlite' }).shareRefreshIntervalMs, 24 * 3600_000);
});

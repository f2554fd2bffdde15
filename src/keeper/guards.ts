/**
 * Who may call the Keeper routes: contribute ← Nexus or Bootstrap; shard, anchor, status ← Nexus only.
 * The TLS handshake already refuses every other identity; the route guards check again.
 */
import { type Guard, guardIdentity } from '../http/index.js';
import type { Recognisers } from '../protocol/index.js';

/** Keeper route guards over one set of recognisers. */
export function keeperGuards(ids: Recognisers): { contribute: Guard<unknown>; shard: Guard<unknown>; anchor: Guard<unknown>; status: Guard<unknown> } {
  return {
    contribute: guardIdentity('keeper.contribute', (p) => ids.isNexus(p) || ids.isBootstrap(p)),
    shard: guardIdentity('keeper.shard', (p) => ids.isNexus(p)),
    anchor: guardIdentity('keeper.anchor', (p) => ids.isNexus(p)),
    status: guardIdentity('keeper.status', (p) => ids.isNexus(p)),
  };
}

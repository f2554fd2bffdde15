/** Nexus cipher routes — being built (see README "Status"). */
import type { Route } from '../../api/router.js';
import type { NexusContext } from '../context.js';

export function cipherRoutes(_ctx: NexusContext): Route[] {
  return [];
}

/** Nexus secrets routes — being built (see README "Status"). */
import type { Route } from '../../api/router.js';
import type { NexusContext } from '../context.js';

export function secretRoutes(_ctx: NexusContext): Route[] {
  return [];
}

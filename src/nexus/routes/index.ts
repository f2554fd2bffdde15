/**
 * The Nexus route modules, in one list. Each module is `(ctx) => Route[]` and decides for
 * itself which backends it serves (e.g. secrets and policies are absent in `lite` mode, so
 * those paths fall through to SPIKE's 400). The bootstrap routes are added by ../server.ts.
 */
import type { RouteModule } from '../context.js';
import { cipherRoutes } from './cipher.js';
import { operatorRoutes } from './operator.js';
import { policyRoutes } from './policies.js';
import { secretRoutes } from './secrets.js';
import { auditRoutes } from './audit.js';
import { acceptRollbackRoutes } from './accept-rollback.js';
import { sharingRoutes } from './sharing.js';
import { rotationRoutes } from './rotation.js';

export const ROUTE_MODULES: readonly RouteModule[] = [
  secretRoutes, policyRoutes, cipherRoutes, operatorRoutes, auditRoutes, acceptRollbackRoutes, sharingRoutes, rotationRoutes,
];
export { policyCheckUnavailable } from './store-errors.js';

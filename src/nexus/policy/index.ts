/**
 * The policy package, the way in from outside: the policy model, the write-time checks and
 * their typed errors, the pure engine, and the sync that keeps the engine in step with the
 * store. Nothing here knows about HTTP; the authorizer (../authz.ts) and the policy routes
 * (../routes/policies.ts) build on it.
 */
export { PolicyEngine, type PolicyChange } from './engine.js';
export { DecisionPacer } from './pacer.js';
export { POLICY_ERRORS, PolicyError, type PolicyErrorCode } from './errors.js';
export { type Permission, type PolicyLike } from './model.js';
export { literalOf, requiredPrefixOf } from './patterns.js';
export { PolicySync } from './sync.js';
export { compilePolicy } from './validate.js';

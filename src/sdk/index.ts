/**
 * The SDK's door for the rest of this repository: its public surface (public.ts, what the
 * packages export) and the helpers the `spike` CLI shares with it, which SDK users do not get.
 */
export * from './public.js';
export { clientRoles, type ClientRoles, type IdPredicate, type Env } from './roles.js';
export { failureText } from './failure.js';
export { assertDefaultTrusted, DEFAULT_WORKLOAD_API_ENDPOINT } from '../spiffe/index.js';

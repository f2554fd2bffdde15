/**
 * The wire contract's curve-free door: all of `src/protocol` (see index.ts for the table of
 * files) except the Keeper share codec (keeper-share.ts), whose Feldman commitments need the
 * curve code. What the SDK client, the CLI and every other importer that never parses
 * commitments use, so that loading the contract does not evaluate @noble/curves (issue 15:
 * every `spike` call loaded it for nothing). index.ts re-exports this whole and adds the codec.
 */
export { Bytes32 } from '../http/index.js';
export * from './paths.js';
export * from './roles.js';
export * from './permissions.js';
export * from './validate.js';
export * from './limits.js';
export * from './secrets.js';
export * from './policies.js';
export * from './cipher.js';
export * from './operator.js';
export * from './bootstrap.js';
export * from './keeper.js';
export * from './audit.js';
export * from './error-shapes.js';
export * from './request-json.js';
export * from './shares.js';
export * from './errors.js';

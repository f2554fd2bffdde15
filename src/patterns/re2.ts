/**
 * re2js, loaded on first use. A module that merely might check a pattern (every `spike` call
 * loads the policy commands' option parsing) does not pay for loading the engine and its
 * Unicode tables at start; in a bundle (scripts/bundle-bins.mjs) the `require` below becomes the
 * bundled CommonJS build, initialised on the first call, and every caller (here and
 * `src/protocol/validate.ts`) shares that one copy.
 */
import { createRequire } from 'node:module';
import type * as Re2js from 're2js';

const requireCjs = createRequire(import.meta.url);
let engine: typeof Re2js.RE2JS | undefined;

/** The RE2JS class (loads re2js the first time). */
export function re2(): typeof Re2js.RE2JS {
  return (engine ??= (requireCjs('re2js') as typeof Re2js).RE2JS);
}

/**
 * The version of the installed `spike-ts` package, for every command's `--version`
 * (`package-root.ts` finds the package); `unknown` when it is not found.
 */
import { packageRoot } from './package-root.js';

export function packageVersion(): string {
  return packageRoot()?.version ?? 'unknown';
}

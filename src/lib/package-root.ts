/**
 * The folder of the installed `spike-ts` package (the one holding its package.json and its
 * `bin/`, `dist/` and `native/` folders): three folders above a compiled module
 * (dist/src/<folder>/x.js; a bundle resolves `import.meta.url` as its command's first module,
 * the same depth), or two above (a module run from src/ by a TypeScript loader). Undefined when
 * neither is the package.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageRoot {
  readonly dir: string;
  readonly version: string;
}

let found: PackageRoot | null | undefined;

export function packageRoot(): PackageRoot | undefined {
  if (found !== undefined) return found ?? undefined;
  found = null;
  try {
    const here = path.dirname(fileURLToPath(import.meta.url));
    for (const up of ['../../..', '../..']) {
      const dir = path.join(here, up);
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'spike-ts' && typeof pkg.version === 'string') {
          found = { dir: path.resolve(dir), version: pkg.version };
          break;
        }
      } catch {
        /* try the next candidate */
      }
    }
  } catch {
    /* not a file: URL */
  }
  return found ?? undefined;
}

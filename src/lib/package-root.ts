/**
 * The folder of the installed `spike-ts` package (the one holding its package.json and its
 * `bin/`, `dist/` and `native/` folders): three folders above a compiled module
 * (dist/src/<folder>/x.js; a bundle resolves `import.meta.url` as its command's first module,
 * the same depth), or two above (a module run from src/ by a TypeScript loader). A candidate
 * counts only when this module really sits at one of those two places inside it, so a
 * package.json named `spike-ts` in a folder above a checkout is never taken for the package
 * (the native addon is loaded from the folder found here). Undefined when neither is the package.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageRoot {
  readonly dir: string;
  readonly version: string;
}

/** Where a module of the package may sit, relative to the package folder: dist/src/<folder> or src/<folder>. */
const MODULE_FOLDER = /^(?:dist\/src|src)\/[^/]+$/;

/**
 * The package folder for a module in folder `moduleDir`, reading package.json files with `read`
 * (a throw: no such file). Exported for tests; {@link packageRoot} is this module's own.
 */
export function findPackageRoot(moduleDir: string, read: (file: string) => string): PackageRoot | undefined {
  for (const up of ['../../..', '../..']) {
    const dir = path.resolve(moduleDir, up);
    if (!MODULE_FOLDER.test(path.relative(dir, moduleDir).split(path.sep).join('/'))) continue;
    try {
      const pkg = JSON.parse(read(path.join(dir, 'package.json'))) as { name?: string; version?: string };
      if (pkg.name === 'spike-ts' && typeof pkg.version === 'string') return { dir, version: pkg.version };
    } catch {
      /* try the next candidate */
    }
  }
  return undefined;
}

let found: PackageRoot | null | undefined;

export function packageRoot(): PackageRoot | undefined {
  if (found === undefined) {
    let here: string | undefined;
    try {
      here = path.dirname(fileURLToPath(import.meta.url));
    } catch {
      /* not a file: URL */
    }
    found = (here === undefined ? undefined : findPackageRoot(here, (f) => readFileSync(f, 'utf8'))) ?? null;
  }
  return found ?? undefined;
}

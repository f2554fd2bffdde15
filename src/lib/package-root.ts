/**
 * The folder of the installed `spike-ts` package (the one holding its package.json and its
 * `bin/`, `dist/` and `native/` folders): three folders above a compiled module
 * (dist/src/<folder>/x.js; a bundle resolves `import.meta.url` as its command's first module,
 * the same depth), or two above a source module (src/<folder>/x.ts, run by a TypeScript loader):
 * one candidate, by the module's kind, and only when the module really sits there inside it, so
 * a package.json named `spike-ts` in a folder above a checkout is never taken for the package
 * (the native addon is loaded from the folder found here). Undefined when it is not the package.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageRoot {
  readonly dir: string;
  readonly version: string;
}

/** Where a compiled module sits, relative to the package folder, and where a source module does. */
const COMPILED_FOLDER = /^dist\/src\/[^/]+$/;
const SOURCE_FOLDER = /^src\/[^/]+$/;

/**
 * The package folder for a module in folder `moduleDir` (`compiled`: a .js file, three folders
 * down; else a .ts file, two), reading package.json files with `read` (a throw: no such file).
 * One candidate only, chosen by the module's kind. Exported for tests; {@link packageRoot} is
 * this module's own.
 */
export function findPackageRoot(moduleDir: string, compiled: boolean, read: (file: string) => string): PackageRoot | undefined {
  const dir = path.resolve(moduleDir, compiled ? '../../..' : '../..');
  if (!(compiled ? COMPILED_FOLDER : SOURCE_FOLDER).test(path.relative(dir, moduleDir).split(path.sep).join('/'))) return undefined;
  try {
    const pkg = JSON.parse(read(path.join(dir, 'package.json'))) as { name?: string; version?: string };
    return pkg.name === 'spike-ts' && typeof pkg.version === 'string' ? { dir, version: pkg.version } : undefined;
  } catch {
    return undefined;
  }
}

let found: PackageRoot | null | undefined;

export function packageRoot(): PackageRoot | undefined {
  if (found === undefined) {
    let file: string | undefined;
    try {
      file = fileURLToPath(import.meta.url);
    } catch {
      /* not a file: URL */
    }
    found = (file === undefined ? undefined : findPackageRoot(path.dirname(file), !file.endsWith('.ts'), (f) => readFileSync(f, 'utf8'))) ?? null;
  }
  return found ?? undefined;
}

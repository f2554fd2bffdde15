/**
 * The version of the installed `spike-ts` package, for every command's `--version`: read from
 * the package.json three folders above the compiled module (dist/src/<folder>/x.js; a bundle
 * resolves `import.meta.url` as its command's first module, the same depth), or two above (a
 * module run from src/ by a TypeScript loader). `unknown` when neither is the package.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageVersion(): string {
  try {
    const here = path.dirname(fileURLToPath(import.meta.url));
    for (const up of ['../../..', '../..']) {
      try {
        const pkg = JSON.parse(readFileSync(path.join(here, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'spike-ts' && typeof pkg.version === 'string') return pkg.version;
      } catch {
        /* try the next candidate */
      }
    }
  } catch {
    /* fall through */
  }
  return 'unknown';
}

/**
 * The static import graph of a compiled module (what `tsc` kept: type-only imports are gone),
 * read from its text: relative files walked, package names collected. Dynamic `import()` is
 * not followed; a module loaded that way is evaluated only when its code runs.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export function staticImportGraph(...entries: string[]): { files: string[]; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const walk = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) {
      const spec = (m[1] ?? m[2]) as string;
      if (spec.startsWith('.')) walk(path.resolve(path.dirname(file), spec));
      else packages.add(spec);
    }
  };
  for (const entry of entries) walk(entry);
  return { files: [...files], packages };
}

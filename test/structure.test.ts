/**
 * The shape of the source tree, checked on every run so it cannot erode:
 *
 * - no import cycles between source files (type-only imports included: a cycle of types is
 *   still two modules that cannot be understood apart);
 * - an import from outside a top-level folder of src/ enters it through that folder's
 *   index.ts (the folder's door), never through an inner file; the one other door a folder may
 *   have is `curve-free.ts`, below;
 * - no test-only code in src/: nothing outside a *.test.ts imports node:test or test/;
 * - no source file grows past the size a reader can hold (400 lines, a hard stop above the
 *   ~350-line guideline).
 *
 * Imports are read with the TypeScript compiler's own pre-processor, so comments and strings
 * that look like imports do not count.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { staticImportGraph } from './helpers/import-graph.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = path.join(ROOT, 'src');
/**
 * A folder's second door (issue 15): the part of it that loads no curve code (@noble/curves,
 * whose evaluation, with the Web Crypto probe it makes, every `spike` call paid for without
 * doing any curve arithmetic). For importers that never use the curve (the SDK client and the
 * CLI's everyday commands) when the folder's index.ts must also offer what does (src/crypto's
 * Shamir and Feldman code; src/protocol's Keeper share codec, which parses commitments). The
 * tests below hold it to its name and keep index.ts the folder's complete surface.
 */
const CURVE_FREE_DOOR = 'curve-free.ts';
const CURVE_CODE = '@noble/curves';
const MAX_LINES = 400;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out.sort();
}

const isTest = (file: string): boolean => file.endsWith('.test.ts');

/** Resolved relative imports of `file` (absolute .ts paths) and its bare module imports. */
function importsOf(file: string): { local: string[]; modules: string[] } {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  const local: string[] = [];
  const modules: string[] = [];
  for (const { fileName } of info.importedFiles) {
    if (fileName.startsWith('.')) local.push(path.resolve(path.dirname(file), fileName).replace(/\.js$/, '.ts'));
    else modules.push(fileName);
  }
  return { local, modules };
}

const rel = (file: string): string => path.relative(ROOT, file);
const productFiles = sourceFiles(SRC).filter((f) => !isTest(f));
const graph = new Map(productFiles.map((f) => [f, importsOf(f)]));

test('structure: no import cycles in src/', () => {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let counter = 0;
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node)?.local ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(rel(member));
      } while (member !== node);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  assert.deepEqual(cycles, [], 'import cycles');
});

test('structure: other folders enter a top-level folder of src/ only through its index.ts', () => {
  const topFolder = (file: string): string => path.relative(SRC, file).split(path.sep)[0]!;
  const bypasses: string[] = [];
  for (const [file, { local }] of graph) {
    for (const target of local) {
      if (!target.startsWith(SRC + path.sep)) continue;
      const folder = topFolder(target);
      if (folder.endsWith('.ts') || folder === topFolder(file)) continue;
      if (target === path.join(SRC, folder, 'index.ts') || target === path.join(SRC, folder, CURVE_FREE_DOOR)) continue;
      bypasses.push(`${rel(file)} -> ${rel(target)}`);
    }
  }
  assert.deepEqual(bypasses, []);
});

const curveFreeDoors = [...graph.keys()].filter((f) => path.basename(f) === CURVE_FREE_DOOR);

test(`structure: a folder's ${CURVE_FREE_DOOR} door is re-exported whole by its index.ts`, () => {
  assert.ok(curveFreeDoors.length > 0, 'the doors were found');
  const notWhole: string[] = [];
  for (const door of curveFreeDoors) {
    const index = path.join(path.dirname(door), 'index.ts');
    const text = fs.existsSync(index) ? fs.readFileSync(index, 'utf8') : '';
    const file = ts.createSourceFile(index, text, ts.ScriptTarget.Latest);
    const whole = file.statements.some((st) => ts.isExportDeclaration(st) && st.exportClause === undefined && !st.isTypeOnly
      && st.moduleSpecifier !== undefined && ts.isStringLiteral(st.moduleSpecifier) && st.moduleSpecifier.text === './curve-free.js');
    if (!whole) notWhole.push(rel(door));
  }
  assert.deepEqual(notWhole, []);
});

test(`structure: a ${CURVE_FREE_DOOR} door, and the SDK's entries through it, load no curve code`, () => {
  // The compiled modules (what tsc kept, type-only imports gone), static imports only.
  const compiled = (file: string): string => path.join(ROOT, 'dist', path.relative(ROOT, file)).replace(/\.ts$/, '.js');
  const entries = [...curveFreeDoors, path.join(SRC, 'sdk', 'index.ts'), path.join(SRC, 'sdk', 'public.ts')];
  const loading = entries.filter((e) => [...staticImportGraph(compiled(e)).packages].some((p) => p === CURVE_CODE || p.startsWith(`${CURVE_CODE}/`)));
  assert.deepEqual(loading.map(rel), []);
  // The walk does see the curve code where it is.
  assert.ok(staticImportGraph(compiled(path.join(SRC, 'crypto', 'index.ts'))).packages.has(`${CURVE_CODE}/nist.js`));
});

test('structure: no test-only code in src/', () => {
  const offenders: string[] = [];
  for (const [file, { local, modules }] of graph) {
    if (modules.includes('node:test')) offenders.push(`${rel(file)} imports node:test`);
    for (const target of local) if (!target.startsWith(SRC + path.sep)) offenders.push(`${rel(file)} imports ${rel(target)}`);
  }
  assert.deepEqual(offenders, []);
});

test(`structure: no source file in src/ over ${MAX_LINES} lines`, () => {
  const long = productFiles
    .map((f) => ({ file: rel(f), lines: fs.readFileSync(f, 'utf8').split('\n').length }))
    .filter((f) => f.lines > MAX_LINES);
  assert.deepEqual(long, []);
});

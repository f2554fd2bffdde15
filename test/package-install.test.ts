/**
 * Both packages install from their `npm pack` tarballs, as a user would get them:
 *
 * - `@spike-ts/sdk` (packages/sdk): the tarball holds compiled ESM with types and a README;
 *   installed into a fresh project it pulls no native module and no database driver
 *   (no better-sqlite3, no pg, no `.node` file, no `binding.gyp`); `import { NexusClient }
 *   from '@spike-ts/sdk'` runs and type-checks under `tsc --strict`, and so does every import
 *   line the README, docs/sdk.md and the SDK's README show; deep imports are closed by the
 *   `exports` map.
 * - `spike-ts` (the server package): the tarball holds dist/ (no tests, no TypeScript
 *   sources); installed into a fresh folder, every bin (`spike`, `spike-nexus`,
 *   `spike-keeper`, `spike-bootstrap`, `spike-agent`) answers `--help` with exit 0,
 *   `import { NexusClient } from 'spike-ts'` works there too, and the installed agent, Nexus
 *   (memory backend) and `spike` serve a put and a get, and the installed Keepers start.
 *
 * Installs prefer the npm cache (`--prefer-offline`) and fall back to the registry. The server
 * tarball is installed with `--ignore-scripts` by default: its one install script builds
 * better-sqlite3's native addon, which without a reachable prebuilt binary compiles from C
 * for minutes; `--help` never loads it. Set SPIKE_TEST_PACKAGE_SCRIPTS=1 to run the install
 * scripts too. The server tarball is packed with `--ignore-scripts` because the test runs
 * after `npm test`'s build (dist/ is fresh); the SDK tarball is packed normally, so its
 * `prepack` build is exercised. The two flows run side by side.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import ts from 'typescript';
import { REPO_ROOT } from './helpers/bin.js';
import { Stack } from './helpers/stack.js';
import { tempDir } from './helpers/temp.js';

const STEP_TIMEOUT_MS = 600_000;
const BINS = ['spike', 'spike-nexus', 'spike-keeper', 'spike-bootstrap', 'spike-agent'] as const;
// The SDK's Workload API client speaks gRPC on node:http2 itself: no gRPC library comes with it.
const FORBIDDEN_DEPS = ['better-sqlite3', 'pg', 'pg-native', 'bindings', 'node-gyp-build', 'prebuild-install', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs'];

/** Environment for nested npm/node runs: no `npm_*` variables inherited from `npm test`. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return env;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: cleanEnv(), timeout: STEP_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function ok(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await run(cmd, args, cwd);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

/** `npm pack` into `dest`; returns the tarball's path. */
async function pack(dest: string, extra: string[]): Promise<string> {
  const out = await ok('npm', ['pack', '--json', '--pack-destination', dest, ...extra], REPO_ROOT);
  const json = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string }>;
  const file = json[0]?.filename;
  assert.ok(file, 'npm pack named no tarball');
  return path.join(dest, path.basename(file));
}

async function tarList(tgz: string): Promise<string[]> {
  return (await ok('tar', ['tzf', tgz], path.dirname(tgz))).split('\n').filter((l) => l !== '');
}

function newProject(name: string, type?: 'module'): string {
  const dir = tempDir(`spike-pkg-${name}-`);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, ...(type ? { type } : {}) }));
  return dir;
}

const INSTALL = ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

/** Every folder under node_modules that holds a package.json named `name`, and any native file. */
function scanInstall(root: string): { names: Set<string>; native: string[] } {
  const names = new Set<string>();
  const native: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.node') || e.name === 'binding.gyp') native.push(path.relative(root, full));
      else if (e.name === 'package.json' && path.basename(path.dirname(dir)) === 'node_modules') names.add(path.basename(dir));
      else if (e.name === 'package.json' && path.basename(path.dirname(path.dirname(dir))) === 'node_modules') {
        names.add(`${path.basename(path.dirname(dir))}/${path.basename(dir)}`);
      }
    }
  };
  walk(path.join(root, 'node_modules'));
  return { names, native };
}

/**
 * The packages the compiled files under `dir` load, by package name (`@scope/name` or `name`):
 * static and dynamic imports and re-exports as TypeScript's own scanner finds them in .js and
 * .d.ts files, plus `createRequire` calls (`requireCjs('pino')`). Node built-ins and relative
 * paths are left out. A specifier that is not a plain string (a template, a variable) fails:
 * what it loads could not be checked.
 */
function importedPackages(dir: string): Set<string> {
  const out = new Set<string>();
  const add = (s: string): void => {
    if (s.startsWith('.') || s.startsWith('/') || s.startsWith('node:')) return;
    out.add(s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);
  };
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (/\.(js|d\.ts)$/.test(e.name)) {
        const code = fs.readFileSync(full, 'utf8');
        for (const f of ts.preProcessFile(code, true, true).importedFiles) add(f.fileName);
        for (const m of code.matchAll(/\brequire[A-Za-z]*\(\s*(['"])([^'"\n]+)\1\s*\)/g)) add(m[2]!);
        assert.doesNotMatch(code, /\b(?:import|require[A-Za-z]*|resolve)\(\s*`/, `${full}: a module specifier that is not a plain string`);
      }
    }
  };
  walk(dir);
  return out;
}

const CONSUMER_TS = `import { NexusClient, NexusApiError, SdkUsageError, createSecretCache, watchSecret, type ClientOptions } from '@spike-ts/sdk';
const options: Partial<ClientOptions> = { urls: ['https://nexus.example:8553'] };
const check = (e: unknown): string | undefined => (e instanceof NexusApiError ? \`\${e.code} \${e.url ?? ''}\${e.route ?? ''}\` : e instanceof SdkUsageError ? e.code : undefined);
const cache = createSecretCache({ getSecret: async () => ({ k: 'v' }) }, { ttlMs: 1000 });
const value: string | undefined = (await cache.getSecret('apps/x'))['k'];
cache.close();
console.log(JSON.stringify({ connect: typeof NexusClient.connect, create: typeof NexusClient.create, watch: typeof watchSecret, urls: options.urls, check: check(undefined) ?? null, value }));
`;

// skipDefaultLibCheck: TypeScript's own lib.*.d.ts files are not checked again (about 2 s of CPU
// here); the SDK's declarations and @types/node still are, in full.
const CONSUMER_TSCONFIG = {
  compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: ['node'], outDir: 'out', skipDefaultLibCheck: true },
  files: ['main.ts'],
};

/** The docs that show the SDK's import line (each must show at least one). */
const DOCS_WITH_IMPORTS = ['README.md', 'docs/sdk.md', 'packages/sdk/README.md'];

/**
 * Every `import { … } from '@spike-ts/sdk…'` statement of a doc (one line or several, either
 * quote). Every import statement of the package must be one of them, so none is skipped.
 */
function sdkImportLines(doc: string): string[] {
  const text = fs.readFileSync(path.join(REPO_ROOT, doc), 'utf8');
  const found = [...text.matchAll(/^[ \t]*import\s+(?:type\s+)?\{[^}]*\}\s*from\s*(['"])@spike-ts\/sdk(?:\/[\w./-]+)?\1;?/gm)].map((m) => m[0].trim());
  const mentions = (text.match(/^[ \t]*import\b[^;]*?from\s*['"]@spike-ts\/sdk(?:\/[\w./-]+)?['"]/gm) ?? []).length;
  assert.ok(found.length > 0, `${doc} shows no import of @spike-ts/sdk`);
  assert.equal(found.length, mentions, `${doc}: an import of @spike-ts/sdk in a form this test does not read`);
  return found;
}

/** The local value names an import binds (`import type {…}` and `type X` entries bind none). */
function importedNames(statement: string): string[] {
  if (/^import\s+type\b/.test(statement)) return [];
  const braces = /\{([^}]*)\}/.exec(statement)?.[1] ?? '';
  return braces.split(',').map((n) => n.trim()).filter((n) => n !== '' && !n.startsWith('type ')).map((n) => n.split(/\s+as\s+/).pop()!);
}

async function sdkFlow(): Promise<void> {
  const dest = tempDir('spike-pkg-tgz-sdk-');
  const tgz = await pack(dest, ['-w', '@spike-ts/sdk']);
  const files = await tarList(tgz);
  for (const f of ['package/package.json', 'package/README.md', 'package/dist/sdk/public.js', 'package/dist/sdk/public.d.ts']) {
    assert.ok(files.includes(f), `SDK tarball lacks ${f}`);
  }
  assert.deepEqual(files.filter((f) => /\.test\.|\.ts$/.test(f) && !f.endsWith('.d.ts')), [], 'SDK tarball ships tests or TypeScript sources');
  assert.deepEqual(files.filter((f) => /^package\/dist\/(store|nexus|keeper|bootstrap|pilot|dev|agent|audit|ops)\//.test(f)), [], 'SDK tarball ships server code');

  const rootVersion = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  assert.ok(tgz.endsWith(`-${rootVersion}.tgz`), 'the SDK and the server package have different versions');

  const app = newProject('sdk-consumer', 'module');
  const typesNode = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string };
  await ok('npm', [...INSTALL, tgz, `@types/node@${typesNode.version}`], app);
  const { names, native } = scanInstall(app);
  assert.ok(names.has('@spike-ts/sdk'), 'the SDK is not installed');
  assert.deepEqual(FORBIDDEN_DEPS.filter((d) => names.has(d)), [], 'installing the SDK pulled a database driver, a native-build package or a gRPC library');
  assert.deepEqual(native, [], 'installing the SDK pulled a native module');

  fs.writeFileSync(path.join(app, 'main.ts'), CONSUMER_TS);
  // The import lines the docs show compile against the installed package, each in a file of its own.
  const docImports = DOCS_WITH_IMPORTS.flatMap((doc) => sdkImportLines(doc));
  docImports.forEach((line, i) => fs.writeFileSync(path.join(app, `doc-import-${i}.ts`), `${line}\nexport const used${i} = [${importedNames(line).join(', ')}];\n`));
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({ ...CONSUMER_TSCONFIG, files: ['main.ts', ...docImports.map((_, i) => `doc-import-${i}.ts`)] }));
  await ok(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], app);
  const out = JSON.parse(await ok(process.execPath, ['out/main.js'], app)) as Record<string, unknown>;
  assert.deepEqual(out, { connect: 'function', create: 'function', watch: 'function', urls: ['https://nexus.example:8553'], check: null, value: 'v' });

  // What the installed SDK imports is exactly what it declares: an undeclared package resolves only
  // when npm happens to hoist it (an isolated install, e.g. pnpm's, fails), a declared unused one
  // is installed for nothing.
  const sdkDir = path.join(app, 'node_modules', '@spike-ts', 'sdk');
  const declared = Object.keys((JSON.parse(fs.readFileSync(path.join(sdkDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {}).sort();
  assert.deepEqual([...importedPackages(path.join(sdkDir, 'dist'))].sort(), declared, 'the SDK\'s imports and its declared dependencies differ');

  const deep = await run(process.execPath, ['--input-type=module', '-e', "await import('@spike-ts/sdk/dist/sdk/client.js')"], app);
  assert.notEqual(deep.code, 0);
  assert.match(deep.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
}

async function serverFlow(): Promise<void> {
  const dest = tempDir('spike-pkg-tgz-server-');
  const tgz = await pack(dest, ['--ignore-scripts']);
  const files = await tarList(tgz);
  for (const f of ['package/package.json', 'package/README.md', 'package/dist/src/pilot/main.js', 'package/dist/src/nexus/main.js', ...BINS.map((b) => `package/bin/${b}.js`)]) {
    assert.ok(files.includes(f), `server tarball lacks ${f}`);
  }
  assert.deepEqual(files.filter((f) => /\.test\.js$|^package\/(src|test|bench)\/|^package\/dist\/(test|bench)\//.test(f)), [], 'server tarball ships tests or sources');
  assert.deepEqual(files.filter((f) => /\.tsbuildinfo$|^package\/dist\/cli\/inputs\.json$/.test(f)), [], 'server tarball ships build bookkeeping');

  const dir = newProject('server-install');
  const scripts = process.env['SPIKE_TEST_PACKAGE_SCRIPTS'] === '1' ? [] : ['--ignore-scripts'];
  await ok('npm', [...INSTALL, ...scripts, tgz], dir);
  const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  for (const bin of BINS) {
    const r = await run(path.join(dir, 'node_modules', '.bin', bin), ['--help'], dir);
    assert.equal(r.code, 0, `${bin} --help exited ${r.code}: ${r.stderr.slice(-2000)}`);
    assert.match(r.stdout + r.stderr, /usage/i, `${bin} --help printed no usage`);
  }
  for (const bin of BINS) {
    const v = await run(path.join(dir, 'node_modules', '.bin', bin), ['--version'], dir);
    assert.equal(v.code, 0, `${bin} --version exited ${v.code}: ${v.stderr.slice(-2000)}`);
    assert.equal(v.stdout.trim(), version, `${bin} --version does not read the installed package.json`);
  }
  // The install gives every file a new mtime: the installed commands still run from their bundles.
  const loader = pathToFileURL(path.join(dir, 'node_modules', 'spike-ts', 'bin', 'load-bundle.js')).href;
  const used = await run(process.execPath, ['--input-type=module', '-e',
    `const m = await import(${JSON.stringify(loader)}); process.stdout.write(JSON.stringify(${JSON.stringify(BINS)}.map((b) => m.bundleFor(b)?.file ?? null)))`], dir);
  const bundles = JSON.parse(used.stdout) as Array<string | null>;
  BINS.forEach((bin, i) => assert.equal(bundles[i], path.join(dir, 'node_modules', 'spike-ts', 'dist', 'cli', `${bin}.cjs`), `${bin} does not run from its bundle once installed`));
  // The server package exports the SDK at its root too (types shipped beside the code).
  assert.ok(files.includes('package/dist/src/sdk/public.d.ts'), 'server tarball lacks the SDK types');
  const root = await run(process.execPath, ['--input-type=module', '-e', "const m = await import('spike-ts'); process.stdout.write(typeof m.NexusClient)"], dir);
  assert.equal(root.stdout, 'function', `import 'spike-ts' failed: ${root.stderr.slice(-2000)}`);
  await installedStackServes(path.join(dir, 'node_modules', 'spike-ts'));
}

/**
 * The installed bins serve: the agent and Nexus (the memory backend: the SQLite driver's
 * native addon is not built under --ignore-scripts, and a memory Nexus needs no Keepers or
 * Bootstrap), started from the installed package, and the installed `spike` writes and reads
 * a secret over mTLS; then three installed Keepers start, fetch their SVIDs and report ready.
 * Bootstrap, which needs Nexus on a persistent backend, only answers `--help` here.
 */
async function installedStackServes(binRoot: string): Promise<void> {
  const stack = await Stack.start({ binRoot, backend: 'memory' });
  try {
    await stack.waitReady();
    const put = await stack.spike(['secret', 'put', 'pkg/check', 'k=installed']);
    assert.equal(put.code, 0, `installed spike secret put: ${put.stderr}`);
    const get = await stack.spike(['secret', 'get', 'pkg/check', 'k']);
    assert.equal(get.code, 0, `installed spike secret get: ${get.stderr}`);
    assert.equal(get.stdout.trim(), 'installed');
    await Promise.all([1, 2, 3].map((i) => stack.startKeeper(i)));
  } finally {
    await stack.stop();
  }
}

// Both flows start at once (npm spends most of its time waiting); each test awaits its own.
const flows = { sdk: sdkFlow(), server: serverFlow() };
for (const p of Object.values(flows)) p.catch(() => undefined);

test('package: @spike-ts/sdk installs from its tarball without native modules or database drivers, imports and type-checks', { timeout: STEP_TIMEOUT_MS * 2 }, async () => {
  await flows.sdk;
});

test('package: the server tarball holds dist/, installs in a fresh folder, its bins answer --help and serve', { timeout: STEP_TIMEOUT_MS * 2 }, async () => {
  await flows.server;
});

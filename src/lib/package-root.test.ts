import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { findPackageRoot, packageRoot } from './package-root.js';

const files = (map: Record<string, object>) => (file: string): string => {
  const v = map[file];
  if (v === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
  return JSON.stringify(v);
};
const PKG = { name: 'spike-ts', version: '1.2.3' };

test('package root: three folders above a compiled module (dist/src/<folder>), two above a source module (src/<folder>)', () => {
  assert.deepEqual(findPackageRoot('/opt/spike/dist/src/nexus', true, files({ '/opt/spike/package.json': PKG })), { dir: '/opt/spike', version: '1.2.3' });
  assert.deepEqual(findPackageRoot('/home/a/co/src/lib', false, files({ '/home/a/co/package.json': PKG })), { dir: '/home/a/co', version: '1.2.3' });
  assert.equal(findPackageRoot('/opt/spike/dist/src/nexus', true, files({ '/opt/spike/package.json': { name: 'other', version: '1.0.0' } })), undefined);
});

test('ATTACK package root: a spike-ts package.json in a folder above a checkout is never taken for the package (the addon is loaded from it)', () => {
  // A checkout at /tmp/co, run from src/ by a TypeScript loader: /tmp/package.json is anyone's.
  const planted = { '/tmp/package.json': PKG };
  assert.equal(findPackageRoot('/tmp/co/src/lib', false, files(planted)), undefined);
  assert.deepEqual(findPackageRoot('/tmp/co/src/lib', false, files({ ...planted, '/tmp/co/package.json': PKG })), { dir: '/tmp/co', version: '1.2.3' });
  // A source checkout in a folder named dist (…/dist/src/lib, run by a TypeScript loader) reads
  // like the compiled layout from the folder above: the module's kind decides, so it is not taken.
  assert.equal(findPackageRoot('/home/u/dist/src/lib', false, files({ '/home/u/package.json': PKG })), undefined);
  // A module anywhere else is not the package's.
  assert.equal(findPackageRoot('/tmp/x/y/z', true, files({ '/tmp/package.json': PKG, '/tmp/x/package.json': PKG })), undefined);
});

test('package root of this very module is this repository', () => {
  const root = packageRoot();
  assert.ok(root);
  assert.ok(path.isAbsolute(root.dir));
  assert.match(root.version, /^\d+\.\d+\.\d+/);
});

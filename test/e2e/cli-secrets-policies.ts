/**
 * `spike secret …` and `spike policy …` end to end: the
 * real CLI binary against a real stack (agent, Keepers, Nexus on SQLite and on PostgreSQL, bootstrap). Data only
 * on stdout; every error is one line on stderr with a non-zero exit (gaps B14). Also: a
 * workload SVID whose policy covers one subtree reads only those paths, through the SDK and
 * through the CLI (which leaves the decision to Nexus: no client-side role filter).
 *
 * One suite per backend (issue 8), each in its own test file (cli-secrets-policies.test.ts for
 * sqlite, cli-secrets-policies-postgres.test.ts): every `spike` call is a process start (~1 s,
 * several under load), and one file running both backends did not fit the per-file timeout on
 * a loaded machine. For the same reason, calls that do not depend on each other run concurrently.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Stack, e2eBackends, type E2eBackend } from '../helpers/stack.js';

const APP = 'spiffe://spike.ist/workload/cli-app';

/** Registers the suite for `backend`, unless SPIKE_E2E_BACKENDS leaves that backend out. */
export function cliSecretsPoliciesSuite(backend: E2eBackend): void {
  if (!e2eBackends().includes(backend)) return;
  let stack: Stack;
  describe(`backend: ${backend}`, () => {
    before(async () => {
      stack = await Stack.start({ backend, identities: { 'cli-app': APP } });
    });
    after(async () => {
      await stack?.stop();
    });

    type Run = { code: number | null; stdout: string; stderr: string };

    async function ok(args: string[], opts: { stdin?: Buffer; identity?: string } = {}): Promise<string> {
      const r = await stack.spike(args, opts);
      assert.equal(r.code, 0, `spike ${args.join(' ')} → ${r.code}: ${r.stderr}`);
      return r.stdout;
    }

    /** The error contract: non-zero exit, nothing on stdout, exactly one line on stderr. */
    function assertOneLineError(r: Run, what: string, pattern?: RegExp): void {
      assert.notEqual(r.code, 0, `${what}: exit 0`);
      assert.equal(r.stdout, '', `${what}: data on stdout`);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, `${what}: stderr ${JSON.stringify(r.stderr)}`);
      assert.match(lines[0]!, /^Error/, what);
      if (pattern) assert.match(lines[0]!, pattern, what);
    }

    test('CLI: secret put / get / get --version / get <key> / --json / list', async () => {
      assert.equal(await ok(['secret', 'put', 'secrets/db/creds', 'username=admin', 'password=s3cret']), 'OK: wrote secret secrets/db/creds (version 1).\n');
      const [human, username] = await Promise.all([
        ok(['secret', 'get', 'secrets/db/creds']),
        ok(['secret', 'get', 'secrets/db/creds', 'username']),
      ]);
      assert.deepEqual(human.split('\n').filter(Boolean).sort(), ['password: s3cret', 'username: admin']);
      assert.equal(username, 'admin\n');
      const puts = await Promise.all([
        ok(['secret', 'put', 'secrets/db/creds', 'username=admin', 'password=rotated=with=equals']),
        ok(['secret', 'put', 'secrets/app/token', 'token=t0k3n']),
      ]);
      assert.deepEqual(puts, ['OK: wrote secret secrets/db/creds (version 2).\n', 'OK: wrote secret secrets/app/token (version 1).\n']);
      const [current, v1, v1password, list, listJson] = await Promise.all([
        ok(['secret', 'get', 'secrets/db/creds', '--json']),
        ok(['secret', 'get', 'secrets/db/creds', '--version', '1', '--format', 'json']),
        ok(['secret', 'get', 'secrets/db/creds', 'password', '-v', '1']),
        ok(['secret', 'list']),
        ok(['secret', 'list', '--json']),
      ]);
      assert.deepEqual(JSON.parse(current), { password: 'rotated=with=equals', username: 'admin' });
      assert.deepEqual(JSON.parse(v1), { password: 's3cret', username: 'admin' });
      assert.equal(v1password, 's3cret\n');
      assert.equal(list, '- secrets/app/token\n- secrets/db/creds\n');
      assert.deepEqual(JSON.parse(listJson), ['secrets/app/token', 'secrets/db/creds']);
    });

    test('CLI / B19: delete, undelete without -v, metadata get (real version numbers)', async () => {
      // deleting the current version (2) makes version 1 current again (SPIKE semantics)
      assert.equal(await ok(['secret', 'delete', 'secrets/db/creds']), 'OK: deleted secret secrets/db/creds.\n');
      const [afterDelete, deletedV2] = await Promise.all([
        ok(['secret', 'get', 'secrets/db/creds', 'password']),
        stack.spike(['secret', 'get', 'secrets/db/creds', '-v', '2']),
      ]);
      assert.equal(afterDelete, 's3cret\n');
      assertOneLineError(deletedV2, 'get deleted v2', /not found/i);
      // undelete without -v restores the latest deleted version (SPIKE always answered 404: B19)
      assert.equal(await ok(['secret', 'undelete', 'secrets/db/creds']), 'OK: undeleted secret secrets/db/creds.\n');
      assert.equal(await ok(['secret', 'get', 'secrets/db/creds', 'password']), 'rotated=with=equals\n');
      assert.equal(await ok(['secret', 'delete', 'secrets/db/creds', '-v', '1']), 'OK: deleted secret secrets/db/creds (version 1).\n');
      const [deletedV1, metaJson, human] = await Promise.all([
        stack.spike(['secret', 'get', 'secrets/db/creds', '-v', '1']),
        ok(['secret', 'metadata', 'get', 'secrets/db/creds', '--json']),
        ok(['secret', 'metadata', 'get', 'secrets/db/creds']),
      ]);
      assertOneLineError(deletedV1, 'get deleted v1');
      const meta = JSON.parse(metaJson) as {
        versions: Record<string, { version: number; deletedTime: string | null }>;
        metadata: { currentVersion: number; oldestVersion: number; maxVersions: number };
      };
      assert.deepEqual(Object.keys(meta.versions).sort(), ['1', '2']);
      assert.equal(meta.versions['1']!.version, 1);
      assert.notEqual(meta.versions['1']!.deletedTime, null);
      assert.equal(meta.versions['2']!.deletedTime, null);
      assert.equal(meta.metadata.currentVersion, 2);
      assert.equal(meta.metadata.oldestVersion, 2);
      assert.match(human, /Current Version\s*:?\s*2/i);
      assert.match(human, /Max Versions\s*:?\s*10/i);
    });

    test('CLI: policy create / duplicate create / list / get / delete', async () => {
      const spec = ['--name', 'cli-app-read', '--spiffeid-pattern', '^spiffe://spike\\.ist/workload/cli-app$', '--path-pattern', '^secrets/app/.*$', '--permissions', 'read,list'];
      assert.match(await ok(['policy', 'create', ...spec]), /created/i);
      const [dup, list, listJson, byPattern, noMatch, gotJson, gotHuman] = await Promise.all([
        stack.spike(['policy', 'create', ...spec]),
        ok(['policy', 'list']),
        ok(['policy', 'list', '--json']),
        ok(['policy', 'list', '--json', '--path-pattern', '^secrets/app/.*$']),
        ok(['policy', 'list', '--json', '--path-pattern', 'secrets']),
        ok(['policy', 'get', 'cli-app-read', '--json']),
        ok(['policy', 'get', '--name', 'cli-app-read']),
      ]);
      assertOneLineError(dup, 'duplicate create', /exists/i);
      assert.match(list, /Name: cli-app-read/);
      // a policy's id is its name (what get/delete take); Nexus itself answers id "" (SPIKE's wire)
      assert.deepEqual(JSON.parse(listJson), [{ id: 'cli-app-read', name: 'cli-app-read' }]);
      assert.deepEqual(JSON.parse(byPattern), [{ id: 'cli-app-read', name: 'cli-app-read' }]);
      assert.deepEqual(JSON.parse(noMatch), []);
      const got = JSON.parse(gotJson) as Record<string, unknown>;
      assert.equal(got['name'], 'cli-app-read');
      assert.equal(got['spiffiedPattern'], '^spiffe://spike\\.ist/workload/cli-app$');
      assert.deepEqual(got['permissions'], ['read', 'list']);
      assert.match(gotHuman, /Path Pattern\s*:?\s*\^secrets\/app\/\.\*\$/);
      // delete asks; anything but y cancels (non-zero, one line), the policy stays
      const canceled = await stack.spike(['policy', 'delete', 'cli-app-read'], { stdin: Buffer.from('n\n') });
      assert.notEqual(canceled.code, 0);
      assert.equal(canceled.stdout, '');
      // stdin is a pipe (no echo of the answer): the prompt's line is ended before the outcome
      assert.match(canceled.stderr, /\(y\/N\): \nOperation canceled\.\n$/);
      assert.equal(JSON.parse(await ok(['policy', 'list', '--json'])).length, 1);
      // a temporary policy deleted with confirmation, then gone
      await ok(['policy', 'create', '--name', 'tmp', '--spiffeid-pattern', '^spiffe://spike\\.ist/x$', '--path-pattern', '^x$', '--permissions', 'read']);
      assert.match(await ok(['policy', 'delete', 'tmp'], { stdin: Buffer.from('y\n') }), /deleted/i);
      const [getDeleted, deleteMissing] = await Promise.all([stack.spike(['policy', 'get', 'tmp']), stack.spike(['policy', 'delete', 'tmp', '--yes'])]);
      assertOneLineError(getDeleted, 'get deleted policy', /not found/i);
      assertOneLineError(deleteMissing, 'delete missing policy', /not found/i);
    });

    test('issue 5 / 15: a workload SVID with a policy reads only its paths, through the SDK and through the CLI', async () => {
      // the policy from the previous test: read,list on ^secrets/app/.*$
      await ok(['secret', 'put', 'secrets/app/config', 'mode=prod']);
      const app = await stack.client('cli-app');
      assert.deepEqual({ ...(await app.getSecret('secrets/app/token')) }, { token: 't0k3n' });
      assert.deepEqual(await app.listSecrets(), ['secrets/app/config', 'secrets/app/token']);
      await assert.rejects(app.getSecret('secrets/db/creds'), (e: { code?: string }) => e.code === 'access_unauthorized');
      await assert.rejects(app.getSecret('secrets/db/missing'), (e: { code?: string }) => e.code === 'access_unauthorized');
      await assert.rejects(app.putSecret('secrets/app/token', { token: 'x' }), (e: { code?: string }) => e.code === 'access_unauthorized');
      // the CLI does not pre-filter by role: Nexus decides by the policy
      const [asApp, appList, appDenied, appWrite] = await Promise.all([
        ok(['secret', 'get', 'secrets/app/token', 'token'], { identity: 'cli-app' }),
        ok(['secret', 'list', '--json'], { identity: 'cli-app' }),
        stack.spike(['secret', 'get', 'secrets/db/creds'], { identity: 'cli-app' }),
        stack.spike(['secret', 'put', 'secrets/app/token', 'token=x'], { identity: 'cli-app' }),
      ]);
      assert.equal(asApp, 't0k3n\n');
      assert.deepEqual(JSON.parse(appList), ['secrets/app/config', 'secrets/app/token']);
      assertOneLineError(appDenied, 'CLI as workload, outside its policy', /^Error: Unauthorized access\.$/);
      assertOneLineError(appWrite, 'CLI as workload, no write permission', /^Error: Unauthorized access\.$/);
      // removing the policy takes effect on the very next request
      await ok(['policy', 'delete', 'cli-app-read', '--yes']);
      await assert.rejects(app.getSecret('secrets/app/token'), (e: { code?: string }) => e.code === 'access_unauthorized');
    });

    test('B14 / D15: errors are one stderr line and a non-zero exit', async () => {
      const cases: Array<[string[], string, RegExp?]> = [
        [['secret', 'get', 'secrets/none'], 'missing secret', /^Error: not found: secrets\/none\.$/],
        [['secret', 'put', 'bad path', 'k=v'], 'invalid path', /^Error: Invalid secret path: character 4 is not allowed/],
        [['secret', 'put', 'secrets/../x', 'k=v'], 'dot-dot path', /^Error: Invalid secret path: it has a '\.' or '\.\.' segment\.$/],
        [['secret', 'get', 'secrets/db/creds', '-v', 'x'], 'bad version'],
        [['policy', 'create', '--name', 'p', '--spiffeid-pattern', '^spiffe://x$', '--path-pattern', '^x$', '--permissions', 'admin'], 'bad permission'],
        [['policy', 'create', '--name', 'p', '--spiffeid-pattern', '^spiffe://x$', '--path-pattern', '(a)\\1', '--permissions', 'read'], 'pattern that does not compile', /^Error: Invalid --path-pattern: it does not compile \(invalid escape sequence at character 4: `\\1`\)\.$/],
        [['policy', 'get', 'nope'], 'missing policy', /^Error: not found: policy nope\.$/],
      ];
      const runs = await Promise.all(cases.map(([args]) => stack.spike(args)));
      cases.forEach(([, what, pattern], i) => assertOneLineError(runs[i]!, what, pattern));
      // nothing above was stored
      const [secrets, policies] = await Promise.all([ok(['secret', 'list', '--json']), ok(['policy', 'list', '--json'])]);
      assert.deepEqual(JSON.parse(secrets), ['secrets/app/config', 'secrets/app/token', 'secrets/db/creds']);
      assert.deepEqual(JSON.parse(policies), []);
    });
  });
}

/**
 * P4 `authz-matrix` over real processes and real mTLS (spike-agent SVIDs, Keepers, Nexus on
 * SQLite and on PostgreSQL, bootstrap): every identity in authz-matrix.ts × every route and action, checked
 * against the checked-in table; afterwards state is read back to prove denied calls changed
 * nothing. Also: another trust domain's superuser is refused at the TLS handshake (TLS-01
 * style), by a second spike-agent for `other.org`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { goJsonString } from '../../src/http/index.js';
import { ERROR_SHAPES } from '../../src/protocol/index.js';
import { WorkloadX509Source, svidChainPem, svidPrivateKeyPem } from '../../src/spiffe/index.js';
import { binPath } from '../helpers/bin.js';
import { Stack, e2eBackends } from '../helpers/stack.js';
import { COLUMNS, EXPECTED, EXTRA_IDENTITIES, FOREIGN_COLUMNS, MATRIX_POLICIES, type Cell, type Column } from './authz-matrix.js';
import { type RawClient, type RawReply, rawClient } from './secrets-helpers.js';

let stack: Stack;
const clients = new Map<string, RawClient>();
const b64 = (n: number, fill = 0): string => Buffer.alloc(n, fill).toString('base64');

// One suite, every backend (issue 8): sqlite, then postgres (a throw-away cluster per stack).
for (const backend of e2eBackends()) {
  describe(`backend: ${backend}`, () => {
    before(async () => {
      stack = await Stack.start({ backend, identities: EXTRA_IDENTITIES });
      for (const id of Object.keys(EXPECTED)) clients.set(id, await rawClient(stack, id));
      const pilot = clients.get('pilot')!;
      for (const p of MATRIX_POLICIES) assert.equal((await pilot.post('/v1/acl/policy', p)).status, 200);
      for (const id of Object.keys(EXPECTED)) {
        for (const n of ['1', '2']) assert.equal((await pilot.post('/v1/store/secrets', { path: `matrix/${id}`, values: { who: id, n } })).status, 200);
        const victim = { name: `victim-${id}`, spiffeidPattern: '^spiffe://spike\\.ist/workload/victim$', pathPattern: '^victim$', permissions: ['read'] };
        assert.equal((await pilot.post('/v1/acl/policy', victim)).status, 200);
      }
      assert.equal((await pilot.post('/v1/store/secrets', { path: 'hidden/x', values: { k: 'v' } })).status, 200);
    });

    after(async () => {
      for (const c of clients.values()) await c.close().catch(() => undefined);
      await stack?.stop();
    });

    function requestFor(col: Column, id: string): { route: string; body: unknown; method?: string } {
      const path = `matrix/${id}`;
      switch (col) {
        case 'secret.put': return { route: '/v1/store/secrets', body: { path, values: { who: id, n: '3' } } };
        case 'secret.get': return { route: '/v1/store/secrets?action=get', body: { path } };
        case 'secret.get.v1': return { route: '/v1/store/secrets?action=get', body: { path, version: 1 } };
        case 'secret.metadata': return { route: '/v1/store/secrets/metadata?action=get', body: { path } };
        case 'secret.list': return { route: '/v1/store/secrets?action=list', body: {} };
        case 'secret.delete': return { route: '/v1/store/secrets?action=delete', body: { path, versions: [] } };
        case 'secret.undelete': return { route: '/v1/store/secrets?action=undelete', body: { path, versions: [] } };
        case 'secret.destroy': return { route: '/v1/store/secrets?action=destroy', body: { path, versions: [1] } };
        case 'policy.put': return { route: '/v1/acl/policy', body: { name: `new-${id}`, spiffeidPattern: '^spiffe://spike\\.ist/workload/nothing$', pathPattern: '^nothing$', permissions: ['read'] } };
        case 'policy.get': return { route: '/v1/acl/policy?action=get', body: { id: `victim-${id}` } };
        case 'policy.list': return { route: '/v1/acl/policy?action=list', body: {} };
        case 'policy.delete': return { route: '/v1/acl/policy?action=delete', body: { id: `victim-${id}` } };
        case 'cipher.encrypt': return { route: '/v1/cipher/encrypt', body: { plaintext: 'aGk=' } };
        case 'cipher.decrypt': return { route: '/v1/cipher/decrypt', body: { version: 1, nonce: b64(12), ciphertext: b64(32) } };
        case 'operator.recover': return { route: '/v1/operator/recover', body: {} };
        case 'operator.restore': return { route: '/v1/operator/restore', body: { id: 1, shard: Array.from({ length: 32 }, () => 7) } };
        case 'bootstrap.verify': return { route: '/v1/bootstrap/verify', body: { nonce: b64(12), ciphertext: b64(32) } };
        case 'audit.hash': return { route: '/v1/audit/hash', body: { path } };
        case 'audit.verify': return { route: '/v1/audit/verify', body: { entries: ['{"seq":1,"mac":null}'] } };
        case 'operator.accept_rollback': return { route: '/v1/operator/accept-rollback', body: {} };
        case 'unknown.route': return { route: '/v1/store/keep', body: {} };
        case 'wrong.method': return { route: '/v1/store/secrets', body: '', method: 'GET' };
      }
    }

    const SHAPE_401: Partial<Record<Column, string>> = {
      'secret.put': goJsonString(ERROR_SHAPES.plain('access_unauthorized')),
      'secret.get': goJsonString(ERROR_SHAPES.secretGet('access_unauthorized')),
      'secret.get.v1': goJsonString(ERROR_SHAPES.secretGet('access_unauthorized')),
      'secret.metadata': goJsonString(ERROR_SHAPES.secretMetadata('access_unauthorized')),
      'secret.list': goJsonString(ERROR_SHAPES.secretList('access_unauthorized')),
      'secret.delete': goJsonString(ERROR_SHAPES.plain('access_unauthorized')),
      'secret.undelete': goJsonString(ERROR_SHAPES.plain('access_unauthorized')),
      'secret.destroy': goJsonString(ERROR_SHAPES.plain('access_unauthorized')),
      'policy.put': goJsonString(ERROR_SHAPES.plain('access_unauthorized')),
      'policy.get': goJsonString(ERROR_SHAPES.policyGet('access_unauthorized')),
      'policy.list': goJsonString(ERROR_SHAPES.policyList('access_unauthorized')),
      'policy.delete': goJsonString(ERROR_SHAPES.plain('access_unauthorized')),
      'audit.hash': goJsonString(ERROR_SHAPES.plain('access_unauthorized')),
      'audit.verify': goJsonString(ERROR_SHAPES.plain('access_unauthorized')),
      'operator.accept_rollback': goJsonString(ERROR_SHAPES.plain('access_unauthorized')),
    };

    const ERR_OF: Record<number, string> = { 400: 'api_bad_request', 401: 'access_unauthorized', 404: 'api_not_found' };

    const isUnknownRoute = (r: RawReply): boolean =>
      r.status === 400 && (r.json as { message?: string } | undefined)?.message === 'unknown route';

    test('P4 / POL-01 / POL-16 / POL-21 / P5: authorisation matrix, every identity × every route (checked-in table)', async (t) => {
      // Foreign modules (cipher/operator/bootstrap) not served yet are reported, not silently passed.
      const served = new Map<Column, boolean>();
      for (const col of FOREIGN_COLUMNS) {
        const { route, body } = requestFor(col, 'app-none');
        served.set(col, !isUnknownRoute(await clients.get('app-none')!.post(route, body)));
      }
      const missing = [...served].filter(([, s]) => !s).map(([c]) => c);
      if (missing.length > 0) t.diagnostic(`routes not served by this build, columns skipped: ${missing.join(', ')}`);

      let cells = 0;
      const failures: string[] = [];
      for (const [id, row] of Object.entries(EXPECTED)) {
        const c = clients.get(id)!;
        for (const col of COLUMNS) {
          if (served.get(col) === false) continue;
          const want: Cell = row[col];
          const { route, body, method } = requestFor(col, id);
          const r = await c.post(route, body, method === undefined ? {} : { method });
          cells++;
          // Never print foreign bodies (recover answers carry shares); our bodies hold no secrets here.
          const shown = FOREIGN_COLUMNS.has(col) ? `err=${String((r.json as { err?: unknown } | undefined)?.err)}` : r.body.slice(0, 120);
          const where = `${id} × ${col}: got ${r.status} ${shown}`;
          if (want === 'allow') {
            if (r.status === 401 || isUnknownRoute(r)) failures.push(`${where} (want allow)`);
            continue;
          }
          if (r.status !== want) {
            failures.push(`${where} (want ${want})`);
            continue;
          }
          if (want !== 200) {
            const err = (r.json as { err?: string } | undefined)?.err;
            if (err !== ERR_OF[want]) failures.push(`${where} (want err ${ERR_OF[want]})`);
            const shape = SHAPE_401[col];
            if (want === 401 && shape !== undefined && r.body !== shape) failures.push(`${where} (want body ${shape})`);
          }
        }
      }
      assert.deepEqual(failures, [], `${failures.length} of ${cells} cells differ`);
      assert.ok(cells >= 200, `only ${cells} cells ran`);
    });

    test('P4: denied calls changed nothing; allowed ones did what they say (read back by Pilot)', async () => {
      const pilot = clients.get('pilot')!;
      for (const [id, row] of Object.entries(EXPECTED)) {
        const meta = await pilot.post('/v1/store/secrets/metadata?action=get', { path: `matrix/${id}` });
        assert.equal(meta.status, 200, id);
        const versions = Object.keys((meta.json as { versions: Record<string, unknown> }).versions).map(Number).sort((a, b) => a - b);
        const wrote = row['secret.put'] === 200;
        const destroyed = row['secret.destroy'] === 200;
        const expected = [1, 2, ...(wrote ? [3] : [])].filter((v) => !(destroyed && v === 1));
        assert.deepEqual(versions, expected, `versions of matrix/${id}`);
        const cur = await pilot.post('/v1/store/secrets?action=get', { path: `matrix/${id}` });
        assert.deepEqual(cur.json, { data: { who: id, n: wrote ? '3' : '2' } }, id);
        const victim = await pilot.post('/v1/acl/policy?action=get', { id: `victim-${id}` });
        assert.equal(victim.status, row['policy.delete'] === 200 ? 404 : 200, `victim-${id}`);
        const created = await pilot.post('/v1/acl/policy?action=get', { id: `new-${id}` });
        assert.equal(created.status, row['policy.put'] === 200 ? 200 : 404, `new-${id}`);
      }
    });

    test('POL-21 / A5: list answers are filtered per caller', async () => {
      const keys = async (id: string): Promise<string[]> => ((await clients.get(id)!.post('/v1/store/secrets?action=list', {})).json as { keys: string[] }).keys;
      const matrixPaths = Object.keys(EXPECTED).map((id) => `matrix/${id}`).sort();
      assert.deepEqual(await keys('app-list'), matrixPaths);
      assert.deepEqual(await keys('acl-admin'), []);
      const all = await keys('pilot');
      assert.ok(all.includes('hidden/x'));
      assert.deepEqual(all, [...all].sort());
      assert.deepEqual(await keys('recover-x'), all);
    });

    test('TLS-01 / P4: a superuser SVID from another trust domain (other.org) is refused at the handshake', async (t) => {
      const dir = fs.mkdtempSync(path.join(stack.dir, 'other-'));
      const agent: ChildProcess = spawn(process.execPath, [binPath('spike-agent'), '--trust-domain', 'other.org', '--state-dir', path.join(dir, 'state'),
        '--socket-dir', path.join(dir, 'sockets'), '--svid-ttl', '1h', '--identity', 'pilot=spiffe://other.org/spike/pilot/role/superuser'], { stdio: ['ignore', 'pipe', 'pipe'] });
      t.after(() => { agent.kill('SIGKILL'); });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const on = (c: Buffer): void => { out += c.toString(); if (out.includes('spike-agent ready')) resolve(); };
        agent.stdout!.on('data', on);
        agent.stderr!.on('data', on);
        agent.once('exit', (code) => reject(new Error(`other.org agent exited ${code}: ${out}`)));
      });
      const src = await WorkloadX509Source.open({ endpoint: `unix://${path.join(dir, 'sockets', 'pilot.sock')}`, timeoutMs: 15_000 });
      try {
        const svid = src.getX509Svid();
        assert.equal(svid.id.toString(), 'spiffe://other.org/spike/pilot/role/superuser');
        const port = Number(new URL(stack.nexusUrl).port);
        // The client deliberately skips verifying the server, so only the server's decision counts.
        const outcome = await new Promise<string>((resolve) => {
          const sock = tls.connect({ host: '127.0.0.1', port, cert: svidChainPem(svid), key: svidPrivateKeyPem(svid), rejectUnauthorized: false, servername: 'localhost' });
          let got = '';
          sock.on('secureConnect', () => {
            sock.write('POST /v1/store/secrets?action=list HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
          });
          sock.on('data', (d: Buffer) => { got += d.toString('latin1'); });
          sock.on('error', (e) => resolve(`error:${(e as NodeJS.ErrnoException).code ?? e.message}`));
          sock.on('close', () => resolve(got === '' ? 'closed' : `response:${got.slice(0, 40)}`));
          setTimeout(() => { sock.destroy(); resolve(got === '' ? 'timeout' : `response:${got.slice(0, 40)}`); }, 30_000).unref();
        });
        assert.ok(!outcome.startsWith('response:'), `server answered an HTTP response: ${outcome}`);
        assert.notEqual(outcome, 'timeout');
      } finally {
        src.close();
      }
      // and the same request with a spike.ist superuser works (the refusal is about the trust domain)
      assert.equal((await clients.get('pilot')!.post('/v1/store/secrets?action=list', {})).status, 200);
    });
  });
}

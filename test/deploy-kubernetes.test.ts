/**
 * deploy/kubernetes/ is valid against the Kubernetes API schemas and consistent with SPIKE:
 *
 * - every built-in object in every manifest passes `kubernetes-models`' `.validate()` (the
 *   OpenAPI schema of its kind: required fields, types, enums, formats; the library does not
 *   reject unknown fields, so the checks below cover the fields that matter here);
 * - a deliberately broken object fails that validation (the check can fail);
 * - every SPIKE container mounts the Workload API through the SPIFFE CSI driver and points
 *   SPIFFE_ENDPOINT_SOCKET into that mount, sets resource requests and a memory limit, and
 *   Nexus and Keepers probe /healthz (liveness) and /readyz (readiness) on a declared port;
 * - every SPIKE_* variable the manifests set is documented in docs/configuration.md;
 * - every ClusterSPIFFEID template is `spiffe://{{ .TrustDomain }}` + a SPIKE role path.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { Namespace, ConfigMap, Service, ServiceAccount, Secret } from 'kubernetes-models/v1';
import { StatefulSet, Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { ROLE_PATHS } from '../src/protocol/index.js';
import { ALLOCATOR_ENV } from '../src/lib/index.js';
import { REPO_ROOT } from './helpers/bin.js';

const DIR = path.join(REPO_ROOT, 'deploy', 'kubernetes');

interface Validatable {
  validate(): void;
}
type Ctor = new (data: never) => Validatable;
const KINDS: Record<string, Ctor> = {
  'v1/Namespace': Namespace as unknown as Ctor,
  'v1/ConfigMap': ConfigMap as unknown as Ctor,
  'v1/Service': Service as unknown as Ctor,
  'v1/ServiceAccount': ServiceAccount as unknown as Ctor,
  'v1/Secret': Secret as unknown as Ctor,
  'apps/v1/StatefulSet': StatefulSet as unknown as Ctor,
  'apps/v1/Deployment': Deployment as unknown as Ctor,
  'batch/v1/Job': Job as unknown as Ctor,
};

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

function yamlFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return yamlFiles(p);
    return e.name.endsWith('.yaml') ? [p] : [];
  });
}

const manifests: { file: string; obj: Obj }[] = yamlFiles(DIR).flatMap((file) =>
  parseAllDocuments(fs.readFileSync(file, 'utf8')).map((doc) => {
    assert.equal(doc.errors.length, 0, `${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return { file: path.relative(REPO_ROOT, file), obj: doc.toJS() as Obj };
  }),
);

interface Container {
  name: string;
  command?: string[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  volumes?: { name: string; csi?: { driver: string; readOnly?: boolean } }[];
}
const podSpec = (o: Obj): PodSpec | undefined => (o.spec?.['template'] as { spec?: PodSpec } | undefined)?.spec;
const workloads = manifests.filter((m) => podSpec(m.obj) !== undefined);
const configMap = manifests.find((m) => m.obj.kind === 'ConfigMap' && m.obj.metadata.name === 'spike-config')!.obj;

test('kubernetes manifests: every built-in object passes its kubernetes-models schema validation', () => {
  const seen: string[] = [];
  for (const { file, obj } of manifests) {
    const key = `${obj.apiVersion}/${obj.kind}`;
    if (obj.apiVersion === 'spire.spiffe.io/v1alpha1' && obj.kind === 'ClusterSPIFFEID') continue; // a CRD: checked below
    const K = KINDS[key];
    assert.ok(K, `${file}: no schema for ${key} (add it to KINDS)`);
    assert.doesNotThrow(() => new K(obj as never).validate(), `${file}: ${key} ${obj.metadata.name}`);
    seen.push(`${obj.kind}/${obj.metadata.name}`);
  }
  for (const want of ['StatefulSet/spike-nexus', 'StatefulSet/spike-keeper', 'Job/spike-bootstrap', 'Deployment/spike-nexus']) assert.ok(seen.includes(want), want);
});

test('kubernetes manifests: schema validation rejects a broken object (the check above can fail)', () => {
  const nexus = structuredClone(manifests.find((m) => m.obj.kind === 'StatefulSet' && m.obj.metadata.name === 'spike-nexus')!.obj);
  (nexus.spec as Record<string, unknown>)['replicas'] = '1';
  assert.throws(() => new StatefulSet(nexus as never).validate(), /replicas must be integer/);
  delete (podSpec(nexus)!.containers[0] as Partial<Container>).name;
  assert.throws(() => new StatefulSet(nexus as never).validate(), /required property/);
});

test('kubernetes manifests: SPIKE pods get the Workload API from csi.spiffe.io, have resources, and probe the operations listener', () => {
  const socket = configMap.data!['SPIFFE_ENDPOINT_SOCKET']!;
  assert.match(socket, /^unix:\/\/\//);
  for (const { file, obj } of workloads) {
    const spec = podSpec(obj)!;
    const csi = spec.volumes?.find((v) => v.csi?.driver === 'csi.spiffe.io');
    assert.ok(csi && csi.csi!.readOnly === true, `${file}: a read-only csi.spiffe.io volume`);
    for (const c of spec.containers) {
      const mount = c.volumeMounts?.find((m) => m.name === csi.name);
      assert.ok(mount && socket.startsWith(`unix://${mount.mountPath}/`), `${file}/${c.name}: SPIFFE_ENDPOINT_SOCKET inside the CSI mount`);
      assert.ok(c.envFrom?.some((e) => e.configMapRef?.name === 'spike-config'), `${file}/${c.name}: spike-config`);
      assert.ok(c.resources?.requests?.['memory'] && c.resources.requests['cpu'] && c.resources.limits?.['memory'], `${file}/${c.name}: requests and a memory limit`);
      const bin = c.command?.[1] ?? '';
      if (/spike-(nexus|keeper)\.js$/.test(bin)) {
        const opsVar = bin.endsWith('spike-nexus.js') ? 'SPIKE_NEXUS_OPS_ADDR' : 'SPIKE_KEEPER_OPS_ADDR';
        const ops = c.env?.find((e) => e.name === opsVar)?.value ?? '';
        const port = Number(/:(\d+)$/.exec(ops)?.[1]);
        assert.ok(ops.startsWith('0.0.0.0:'), `${file}/${c.name}: ${opsVar} reachable by the kubelet`);
        assert.equal(c.livenessProbe?.httpGet?.path, '/healthz', `${file}/${c.name}: liveness /healthz`);
        assert.equal(c.readinessProbe?.httpGet?.path, '/readyz', `${file}/${c.name}: readiness /readyz`);
        // issue 17: the servers return memory to the system after bursts of handshakes
        for (const [k, v] of Object.entries(ALLOCATOR_ENV)) assert.equal(c.env?.find((e) => e.name === k)?.value, v, `${file}/${c.name}: ${k}=${v}`);
        for (const probe of [c.livenessProbe!, c.readinessProbe!]) {
          const p = c.ports?.find((x) => x.name === probe.httpGet!.port || x.containerPort === probe.httpGet!.port);
          assert.equal(p?.containerPort, port, `${file}/${c.name}: probes hit the operations port ${port}`);
        }
      }
    }
  }
});

test('kubernetes manifests: every SPIKE_ variable they set is documented in docs/configuration.md', () => {
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
  const names = new Set<string>(Object.keys(configMap.data!));
  for (const { obj } of workloads) for (const c of podSpec(obj)!.containers) for (const e of c.env ?? []) names.add(e.name);
  for (const n of names) {
    const family = n.startsWith('SPIKE_TRUST_ROOT_') ? `\`_${n.slice('SPIKE_TRUST_ROOT_'.length)}\`` : undefined;
    assert.ok(doc.includes(n) || (family !== undefined && doc.includes(family)), `${n} is not in docs/configuration.md`);
  }
});

test('kubernetes manifests: every ClusterSPIFFEID template is a SPIKE role path in the trust domain', () => {
  const ids = manifests.filter((m) => m.obj.kind === 'ClusterSPIFFEID');
  assert.ok(ids.length >= 3);
  const paths = Object.values(ROLE_PATHS) as string[];
  for (const { file, obj } of ids) {
    const t = String(obj.spec?.['spiffeIDTemplate'] ?? '');
    const prefix = 'spiffe://{{ .TrustDomain }}';
    assert.ok(t.startsWith(prefix), `${file}: ${obj.metadata.name} in the cluster trust domain`);
    const p = t.slice(prefix.length);
    assert.ok(paths.some((r) => p === r || p.startsWith(`${r}/`)), `${file}: ${obj.metadata.name}: ${p} is not a SPIKE role path`);
    const sel = obj.spec?.['podSelector'] as { matchLabels?: Record<string, string> } | undefined;
    assert.ok(sel?.matchLabels?.['app.kubernetes.io/name'], `${file}: ${obj.metadata.name} selects pods by name label`);
  }
});

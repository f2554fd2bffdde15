/** The dev CA: file modes, reuse across restarts, and that issued SVIDs are proper X.509-SVIDs. */
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { DevCa, DevCaError, ensurePrivateDir } from './ca.js';
import { SpiffeId, TrustDomain } from '../spiffe/id.js';
import { X509Bundle, X509BundleSet } from '../spiffe/bundle.js';
import { parseX509Svid } from '../spiffe/svid.js';
import { verifyX509Svid } from '../spiffe/verify.js';

const TD = TrustDomain.parse('spike.ist');
const ID = SpiffeId.parse('spiffe://spike.ist/spike/nexus');

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'agent-ca-'));
}

test('CA files: folder 0700, key 0600 PKCS#8 DER, reused on the next start', async () => {
  const root = tmp();
  try {
    const dir = path.join(root, 'state');
    const ca1 = await DevCa.loadOrCreate(dir, TD);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, 'ca.key')).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(path.join(dir, 'ca.key'))[0], 0x30, 'key file is DER, not PEM text');
    const ca2 = await DevCa.loadOrCreate(dir, TD);
    assert.ok(ca1.bundleDer().equals(ca2.bundleDer()), 'the same CA is reused');
    assert.equal(fs.statSync(path.join(dir, 'agent-state.marker')).mode & 0o777, 0o600, 'the folder carries our marker');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a stored key nobody but us could have written is required: planted or widened keys are refused, not chmod-ed', async () => {
  const root = tmp();
  try {
    const dir = path.join(root, 'state');
    await DevCa.loadOrCreate(dir, TD);
    const key = path.join(dir, 'ca.key');
    const refused = (code: string, re: RegExp) => (e: unknown) => e instanceof DevCaError && e.code === code && re.test(e.message);
    fs.chmodSync(key, 0o644);
    await assert.rejects(DevCa.loadOrCreate(dir, TD), refused('agent_ca_untrusted', /readable or writable by others/));
    assert.equal(fs.statSync(key).mode & 0o777, 0o644, 'not chmod-ed');
    fs.chmodSync(key, 0o600);
    fs.chmodSync(dir, 0o755);
    await assert.rejects(DevCa.loadOrCreate(dir, TD), refused('agent_state_dir_untrusted', /it is not private to you \(mode must be 0700\)/));
    assert.equal(fs.statSync(dir).mode & 0o777, 0o755, 'not chmod-ed');
    fs.chmodSync(dir, 0o700);
    if (process.getuid?.() === 0) {
      fs.chownSync(key, 65534, 65534);
      await assert.rejects(DevCa.loadOrCreate(dir, TD), refused('agent_ca_untrusted', /owned by another user/));
      fs.chownSync(key, 0, 0);
    }
    const real = path.join(root, 'elsewhere.key');
    fs.renameSync(key, real);
    fs.symlinkSync(real, key);
    await assert.rejects(DevCa.loadOrCreate(dir, TD), refused('agent_ca_untrusted', /not a regular file/));
    fs.unlinkSync(key);
    fs.renameSync(real, key);
    await DevCa.loadOrCreate(dir, TD); // back to normal
    // A checkout with umask 077: folder 0700, key 0600, ours by owner, but no marker for this folder.
    const planted = path.join(root, 'planted');
    fs.mkdirSync(planted, { mode: 0o700 });
    for (const f of ['ca.key', 'ca.crt']) fs.copyFileSync(path.join(dir, f), path.join(planted, f));
    fs.chmodSync(path.join(planted, 'ca.key'), 0o600);
    await assert.rejects(DevCa.loadOrCreate(planted, TD), refused('agent_state_dir_untrusted', /has no agent-state\.marker/));
    fs.copyFileSync(path.join(dir, 'agent-state.marker'), path.join(planted, 'agent-state.marker'));
    fs.chmodSync(path.join(planted, 'agent-state.marker'), 0o600);
    await assert.rejects(DevCa.loadOrCreate(planted, TD), refused('agent_state_dir_untrusted', /does not belong to this folder/));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a stored CA of another trust domain is replaced; a key that does not match the cert is refused', async () => {
  const dir = tmp();
  try {
    const a = await DevCa.loadOrCreate(dir, TD);
    const b = await DevCa.loadOrCreate(dir, TrustDomain.parse('other.org'));
    assert.ok(!a.bundleDer().equals(b.bundleDer()));
    const other = tmp();
    try {
      await DevCa.loadOrCreate(other, TrustDomain.parse('other.org'));
      fs.copyFileSync(path.join(other, 'ca.key'), path.join(dir, 'ca.key'));
      await assert.rejects(DevCa.loadOrCreate(dir, TrustDomain.parse('other.org')), (e: unknown) => e instanceof DevCaError && e.code === 'agent_ca_invalid');
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
    fs.writeFileSync(path.join(dir, 'ca.key'), Buffer.from('not a key'));
    await assert.rejects(DevCa.loadOrCreate(dir, TrustDomain.parse('other.org')), DevCaError);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('issued SVIDs verify against the CA bundle and have SVID-shaped extensions', async () => {
  const dir = tmp();
  try {
    const ca = await DevCa.loadOrCreate(dir, TD);
    const issued = await ca.issueSvid(ID, 60_000);
    const bundles = new X509BundleSet([X509Bundle.fromDer(TD, ca.bundleDer())]);
    assert.ok(verifyX509Svid([issued.certChainDer], bundles).equals(ID));
    const svid = parseX509Svid(issued.certChainDer, issued.privateKeyPkcs8);
    assert.ok(svid.id.equals(ID));

    const cert = new x509.X509Certificate(issued.certChainDer);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    assert.equal(bc?.ca, false);
    assert.equal(bc?.critical, true);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!.usages;
    assert.ok(ku & x509.KeyUsageFlags.digitalSignature);
    assert.equal(ku & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign), 0);
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages;
    assert.deepEqual([...eku].sort(), [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth].sort());
    const uris = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.filter((n) => n.type === 'url');
    assert.deepEqual(uris.map((u) => u.value), [ID.toString()]);
    const alg = cert.publicKey.algorithm as { name: string; namedCurve?: string };
    assert.equal(alg.namedCurve, 'P-256');
    const ttl = issued.notAfter.getTime() - Date.now();
    assert.ok(ttl > 30_000 && ttl <= 60_000, `lifetime ${ttl}`); // the lower bound leaves room for a loaded machine

    const again = await ca.issueSvid(ID, 60_000);
    assert.notEqual(again.serialNumber, issued.serialNumber, 'new serial per issuance');
    assert.ok(!again.privateKeyPkcs8.equals(issued.privateKeyPkcs8), 'new key per issuance');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the CA refuses IDs of other trust domains and bare trust-domain IDs', async () => {
  const dir = tmp();
  try {
    const ca = await DevCa.loadOrCreate(dir, TD);
    await assert.rejects(ca.issueSvid(SpiffeId.parse('spiffe://evil.org/spike/nexus'), 60_000), DevCaError);
    await assert.rejects(ca.issueSvid(SpiffeId.parse('spiffe://spike.ist'), 60_000), DevCaError);
    await assert.rejects(ca.issueSvid(ID, 0), DevCaError);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('attack-agent-socket-dir-swap: a socket folder below one another user owns or may write is refused, before anything is made in it', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-agent-dir-'));
  try {
    fs.chmodSync(base, 0o755);
    const shared = path.join(base, 'spike');
    fs.mkdirSync(shared, { mode: 0o777 });
    fs.chmodSync(shared, 0o777); // as another user's `mkdir /tmp/spike; chmod 777` would leave it
    const refused = (e: unknown): boolean => e instanceof DevCaError && e.code === 'agent_state_dir_untrusted' && /writable by group or others/.test(e.message);
    assert.throws(() => ensurePrivateDir(path.join(shared, 'sockets')), refused);
    assert.equal(fs.existsSync(path.join(shared, 'sockets')), false, 'nothing made in it');
    fs.chmodSync(shared, 0o755);
    if (process.getuid?.() === 0) {
      // Another user made spike/ in a shared folder (base stands for /tmp: sticky, world-writable):
      // they can still swap ours inside it.
      fs.chmodSync(base, 0o1777);
      fs.chownSync(shared, 1234, 1234);
      assert.throws(() => ensurePrivateDir(path.join(shared, 'sockets')), (e: unknown) => e instanceof DevCaError && /belongs to another user/.test(e.message));
      // The same folder outside a shared one (a checkout the CI user owns, the job running as root): fine.
      fs.chmodSync(base, 0o755);
      ensurePrivateDir(path.join(shared, 'ci-sockets'));
      fs.chownSync(shared, 0, 0);
    }
    ensurePrivateDir(path.join(shared, 'sockets'));
    assert.equal(fs.statSync(path.join(shared, 'sockets')).mode & 0o777, 0o700);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

/**
 * A small test PKI built with @peculiar/x509 and WebCrypto (P-256 ECDSA, SHA-256): root and
 * intermediate CAs per trust domain, and leaves with hostile options (several URI SANs, CA:TRUE,
 * odd key usages, validity windows, self-signed, duplicate extensions). Every object comes
 * as DER, PEM, a `node:crypto` X509Certificate and a KeyObject private key, so tests can build
 * X509Svids, bundles and TLS options directly. Test-only code.
 */
import 'reflect-metadata';
import { KeyObject, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import * as px from '@peculiar/x509';
import { TrustDomain, SpiffeId } from '../../src/spiffe/id.js';
import { X509Bundle, X509BundleSet } from '../../src/spiffe/bundle.js';
import { makeX509Svid, type X509Svid } from '../../src/spiffe/svid.js';

px.cryptoProvider.set(webcrypto as unknown as Parameters<typeof px.cryptoProvider.set>[0]);

type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const KU = px.KeyUsageFlags;

/** Key usage bits, re-exported for tests: `KeyUsage.digitalSignature | KeyUsage.keyCertSign`. */
export const KeyUsage = px.KeyUsageFlags;

export interface TestCert {
  readonly der: Buffer;
  readonly pem: string;
  readonly cert: X509Certificate;
  /** node:crypto private key. */
  readonly key: KeyObject;
  /** PKCS#8 DER of the private key (test material only). */
  readonly keyPkcs8: Buffer;
  readonly keys: CryptoKeyPair;
  readonly x509: px.X509Certificate;
}

export interface TestCa extends TestCert {
  readonly trustDomain: TrustDomain;
  readonly name: string;
  /** The issuing CA, undefined for a root. */
  readonly parent: TestCa | undefined;
  /** Intermediates from this CA up to (excluding) the root: [] for a root. */
  readonly chain: readonly TestCert[];
  readonly root: TestCa;
}

export interface CertOptions {
  /** Subject common name; a default is derived. */
  name?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Hex serial number; random by default. */
  serial?: string;
  /** URI SANs. */
  uris?: string[];
  /** DNS SANs. */
  dnsNames?: string[];
  /** Basic constraints cA; `undefined` keeps the default; `null` omits the extension. */
  isCA?: boolean | null;
  /** pathLenConstraint for CAs. */
  pathLength?: number;
  /** Key usage bits (KeyUsage.*); `null` omits the extension. */
  keyUsages?: number | null;
  /** Extra extensions appended as given (e.g. a second SAN extension). */
  extraExtensions?: px.Extension[];
  /** Reuse this key pair instead of generating one (e.g. for cross-signed loops). */
  keys?: CryptoKeyPair;
  /** Leave out the subject/authority key identifier extensions. */
  noKeyIds?: boolean;
}

export interface LeafOptions extends CertOptions {
  /** Self-sign instead of using an issuer. */
  selfSigned?: boolean;
}

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  if (b[0] === 0) b[0] = 1;
  return b.toString('hex');
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
}

function sanExtension(o: CertOptions): px.Extension | undefined {
  const names: { type: 'url' | 'dns'; value: string }[] = [];
  for (const u of o.uris ?? []) names.push({ type: 'url', value: u });
  for (const d of o.dnsNames ?? []) names.push({ type: 'dns', value: d });
  return names.length ? new px.SubjectAlternativeNameExtension(names, false) : undefined;
}

async function finish(x509: px.X509Certificate, keys: CryptoKeyPair): Promise<TestCert> {
  const der = Buffer.from(x509.rawData);
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as webcrypto.CryptoKey));
  const key = KeyObject.from(keys.privateKey as unknown as webcrypto.CryptoKey);
  return { der, pem: x509.toString('pem') + '\n', cert: new X509Certificate(der), key, keyPkcs8: pkcs8, keys, x509 };
}

async function build(
  subjectName: string,
  o: CertOptions,
  defaults: { isCA: boolean; keyUsages: number },
  issuer: { name: string; keys: CryptoKeyPair } | undefined,
): Promise<TestCert> {
  const keys = o.keys ?? (await newKeys());
  const extensions: px.Extension[] = [];
  const isCA = o.isCA === undefined ? defaults.isCA : o.isCA;
  if (isCA !== null) extensions.push(new px.BasicConstraintsExtension(isCA, isCA ? o.pathLength : undefined, true));
  const ku = o.keyUsages === undefined ? defaults.keyUsages : o.keyUsages;
  if (ku !== null) extensions.push(new px.KeyUsagesExtension(ku, true));
  const san = sanExtension(o);
  if (san) extensions.push(san);
  if (!o.noKeyIds) extensions.push(await px.SubjectKeyIdentifierExtension.create(keys.publicKey));
  if (issuer && !o.noKeyIds) extensions.push(await px.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey));
  extensions.push(...(o.extraExtensions ?? []));
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = o.notAfter ?? new Date(Date.now() + 3_600_000);
  const serialNumber = o.serial ?? randomSerial();
  const x509 = issuer
    ? await px.X509CertificateGenerator.create({
        serialNumber,
        subject: subjectName,
        issuer: issuer.name,
        notBefore,
        notAfter,
        signingAlgorithm: ALG,
        publicKey: keys.publicKey,
        signingKey: issuer.keys.privateKey,
        extensions,
      })
    : await px.X509CertificateGenerator.createSelfSigned({
        serialNumber,
        name: subjectName,
        notBefore,
        notAfter,
        signingAlgorithm: ALG,
        keys,
        extensions,
      });
  return finish(x509, keys);
}

let caCounter = 0;

/** A self-signed root CA for a trust domain (CA:TRUE, keyCertSign|cRLSign). */
export async function createCa(td: string | TrustDomain, o: CertOptions = {}): Promise<TestCa> {
  const trustDomain = typeof td === 'string' ? TrustDomain.parse(td) : td;
  const name = `CN=${o.name ?? `Test Root ${trustDomain.name} ${++caCounter}`},O=SPIKE test`;
  const c = await build(name, o, { isCA: true, keyUsages: KU.keyCertSign | KU.cRLSign | KU.digitalSignature }, undefined);
  const ca: TestCa = { ...c, trustDomain, name, parent: undefined, chain: [], get root() { return ca; } };
  return ca;
}

/** An intermediate CA signed by `parent` (defaults CA:TRUE, keyCertSign|cRLSign). */
export async function createIntermediate(parent: TestCa, o: CertOptions = {}): Promise<TestCa> {
  const name = `CN=${o.name ?? `Test Intermediate ${parent.trustDomain.name} ${++caCounter}`},O=SPIKE test`;
  const c = await build(name, o, { isCA: true, keyUsages: KU.keyCertSign | KU.cRLSign | KU.digitalSignature }, parent);
  return { ...c, trustDomain: parent.trustDomain, name, parent, chain: [c, ...parent.chain], root: parent.root };
}

let leafCounter = 0;

/**
 * A leaf issued by `issuer` (or self-signed with `selfSigned` / no issuer). Defaults:
 * CA:FALSE, digitalSignature|keyEncipherment|keyAgreement, valid from 1 min ago for 1 h.
 */
export async function issueLeaf(issuer: TestCa | undefined, o: LeafOptions = {}): Promise<TestCert> {
  const name = `CN=${o.name ?? `Test Leaf ${++leafCounter}`},O=SPIKE test`;
  const signer = o.selfSigned || !issuer ? undefined : issuer;
  return build(name, o, { isCA: false, keyUsages: KU.digitalSignature | KU.keyEncipherment | KU.keyAgreement }, signer);
}

/** The presented chain of a leaf issued by `ca`: leaf, then `ca`'s intermediates (no root). */
export function chainOf(leaf: TestCert, ca: TestCa | undefined): Buffer[] {
  return [leaf.der, ...(ca ? ca.chain.map((c) => c.der) : [])];
}

/** An X509Svid for `spiffeId` issued by `ca` (chain = leaf + ca's intermediates). */
export async function makeSvid(ca: TestCa, spiffeId: string | SpiffeId, o: LeafOptions = {}): Promise<X509Svid> {
  const id = typeof spiffeId === 'string' ? spiffeId : spiffeId.toString();
  const leaf = await issueLeaf(ca, { uris: [id], ...o });
  return makeX509Svid([leaf.cert, ...ca.chain.map((c) => c.cert)], leaf.key);
}

/** A bundle set with the roots of the given CAs grouped by trust domain. */
export function bundleSetOf(...cas: TestCa[]): X509BundleSet {
  const byTd = new Map<string, { td: TrustDomain; certs: X509Certificate[] }>();
  for (const ca of cas) {
    const root = ca.root;
    const e = byTd.get(root.trustDomain.name) ?? { td: root.trustDomain, certs: [] };
    e.certs.push(root.cert);
    byTd.set(root.trustDomain.name, e);
  }
  return new X509BundleSet([...byTd.values()].map((e) => new X509Bundle(e.td, e.certs)));
}

/**
 * A CA loaded from files: a spike-agent state folder's `ca.key` (PKCS#8 DER) and `ca.crt`
 * (PEM), so a test can mint SVIDs the running stack trusts (e.g. short-lived ones).
 */
export async function loadCa(td: string | TrustDomain, keyPkcs8Der: Buffer, certPem: string): Promise<TestCa> {
  const trustDomain = typeof td === 'string' ? TrustDomain.parse(td) : td;
  const x509 = new px.X509Certificate(certPem);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', keyPkcs8Der, ALG, true, ['sign']);
  const publicKey = await x509.publicKey.export(ALG, ['verify']);
  const keys = { privateKey, publicKey } as unknown as CryptoKeyPair;
  const c = await finish(x509, keys);
  const ca: TestCa = { ...c, trustDomain, name: x509.subject, parent: undefined, chain: [], get root() { return ca; } };
  return ca;
}

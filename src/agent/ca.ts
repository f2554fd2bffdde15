/**
 * The dev certificate authority of spike-agent: one self-signed P-256 CA per trust domain,
 * kept in a state folder (0700) as `ca.key` (PKCS#8 DER, 0600) and `ca.crt` (PEM), reused
 * across restarts so the trust bundle stays stable. The state folder must be one the agent
 * created (0700 with `agent-state.marker`, see `owned-dir.ts`), and a stored key a regular
 * file owned by the caller with mode 0600; anything else (e.g. a key shipped in a repository
 * checkout) is refused, never "fixed" with chmod. It issues X.509-SVIDs that satisfy the
 * SPIFFE X.509-SVID rules: one URI SAN, CA:FALSE, digitalSignature + keyEncipherment (never
 * keyCertSign/cRLSign), serverAuth + clientAuth, a fresh P-256 key and a random serial each time.
 *
 * Key bytes stay in Buffers and are zeroed after use; they are never turned into strings.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { SpikeError, foreignAncestor } from '../lib/index.js';
import { SpiffeId, TrustDomain } from '../spiffe/index.js';
import { prepareOwnedDir } from './owned-dir.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export class DevCaError extends SpikeError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** One issued X.509-SVID, in Workload API encodings. */
export interface IssuedSvid {
  spiffeId: SpiffeId;
  /** Concatenated DER certificates, leaf first (here: just the leaf; the CA is the root). */
  certChainDer: Buffer;
  /** Unencrypted PKCS#8 DER private key. Zero it (`fill(0)`) when no longer needed. */
  privateKeyPkcs8: Buffer;
  /** Upper-case hex serial of the leaf. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

interface DevCaOptions {
  /** CA lifetime when a new CA is created; default 10 years. */
  caTtlMs?: number;
  /** A stored CA that expires sooner than this is replaced; default 24 h. */
  renewBeforeMs?: number;
}

const KEY_FILE = 'ca.key';
const CERT_FILE = 'ca.crt';
const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Issued SVIDs start this far in the past to tolerate small clock differences (as SPIRE). */
const BACKDATE_MS = 10_000;
const DEFAULTS = { caTtlMs: 10 * 365 * 24 * 3_600_000, renewBeforeMs: 24 * 3_600_000 };

/** A positive 128-bit serial as hex (top bit cleared so DER needs no sign byte games). */
function randomSerialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

function callerUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

/**
 * Creates `dir` with mode 0700, or tightens an existing folder to 0700. A symlink, a
 * non-directory or a folder owned by another user is refused (never chmod someone else's),
 * and so is a folder below one that another user owns or may write (not sticky), before and
 * after it is made: that user could rename `dir` away and put their own in its place, with
 * sockets answering with their trust bundle.
 */
export function ensurePrivateDir(dir: string): void {
  const uid = callerUid();
  const abs = path.resolve(dir);
  const checkAbove = (): void => {
    const bad = uid === undefined ? undefined : foreignAncestor(abs, uid, { sharedOnly: true });
    if (bad === undefined) return;
    const why = bad.why === 'owner' ? 'belongs to another user' : bad.why === 'writable' ? 'is writable by group or others (and not sticky)' : 'cannot be resolved';
    throw new DevCaError('agent_state_dir_untrusted', `the folder ${bad.path} above ${abs} ${why}; choose a folder of your own`);
  };
  checkAbove();
  fs.mkdirSync(abs, { recursive: true, mode: 0o700 });
  checkAbove();
  const st = fs.lstatSync(abs);
  if (!st.isDirectory()) throw new DevCaError('agent_state_dir_invalid', `${abs} is not a directory`);
  if (uid !== undefined && st.uid !== uid) throw new DevCaError('agent_state_dir_untrusted', `${abs} is owned by another user`);
  if ((st.mode & 0o777) !== 0o700) fs.chmodSync(abs, 0o700);
}

/** Marker of a state folder the agent created (see `owned-dir.ts`). */
const STATE_MARKER = 'agent-state.marker';

/**
 * A stored CA key is used only when nobody else could have planted or read it: it must be a
 * regular file owned by the caller with no group/other permissions. Otherwise the agent refuses
 * to start.
 */
function checkStoredKey(dir: string, keyPath: string): void {
  const untrusted = (why: string): never => {
    throw new DevCaError('agent_ca_untrusted', `refusing the stored CA key ${keyPath}: ${why}; delete the state folder ${dir} and start again`);
  };
  const st = fs.lstatSync(keyPath);
  if (!st.isFile()) untrusted('it is not a regular file');
  const uid = callerUid();
  if (uid !== undefined && st.uid !== uid) untrusted('it is owned by another user');
  if ((st.mode & 0o077) !== 0) untrusted('it is readable or writable by others (mode must be 0600)');
}

export class DevCa {
  readonly trustDomain: TrustDomain;
  /** The CA certificate (the trust bundle's only authority). */
  readonly certificate: X509Certificate;
  readonly #cert: x509.X509Certificate;
  readonly #signingKey: CryptoKey;

  private constructor(td: TrustDomain, cert: x509.X509Certificate, signingKey: CryptoKey) {
    this.trustDomain = td;
    this.#cert = cert;
    this.certificate = new X509Certificate(Buffer.from(cert.rawData));
    this.#signingKey = signingKey;
  }

  /** DER of the CA certificate: the Workload API `bundle` value. */
  bundleDer(): Buffer {
    return Buffer.from(this.certificate.raw);
  }

  /**
   * Loads the CA of `td` from `dir`, or creates one (and writes it) when there is none, when
   * the stored one belongs to another trust domain, or when it is about to expire.
   */
  static async loadOrCreate(dir: string, td: TrustDomain, opts: DevCaOptions = {}): Promise<DevCa> {
    const o = { ...DEFAULTS, ...opts };
    const keyPath = path.join(dir, KEY_FILE);
    const certPath = path.join(dir, CERT_FILE);
    // Only a folder we created (0700 + marker) is trusted: a checkout cannot plant a CA here.
    const problem = prepareOwnedDir(dir, STATE_MARKER);
    if (problem !== undefined) {
      throw new DevCaError('agent_state_dir_untrusted', `refusing the state folder ${dir}: it ${problem}; delete it and start again`);
    }
    const hasKey = lexists(keyPath);
    if (hasKey) checkStoredKey(dir, keyPath);
    if (hasKey && lexists(certPath)) {
      const loaded = await DevCa.#load(keyPath, certPath, td, o.renewBeforeMs);
      if (loaded) return loaded;
    }
    return DevCa.#create(keyPath, certPath, td, o.caTtlMs);
  }

  static async #load(keyPath: string, certPath: string, td: TrustDomain, renewBeforeMs: number): Promise<DevCa | undefined> {
    if (!fs.lstatSync(certPath).isFile()) throw new DevCaError('agent_ca_invalid', 'stored CA certificate is not a regular file');
    let cert: x509.X509Certificate;
    try {
      cert = new x509.X509Certificate(fs.readFileSync(certPath, 'utf8'));
    } catch (err) {
      throw new DevCaError('agent_ca_invalid', 'stored CA certificate cannot be parsed', { cause: err });
    }
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const uris = san?.names.items.filter((n) => n.type === 'url').map((n) => n.value) ?? [];
    if (uris.length !== 1 || uris[0] !== td.idString()) return undefined; // other trust domain: replace
    if (cert.notAfter.getTime() - Date.now() < renewBeforeMs) return undefined; // expiring: replace
    const keyDer = fs.readFileSync(keyPath);
    let key: CryptoKey;
    try {
      key = await webcrypto.subtle.importKey('pkcs8', keyDer, EC_ALG, false, ['sign']);
    } catch (err) {
      throw new DevCaError('agent_ca_invalid', 'stored CA key cannot be parsed', { cause: err });
    } finally {
      keyDer.fill(0);
    }
    // The key must belong to the certificate: sign and verify a probe.
    const probe = randomBytes(32);
    const sig = await webcrypto.subtle.sign(SIGN_ALG, key, probe);
    const pub = await cert.publicKey.export(EC_ALG, ['verify']);
    if (!(await webcrypto.subtle.verify(SIGN_ALG, pub, sig, probe))) {
      throw new DevCaError('agent_ca_invalid', 'stored CA key does not match the stored CA certificate');
    }
    return new DevCa(td, cert, key);
  }

  static async #create(keyPath: string, certPath: string, td: TrustDomain, caTtlMs: number): Promise<DevCa> {
    const keys = (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerialHex(),
      name: [{ C: ['US'] }, { O: ['SPIKE dev'] }, { CN: ['spike-agent CA'] }],
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + caTtlMs),
      signingAlgorithm: SIGN_ALG,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: td.idString() }]),
      ],
    });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    try {
      writeFileAtomic(keyPath, pkcs8, 0o600);
    } finally {
      pkcs8.fill(0);
    }
    writeFileAtomic(certPath, Buffer.from(cert.toString('pem') + '\n'), 0o644);
    return new DevCa(td, cert, keys.privateKey);
  }

  /**
   * Issues an X.509-SVID for `id` (must be in this CA's trust domain) valid for `ttlMs` (capped
   * at the CA's own expiry). Every call makes a new key pair and a new random serial.
   */
  async issueSvid(id: SpiffeId, ttlMs: number): Promise<IssuedSvid> {
    if (!id.memberOf(this.trustDomain)) throw new DevCaError('agent_svid_foreign_id', 'SPIFFE ID is not in the CA trust domain');
    if (id.path === '') throw new DevCaError('agent_svid_invalid_id', 'an X.509-SVID needs a SPIFFE ID with a path');
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new DevCaError('agent_svid_invalid_ttl', 'SVID lifetime must be positive');
    const keys = (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const now = Date.now();
    const notBefore = new Date(now - BACKDATE_MS);
    const notAfter = new Date(Math.min(now + ttlMs, this.#cert.notAfter.getTime()));
    const serialNumber = randomSerialHex();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      subject: [{ C: ['US'] }, { O: ['SPIKE dev'] }],
      issuer: this.#cert.subjectName,
      notBefore,
      notAfter,
      signingAlgorithm: SIGN_ALG,
      publicKey: keys.publicKey,
      signingKey: this.#signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.#cert.publicKey),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id.toString() }]),
      ],
    });
    const privateKeyPkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    return {
      spiffeId: id,
      certChainDer: Buffer.from(cert.rawData),
      privateKeyPkcs8,
      serialNumber: cert.serialNumber.toUpperCase(),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
    };
  }
}

function lexists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Writes a file via a temp file + rename, with `mode` from creation on. */
function writeFileAtomic(file: string, data: Buffer, mode: number): void {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(tmp, mode); // umask may have narrowed or (never) widened it
  fs.renameSync(tmp, file);
}

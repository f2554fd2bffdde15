/**
 * `spike-agent fetch-x509`: fetch the caller's X.509-SVIDs and bundles once from a Workload
 * API socket (the dev agent's or a SPIRE agent's) and write them as PEM files, the way SPIRE's
 * `spire-agent api fetch x509 -write <dir>` does, so third-party clients (curl, openssl) can
 * use an identity:
 *
 *   svid.<i>.pem               the i-th SVID's chain, leaf first (0644)
 *   svid.<i>.key               its private key, PKCS#8 PEM (0600)
 *   bundle.<i>.pem             the trust bundle of its trust domain (0644)
 *   federated_bundle.<i>.<j>.pem  the other trust domains' bundles, by name (0644)
 *
 * Every file is written to a temporary name in the same folder, fsynced and renamed over the
 * target, so a reader never sees half a key. The folder is created 0700 when missing.
 * Uses the project's own Workload API client (one attempt, `--timeout`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command, CommanderError } from 'commander';
import { SpikeError } from '../lib/index.js';
import { fetchX509Context, svidChainPem, svidPrivateKeyPem, workloadEndpointFromEnv } from '../spiffe/index.js';

const HELP_AFTER = `
Writes, for each SVID i the Workload API returns (0 is the default one):
  svid.<i>.pem                chain, leaf first        (0644)
  svid.<i>.key                PKCS#8 private key       (0600)
  bundle.<i>.pem              its trust domain's CA bundle (0644)
  federated_bundle.<i>.<j>.pem other trust domains' bundles (0644)

--socket takes a path (/run/spike/pilot.sock) or an endpoint (unix:///path, tcp://ip:port);
default: SPIFFE_ENDPOINT_SOCKET, else unix:///tmp/spire-agent/public/api.sock.

Example (dev stack):
  spike-agent fetch-x509 --socket .spike/sockets/pilot.sock --write ./pilot-svid
`;

interface FetchFlags {
  socket?: string;
  write: string;
  timeout: string;
}

/** `/abs/path` or `./rel` → `unix:///abs`; an endpoint URI is passed through. */
export function endpointFromSocketFlag(value: string, cwd = process.cwd()): string {
  if (/^[a-z]+:/.test(value)) return value;
  return `unix://${path.resolve(cwd, value)}`;
}

/** Writes `data` to `dir/name` with `mode` via a temporary file and rename. */
function writeAtomic(dir: string, name: string, data: string | Buffer, mode: number): void {
  const tmp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
  try {
    fs.fchmodSync(fd, mode); // the umask must not loosen or tighten what we promise
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, path.join(dir, name));
}

export interface FetchX509Result {
  ids: string[];
  files: string[];
}

/** Fetches once from `endpoint` and writes the PEM files into `dir`. */
export async function fetchX509ToDir(endpoint: string, dir: string, timeoutMs: number): Promise<FetchX509Result> {
  const ctx = await fetchX509Context({ endpoint, timeoutMs });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: string[] = [];
  const put = (name: string, data: string | Buffer, mode: number): void => {
    writeAtomic(dir, name, data, mode);
    files.push(name);
  };
  ctx.svids.forEach((svid, i) => {
    put(`svid.${i}.pem`, svidChainPem(svid), 0o644);
    const key = svidPrivateKeyPem(svid);
    try {
      put(`svid.${i}.key`, key, 0o600);
    } finally {
      key.fill(0);
    }
    const own = ctx.bundles.get(svid.id.trustDomain);
    if (own) put(`bundle.${i}.pem`, own.toPem(), 0o644);
    ctx.bundles
      .bundles()
      .filter((b) => !b.trustDomain.equals(svid.id.trustDomain))
      .forEach((b, j) => put(`federated_bundle.${i}.${j}.pem`, b.toPem(), 0o644));
  });
  return { ids: ctx.svids.map((s) => s.id.toString()), files };
}

function parseTimeout(raw: string): number {
  const m = /^([0-9]{1,6})(ms|s)?$/.exec(raw);
  if (!m) throw new SpikeError('config_invalid', '--timeout must be a number of seconds (10, 10s) or milliseconds (500ms)');
  return m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
}

/** `spike-agent fetch-x509 …` (argv without the subcommand name). Sets `process.exitCode`. */
export async function fetchX509Main(argv: string[]): Promise<void> {
  const cmd = new Command()
    .name('spike-agent fetch-x509')
    .description('Fetch this caller\'s X.509-SVIDs and bundles from a Workload API once and write them as PEM files.')
    .option('--socket <path|endpoint>', 'Workload API socket (default: SPIFFE_ENDPOINT_SOCKET)')
    .requiredOption('--write <dir>', 'folder to write the PEM files into (created 0700 if missing)')
    .option('--timeout <duration>', 'how long to wait for the Workload API', '10s')
    .addHelpText('after', HELP_AFTER)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  let flags: FetchFlags;
  try {
    cmd.parse(argv, { from: 'user' });
    flags = cmd.opts<FetchFlags>();
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    throw err;
  }
  try {
    const endpoint = flags.socket !== undefined ? endpointFromSocketFlag(flags.socket) : workloadEndpointFromEnv();
    const out = await fetchX509ToDir(endpoint, path.resolve(flags.write), parseTimeout(flags.timeout));
    process.stdout.write(`SPIFFE ID: ${out.ids.join(', ')}\n`);
    for (const f of out.files) process.stdout.write(`wrote ${path.join(flags.write, f)}\n`);
  } catch (err) {
    const msg = err instanceof SpikeError ? err.message : err instanceof Error && 'code' in err ? `cannot write: ${String((err as NodeJS.ErrnoException).code)}` : 'failed';
    process.stderr.write(`spike-agent fetch-x509: ${msg}\n`);
    process.exitCode = 1;
  }
}

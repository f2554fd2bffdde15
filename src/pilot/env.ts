/**
 * Where Pilot finds its identity (the SPIFFE Workload API) and SPIKE Nexus, and why.
 *
 * Workload API endpoint, first match wins:
 *   1. `--socket <name|path>`: a path (or `unix:` address) as given; a bare name means the
 *      dev-stack socket `<dev dir>/sockets/<name>.sock`, which must pass the dev-stack checks
 *      (so must a path to that very file, which then counts as the name; a `unix:` address is
 *      always used as given);
 *   2. `SPIFFE_ENDPOINT_SOCKET` from the real environment;
 *   3. the dev-stack hint: `<dev dir>/sockets/<role>.sock` (`pilot`, `recover`, `restore`) when
 *      it passes the checks of `devhint.ts`;
 *   4. the SPIRE default `unix:///tmp/spire-agent/public/api.sock`.
 * Nexus URL: `SPIKE_NEXUS_API_URL` from the real environment; else, only when the endpoint is
 * a dev-stack socket, a loopback URL from `<dev dir>/env`; else `https://localhost:8553`.
 *
 * The dev folder is `./.spike` (or `$SPIKE_DEV_DIR`). Nothing else is ever taken from it: a
 * file in the working directory must not choose where secrets or shards go (see `devhint.ts`).
 * Every choice carries its source, so `spike env` can say which endpoint and URL are used and why.
 */
import path from 'node:path';
import { type Env, DEFAULT_NEXUS_URL, DEFAULT_WORKLOAD_API_ENDPOINT } from '../sdk/index.js';
import { PilotError, usageError } from './errors.js';
import { devDir, devSocketWarning, findDevSocket, readDevNexusUrl } from './devhint.js';

export { devDir, parseEnvFile } from './devhint.js';

export type PilotRole = 'operator' | 'recover' | 'restore';

const ROLE_SOCKET: Record<PilotRole, string> = { operator: 'pilot', recover: 'recover', restore: 'restore' };

/** Where a setting came from. */
export type SettingSource =
  | { kind: 'flag' }
  | { kind: 'environment'; variable: string }
  | { kind: 'dev'; path: string }
  | { kind: 'default' };

/** `flag --socket` · `environment (NAME)` · `dev stack hint at <path>` · `default`. */
export function describeSource(s: SettingSource): string {
  switch (s.kind) {
    case 'flag':
      return 'flag --socket';
    case 'environment':
      return `environment (${s.variable})`;
    case 'dev':
      return `dev stack hint at ${s.path}`;
    case 'default':
      return 'default';
  }
}

interface ResolvedEnv {
  /** Environment for the SDK: the real one, plus `SPIKE_NEXUS_API_URL` from a valid dev-stack hint. */
  env: Env;
  /** Workload API address to use. */
  endpoint: string;
  endpointSource: SettingSource;
  /** Nexus URL (list) the SDK will use. */
  nexusUrl: string;
  nexusUrlSource: SettingSource;
  /** Warnings to print (one line each) on stderr. */
  warnings: string[];
}

function set(env: Env, name: string): string | undefined {
  const v = env[name];
  return v !== undefined && v.trim() !== '' ? v : undefined;
}

/** Resolves the Workload API address and Nexus URL for one command run (never contacts anything). */
export function resolvePilotEnv(opts: { env: Env; cwd: string; role: PilotRole; socket?: string | undefined }): ResolvedEnv {
  const warnings: string[] = [];
  const dir = devDir(opts.env, opts.cwd);
  let endpoint: string;
  let endpointSource: SettingSource;
  let devSocketUsed = false;

  const sock = opts.socket?.trim();
  const envSocket = set(opts.env, 'SPIFFE_ENDPOINT_SOCKET');
  if (sock !== undefined && sock !== '') {
    endpointSource = { kind: 'flag' };
    const asPath = sock.includes('/') && !sock.startsWith('unix:') ? path.resolve(opts.cwd, sock) : undefined;
    // A path to the dev folder's own socket is the same choice as its name (same checks, same URL hint).
    const devName = asPath !== undefined && path.dirname(asPath) === path.join(dir, 'sockets') && asPath.endsWith('.sock') ? path.basename(asPath) : undefined;
    if (sock.startsWith('unix:')) endpoint = sock;
    else if (asPath !== undefined && devName === undefined) endpoint = `unix://${asPath}`;
    else if (devName !== undefined || (/^[A-Za-z0-9._-]{1,64}$/.test(sock) && sock !== '.' && sock !== '..')) {
      const name = devName ?? sock;
      const dev = findDevSocket(dir, name.endsWith('.sock') ? name.slice(0, -'.sock'.length) : name);
      if (!dev.ok && dev.refused !== undefined) {
        throw new PilotError(`Error: Refusing the dev stack socket ${dev.path}: ${dev.refused}.`, { code: 'pilot_dev_socket_refused' });
      }
      endpoint = `unix://${dev.path}`;
      devSocketUsed = dev.ok;
      if (dev.ok) endpointSource = { kind: 'dev', path: dev.path };
    } else throw usageError('Error: Invalid --socket value (use a socket name such as "restore", or a path).');
  } else if (envSocket !== undefined) {
    endpoint = envSocket;
    endpointSource = { kind: 'environment', variable: 'SPIFFE_ENDPOINT_SOCKET' };
  } else {
    const dev = findDevSocket(dir, ROLE_SOCKET[opts.role]);
    if (!dev.ok && dev.refused !== undefined) warnings.push(devSocketWarning({ path: dev.path, refused: dev.refused }));
    if (dev.ok) {
      endpoint = `unix://${dev.path}`;
      endpointSource = { kind: 'dev', path: dev.path };
      devSocketUsed = true;
    } else {
      endpoint = DEFAULT_WORKLOAD_API_ENDPOINT;
      endpointSource = { kind: 'default' };
    }
  }

  const env: Record<string, string | undefined> = { ...opts.env };
  let nexusUrl: string;
  let nexusUrlSource: SettingSource;
  const envUrl = set(opts.env, 'SPIKE_NEXUS_API_URL');
  const hint = envUrl === undefined && devSocketUsed ? readDevNexusUrl(dir) : undefined;
  if (hint) warnings.push(...hint.warnings);
  if (envUrl !== undefined) {
    nexusUrl = envUrl;
    nexusUrlSource = { kind: 'environment', variable: 'SPIKE_NEXUS_API_URL' };
  } else if (hint?.url !== undefined) {
    nexusUrl = hint.url;
    nexusUrlSource = { kind: 'dev', path: hint.path };
    env['SPIKE_NEXUS_API_URL'] = hint.url;
  } else {
    nexusUrl = DEFAULT_NEXUS_URL;
    nexusUrlSource = { kind: 'default' };
    delete env['SPIKE_NEXUS_API_URL']; // an empty value means the default too
  }
  return { env, endpoint, endpointSource, nexusUrl, nexusUrlSource, warnings };
}

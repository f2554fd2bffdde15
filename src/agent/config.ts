/**
 * spike-agent configuration: a small YAML/JSON file and/or command-line flags, validated once
 * into an {@link AgentConfig} with every default filled in.
 *
 * File shape (every key optional but `identities`, which may also come from flags):
 * ```yaml
 * trustDomain: spike.ist        # default spike.ist
 * stateDir: ./.spike/agent      # CA key + cert (0700 dir, 0600 key)
 * socketDir: ./.spike/sockets   # one <name>.sock per identity (0700 dir, 0600 sockets)
 * svidTtl: 1h                   # Go-style duration: 500ms, 30s, 5m, 1h, 1h30m
 * identities:
 *   - name: nexus
 *     spiffeId: spiffe://spike.ist/spike/nexus
 * ```
 * Flags override file values; `--identity name=id` entries are added to the file's list (a
 * flag entry with the same name replaces the file's). Relative directories resolve against the
 * current working directory. Errors are {@link AgentConfigError}s with fixed messages.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SpikeError } from '../lib/index.js';
import { SpiffeId, TrustDomain } from '../spiffe/index.js';

export class AgentConfigError extends SpikeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('agent_config_invalid', message, options);
  }
}

export interface AgentIdentity {
  /** Socket name: `<socketDir>/<name>.sock`. */
  name: string;
  spiffeId: SpiffeId;
}

export interface AgentConfig {
  trustDomain: TrustDomain;
  stateDir: string;
  socketDir: string;
  svidTtlMs: number;
  identities: AgentIdentity[];
}

/** Raw values as they come from a file or from flags (all strings, unvalidated). */
export interface AgentConfigInput {
  trustDomain?: string;
  stateDir?: string;
  socketDir?: string;
  svidTtl?: string;
  identities?: { name: string; spiffeId: string }[];
}

export const AGENT_DEFAULTS = {
  trustDomain: 'spike.ist',
  stateDir: './.spike/agent',
  socketDir: './.spike/sockets',
  svidTtl: '1h',
} as const;

/** Shortest and longest SVID lifetimes accepted. */
const MIN_SVID_TTL_MS = 1_000;
const MAX_SVID_TTL_MS = 30 * 24 * 3_600_000;
/** sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
const MAX_IDENTITIES = 64;

const UNIT_MS: Record<string, number> = {
  ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000,
};

/**
 * Parses a Go `time.ParseDuration` string (`1h`, `1h30m`, `1.5s`, `500ms`) into milliseconds.
 * Signs and bare numbers (other than `0`) are refused. Returns undefined when invalid.
 */
export function parseDuration(s: string): number | undefined {
  if (typeof s !== 'string' || s.length === 0 || s.length > 64) return undefined;
  if (s === '0') return 0;
  let i = 0;
  let total = 0;
  while (i < s.length) {
    const numStart = i;
    while (i < s.length && ((s[i]! >= '0' && s[i]! <= '9') || s[i] === '.')) i++;
    const num = s.slice(numStart, i);
    if (num.length === 0 || num === '.' || num.indexOf('.') !== num.lastIndexOf('.')) return undefined;
    const unitStart = i;
    while (i < s.length && !(s[i]! >= '0' && s[i]! <= '9') && s[i] !== '.') i++;
    const factor = UNIT_MS[s.slice(unitStart, i)];
    if (factor === undefined) return undefined;
    total += Number(num) * factor;
  }
  return Number.isFinite(total) ? total : undefined;
}

const NAME_OK = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;

/** Reads a config file (YAML, which also accepts JSON). */
export function readConfigFile(file: string): AgentConfigInput {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new AgentConfigError('cannot read the config file', { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 10 });
  } catch (err) {
    throw new AgentConfigError('config file is not valid YAML or JSON', { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new AgentConfigError('config file must hold a mapping');
  const o = doc as Record<string, unknown>;
  const known = new Set(['trustDomain', 'stateDir', 'socketDir', 'svidTtl', 'identities']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new AgentConfigError(`unknown config key (allowed: ${[...known].join(', ')})`);
  const str = (k: string): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new AgentConfigError(`config key ${k} must be a string`);
    return v;
  };
  const out: AgentConfigInput = {};
  const td = str('trustDomain'); if (td !== undefined) out.trustDomain = td;
  const sd = str('stateDir'); if (sd !== undefined) out.stateDir = sd;
  const kd = str('socketDir'); if (kd !== undefined) out.socketDir = kd;
  const ttl = str('svidTtl'); if (ttl !== undefined) out.svidTtl = ttl;
  const ids = o['identities'];
  if (ids !== undefined && ids !== null) {
    if (!Array.isArray(ids)) throw new AgentConfigError('config key identities must be a list');
    out.identities = ids.map((e: unknown) => {
      if (typeof e !== 'object' || e === null) throw new AgentConfigError('each identity must be a mapping with name and spiffeId');
      const r = e as Record<string, unknown>;
      if (typeof r['name'] !== 'string' || typeof r['spiffeId'] !== 'string' || Object.keys(r).length !== 2) {
        throw new AgentConfigError('each identity must be a mapping with exactly name and spiffeId (strings)');
      }
      return { name: r['name'], spiffeId: r['spiffeId'] };
    });
  }
  return out;
}

/** Parses one `--identity name=spiffe://…` flag value. */
export function parseIdentityFlag(v: string): { name: string; spiffeId: string } {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new AgentConfigError('--identity must be <name>=<spiffe-id>');
  return { name: v.slice(0, eq), spiffeId: v.slice(eq + 1) };
}

/** Merges file values with flag values (flags win) and validates everything. */
export function resolveConfig(file: AgentConfigInput, flags: AgentConfigInput = {}, cwd = process.cwd()): AgentConfig {
  let trustDomain: TrustDomain;
  try {
    trustDomain = TrustDomain.parse(flags.trustDomain ?? file.trustDomain ?? AGENT_DEFAULTS.trustDomain);
  } catch (err) {
    throw new AgentConfigError('trustDomain is not a valid SPIFFE trust domain', { cause: err });
  }
  const ttlText = flags.svidTtl ?? file.svidTtl ?? AGENT_DEFAULTS.svidTtl;
  const svidTtlMs = parseDuration(ttlText);
  if (svidTtlMs === undefined) throw new AgentConfigError('svidTtl is not a duration (examples: 500ms, 30s, 5m, 1h)');
  if (svidTtlMs < MIN_SVID_TTL_MS || svidTtlMs > MAX_SVID_TTL_MS) throw new AgentConfigError('svidTtl must be between 1s and 720h');
  const stateDir = path.resolve(cwd, flags.stateDir ?? file.stateDir ?? AGENT_DEFAULTS.stateDir);
  const socketDir = path.resolve(cwd, flags.socketDir ?? file.socketDir ?? AGENT_DEFAULTS.socketDir);

  const byName = new Map<string, string>();
  for (const e of file.identities ?? []) {
    if (byName.has(e.name)) throw new AgentConfigError('identity names must be unique');
    byName.set(e.name, e.spiffeId);
  }
  for (const e of flags.identities ?? []) byName.set(e.name, e.spiffeId);
  if (byName.size === 0) throw new AgentConfigError('no identities configured (use identities: in the config file or --identity name=spiffe://…)');
  if (byName.size > MAX_IDENTITIES) throw new AgentConfigError(`at most ${MAX_IDENTITIES} identities are supported`);

  const identities: AgentIdentity[] = [];
  for (const [name, idText] of byName) {
    if (!NAME_OK.test(name)) throw new AgentConfigError('identity name must be 1-64 characters of A-Z a-z 0-9 . _ - and not start with a dot');
    let spiffeId: SpiffeId;
    try {
      spiffeId = SpiffeId.parse(idText);
    } catch (err) {
      throw new AgentConfigError(`identity ${name}: spiffeId is not a valid SPIFFE ID`, { cause: err });
    }
    if (!spiffeId.memberOf(trustDomain)) throw new AgentConfigError(`identity ${name}: spiffeId is not in the trust domain ${trustDomain.name}`);
    if (spiffeId.path === '') throw new AgentConfigError(`identity ${name}: spiffeId must have a path (a workload ID, not the trust domain ID)`);
    const sock = path.join(socketDir, `${name}.sock`);
    if (Buffer.byteLength(sock) > MAX_SOCKET_PATH_BYTES) throw new AgentConfigError(`socket path for ${name} is longer than ${MAX_SOCKET_PATH_BYTES} bytes; use a shorter socketDir`);
    identities.push({ name, spiffeId });
  }
  return { trustDomain, stateDir, socketDir, svidTtlMs, identities };
}

/** The socket file of an identity. */
export function socketPath(cfg: Pick<AgentConfig, 'socketDir'>, name: string): string {
  return path.join(cfg.socketDir, `${name}.sock`);
}

/**
 * Typed readers for SPIKE's environment variables.
 *
 * Where SPIKE silently falls back to a default on a malformed value, we refuse to start
 * (CFG-01): an operator who set `SPIKE_NEXUS_SHAMIR_THRESHOLD=three` gets an
 * error naming the variable, not a cluster running with the default. Unset or empty
 * variables take the default. Messages name the variable and the rule, never the value
 * (a value could be a misplaced secret).
 */
import { SpikeError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends SpikeError {
  readonly variable: string;
  constructor(variable: string, rule: string) {
    super('config_invalid', `${variable}: ${rule}`);
    this.variable = variable;
  }
}

function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

export function str(env: Env, name: string, def: string): string {
  return raw(env, name) ?? def;
}

export function optionalStr(env: Env, name: string): string | undefined {
  return raw(env, name);
}

/** A decimal integer in [min, max]. */
export function int(env: Env, name: string, def: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const v = raw(env, name);
  if (v === undefined) return def;
  if (!/^[0-9]{1,15}$/.test(v)) throw new ConfigError(name, 'must be a decimal integer');
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}`);
  return n;
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a Go `time.ParseDuration` string (`500ms`, `30s`, `1h30m`, `0`) into milliseconds.
 * Returns undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  if (s.length === 0 || s.length > 64) return undefined;
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  let total = 0;
  let matched = false;
  const part = /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|ms|s|m|h)/;
  while (rest.length > 0) {
    const m = part.exec(rest);
    if (!m) return undefined;
    const unit = UNIT_MS[m[2]!];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    rest = rest.slice(m[0].length);
    matched = true;
  }
  if (!matched || !Number.isFinite(total)) return undefined;
  return sign * total;
}

/** The longest delay a Node timer runs (2^31 − 1 ms, about 596 h); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * A duration setting in whole milliseconds (a fraction rounds up: `1.5ms` is 2 ms), at least
 * `minMs` and at most {@link MAX_TIMER_MS}.
 */
export function duration(env: Env, name: string, defMs: number, minMs = 0): number {
  const v = raw(env, name);
  if (v === undefined) return defMs;
  const parsed = parseDuration(v);
  if (parsed === undefined) throw new ConfigError(name, 'must be a duration such as 500ms, 30s, 5m or 1h');
  const ms = Math.ceil(parsed);
  if (ms < minMs) throw new ConfigError(name, `must be at least ${minMs}ms`);
  if (ms > MAX_TIMER_MS) throw new ConfigError(name, 'must be at most 596h (the longest timer Node runs)');
  return ms;
}

/** Go `strconv.ParseBool` spellings. */
export function bool(env: Env, name: string, def: boolean): boolean {
  const v = raw(env, name);
  if (v === undefined) return def;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new ConfigError(name, 'must be true or false');
}

export function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], def: T): T {
  const v = raw(env, name);
  if (v === undefined) return def;
  const lower = v.toLowerCase();
  const hit = allowed.find((a) => a === lower);
  if (hit === undefined) throw new ConfigError(name, `must be one of ${allowed.join(', ')}`);
  return hit;
}

export interface ListenAddress { host: string | undefined; port: number }

/** Go listen address: `:8553`, `127.0.0.1:8553`, `[::1]:8553`, `localhost:0`. */
export function listenAddress(env: Env, name: string, def: string): ListenAddress {
  const v = raw(env, name) ?? def;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([a-zA-Z0-9.-]*))?:([0-9]{1,5})$/.exec(v);
  if (!m) throw new ConfigError(name, 'must be a listen address such as :8553 or 127.0.0.1:8553');
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(name, 'port must be at most 65535');
  const host = m[1] ?? (m[2] === '' ? undefined : m[2]);
  return { host, port };
}

/** A comma-separated list of https base URLs: trimmed, no empties, no duplicates. */
export function httpsUrlList(env: Env, name: string, required: boolean): string[] {
  const v = raw(env, name);
  if (v === undefined) {
    if (required) throw new ConfigError(name, 'is required');
    return [];
  }
  const out: string[] = [];
  for (const entry of v.split(',')) {
    const e = entry.trim();
    if (e === '') throw new ConfigError(name, 'contains an empty entry');
    let u: URL;
    try {
      u = new URL(e);
    } catch {
      throw new ConfigError(name, 'contains an entry that is not a URL');
    }
    if (u.protocol !== 'https:' || u.hostname === '') throw new ConfigError(name, 'entries must be https URLs with a host');
    if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
      throw new ConfigError(name, 'entries must not carry credentials, a query or a fragment');
    }
    const base = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
    if (out.includes(base)) throw new ConfigError(name, 'contains a duplicate entry');
    out.push(base);
  }
  return out;
}

/**
 * SPIKE Nexus base URLs for clients.
 *
 * `SPIKE_NEXUS_API_URL` (default `https://localhost:8553`) may hold several
 * comma-separated URLs for several Nexus instances (issue 8). Each entry is trimmed; it must
 * be an absolute `https:` URL with a host, no credentials, query or fragment; an optional
 * base path is kept (trailing `/` removed). Duplicates and empty entries are errors.
 * Plain `http:` is accepted only when the caller asks for it (tests with a plain dispatcher).
 */
import { SdkUsageError } from './errors.js';
import type { Env } from './roles.js';

export const DEFAULT_NEXUS_URL = 'https://localhost:8553';

/** A parsed base URL: `origin` for the dispatcher, `basePath` prefixed to every route. */
export interface NexusUrl {
  origin: string;
  basePath: string;
}

/**
 * One entry; `where` names it in errors (`entry 2 of 3`, or `it` for a list of one), which say the rule it broke and never
 * echo the URL (it may carry credentials).
 */
function parseNexusUrl(raw: string, allowHttp: boolean, where: string): NexusUrl {
  const bad = (rule: string): SdkUsageError => new SdkUsageError('sdk_bad_url', `${where} ${rule}`);
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw bad('is not a URL');
  }
  if (!(u.protocol === 'https:' || (allowHttp && u.protocol === 'http:'))) throw bad(`has the scheme ${JSON.stringify(u.protocol.slice(0, 16))}`);
  if (u.hostname === '') throw bad('has no host');
  if (u.username !== '' || u.password !== '') throw bad('carries credentials');
  if (u.search !== '' || u.hash !== '') throw bad('has a query or fragment');
  const basePath = u.pathname.replace(/\/+$/, '');
  return { origin: u.origin, basePath };
}

/** Parses a list of URLs (each entry may itself be a comma-separated list). */
export function parseNexusUrls(list: readonly string[], allowHttp = false): NexusUrl[] {
  const entries = list.flatMap((s) => s.split(',')).map((s) => s.trim());
  if (entries.length === 0) throw new SdkUsageError('sdk_no_urls');
  const out: NexusUrl[] = [];
  const seen = new Set<string>();
  for (const [i, e] of entries.entries()) {
    const where = entries.length === 1 ? 'it' : `entry ${i + 1} of ${entries.length}`;
    if (e === '') throw new SdkUsageError('sdk_bad_url', `${where} is empty`);
    const u = parseNexusUrl(e, allowHttp, where);
    const key = u.origin + u.basePath;
    if (seen.has(key)) throw new SdkUsageError('sdk_bad_url', `${where} repeats an earlier one`);
    seen.add(key);
    out.push(u);
  }
  return out;
}

/** The URL list from `SPIKE_NEXUS_API_URL`, or the default. */
export function nexusUrlsFromEnv(env: Env): string[] {
  const v = env['SPIKE_NEXUS_API_URL'];
  return v === undefined || v.trim() === '' ? [DEFAULT_NEXUS_URL] : [v];
}

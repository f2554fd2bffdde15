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

function parseNexusUrl(raw: string, allowHttp = false): NexusUrl {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new SdkUsageError('sdk_bad_url');
  }
  const schemeOk = u.protocol === 'https:' || (allowHttp && u.protocol === 'http:');
  if (!schemeOk || u.hostname === '' || u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
    throw new SdkUsageError('sdk_bad_url');
  }
  const basePath = u.pathname.replace(/\/+$/, '');
  return { origin: u.origin, basePath };
}

/** Parses a list of URLs (each entry may itself be a comma-separated list). */
export function parseNexusUrls(list: readonly string[], allowHttp = false): NexusUrl[] {
  const entries = list.flatMap((s) => s.split(',')).map((s) => s.trim());
  if (entries.length === 0) throw new SdkUsageError('sdk_no_urls');
  const out: NexusUrl[] = [];
  const seen = new Set<string>();
  for (const e of entries) {
    if (e === '') throw new SdkUsageError('sdk_bad_url', 'empty entry in the URL list');
    const u = parseNexusUrl(e, allowHttp);
    const key = u.origin + u.basePath;
    if (seen.has(key)) throw new SdkUsageError('sdk_bad_url', 'duplicate entry in the URL list');
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

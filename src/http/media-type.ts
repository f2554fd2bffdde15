/**
 * The request's `Content-Type`, parsed as RFC 9110 §8.3.1 defines it:
 * `type "/" subtype *( OWS ";" OWS name "=" ( token / quoted-string ) )`, with type, subtype
 * and parameter names case-insensitive.
 *
 * {@link unsupportedCharset} (SEC-17): a JSON body is read as UTF-8 only, so a request that
 * declares another charset for JSON or text (`application/json; charset=utf-16`) is refused rather than parsed
 * as something other than what its sender meant. A missing or unparsable header, or another
 * media type, is still read as JSON, as SPIKE does (generic clients often send `text/plain`
 * for a string body). The stream variant of a route is still chosen by SPIKE's exact header
 * text (router.ts; CIP-11 yields to the spec there), not by this parser.
 */

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

interface MediaType {
  /** `type/subtype`, lower-cased. */
  essence: string;
  /** Parameters by lower-cased name, values unquoted (a repeated name keeps every value). */
  params: Array<[string, string]>;
}

/** Splits on `;` outside quoted strings. */
function splitParams(v: string): string[] | null {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (quoted) {
      cur += c;
      if (c === '\\') {
        if (i + 1 >= v.length) return null;
        cur += v[++i]!;
      } else if (c === '"') quoted = false;
    } else if (c === ';') {
      parts.push(cur);
      cur = '';
    } else {
      if (c === '"') quoted = true;
      cur += c;
    }
  }
  if (quoted) return null;
  parts.push(cur);
  return parts;
}

/** The parsed header, `undefined` when absent, `null` when malformed. */
export function parseMediaType(header: string | string[] | undefined): MediaType | undefined | null {
  if (header === undefined) return undefined;
  if (typeof header !== 'string') return null;
  const parts = splitParams(header);
  if (parts === null) return null;
  const [essence, ...rest] = parts.map((p) => p.trim());
  const slash = essence!.indexOf('/');
  if (slash < 0 || !TOKEN.test(essence!.slice(0, slash)) || !TOKEN.test(essence!.slice(slash + 1))) return null;
  const params: Array<[string, string]> = [];
  for (const p of rest) {
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0) return null;
    const name = p.slice(0, eq).trim().toLowerCase();
    let value = p.slice(eq + 1).trim();
    if (!TOKEN.test(name)) return null;
    if (value.startsWith('"')) {
      if (value.length < 2 || !value.endsWith('"')) return null;
      value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    } else if (!TOKEN.test(value)) return null;
    params.push([name, value]);
  }
  return { essence: essence!.toLowerCase(), params };
}

/**
 * True when a JSON or text media type (`application/json`, `…+json`, `text/…`) declares a
 * charset other than UTF-8 (any `charset` parameter counts). Other types say nothing about a
 * text encoding (`application/octet-stream; charset=binary` stays SPIKE's JSON mode).
 */
export function unsupportedCharset(header: string | string[] | undefined): boolean {
  // Every JSON request comes here: a header that does not contain the (token) name `charset`
  // cannot declare one, so the usual `application/json` is never parsed.
  if (typeof header === 'string' && !/charset/i.test(header)) return false;
  const m = parseMediaType(header);
  if (m === undefined || m === null) return false;
  if (m.essence !== 'application/json' && !m.essence.endsWith('+json') && !m.essence.startsWith('text/')) return false;
  return m.params.some(([n, v]) => n === 'charset' && v.toLowerCase() !== 'utf-8' && v.toLowerCase() !== 'utf8');
}

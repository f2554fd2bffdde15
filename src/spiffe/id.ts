/**
 * SPIFFE IDs and trust domains (modelled on go-spiffe's `spiffeid` package).
 *
 * Rules (SPIFFE-ID standard, go-spiffe `spiffeid/id.go`, `path.go`, `trustdomain.go`):
 * - scheme is exactly `spiffe://` (lower case);
 * - trust domain: non-empty, characters `a-z 0-9 . - _` only (so no upper case, port,
 *   userinfo, IP literal brackets, percent-encoding), at most 255 bytes;
 * - path: empty, or `/`-separated segments; every segment non-empty, not `.` or `..`, made of
 *   `a-z A-Z 0-9 . - _` only (so no query, fragment, percent-encoding); no trailing `/`;
 * - the whole ID is at most 2048 bytes.
 * Errors are {@link SpiffeIdError}s whose message names the rule that was broken and never
 * echoes the input.
 */
import { SpikeError } from '../lib/index.js';

/** Maximum length of a SPIFFE ID in bytes (SPIFFE-ID standard §2.3). */
export const MAX_SPIFFE_ID_LENGTH = 2048;
/** Maximum length of a trust domain name in bytes (SPIFFE-ID standard §2.1). */
export const MAX_TRUST_DOMAIN_LENGTH = 255;

const SCHEME_PREFIX = 'spiffe://';

/** A SPIFFE ID or trust domain string that breaks a rule of the SPIFFE-ID standard. */
export class SpiffeIdError extends SpikeError {
  constructor(message: string) {
    super('spiffeid_invalid', message);
  }
}

const MSG = {
  empty: 'SPIFFE ID is empty',
  scheme: 'SPIFFE ID scheme is missing or invalid (must be "spiffe://")',
  tooLong: 'SPIFFE ID is longer than 2048 bytes',
  tdMissing: 'trust domain is missing',
  tdChar: 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
  tdTooLong: 'trust domain is longer than 255 bytes',
  tdHasPath: 'trust domain ID must not have a path',
  emptySegment: 'path cannot contain empty segments',
  dotSegment: 'path cannot contain dot segments',
  segmentChar: 'path segment characters are limited to letters, numbers, dots, dashes, and underscores',
  trailingSlash: 'path cannot have a trailing slash',
  segmentSlash: 'path segment must not contain a slash',
} as const;

function isTrustDomainChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2e || // .
    c === 0x2d || // -
    c === 0x5f // _
  );
}

function isPathSegmentChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2e ||
    c === 0x2d ||
    c === 0x5f
  );
}

/** Validates a bare trust domain name; throws {@link SpiffeIdError}. */
function validateTrustDomainName(name: string): void {
  if (name.length === 0) throw new SpiffeIdError(MSG.tdMissing);
  // Every allowed character is ASCII, so string length equals byte length once validated.
  for (let i = 0; i < name.length; i++) {
    if (!isTrustDomainChar(name.charCodeAt(i))) throw new SpiffeIdError(MSG.tdChar);
  }
  if (name.length > MAX_TRUST_DOMAIN_LENGTH) throw new SpiffeIdError(MSG.tdTooLong);
}

/** Validates a single path segment (without slashes). */
function validateSegment(seg: string): void {
  if (seg.length === 0) throw new SpiffeIdError(MSG.emptySegment);
  if (seg === '.' || seg === '..') throw new SpiffeIdError(MSG.dotSegment);
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c === 0x2f) throw new SpiffeIdError(MSG.segmentSlash);
    if (!isPathSegmentChar(c)) throw new SpiffeIdError(MSG.segmentChar);
  }
}

/**
 * Validates a path: '' or '/seg(/seg)*'. Checks in the same order as go-spiffe
 * (empty segment, dot segment, bad char, trailing slash).
 */
function validatePath(path: string): void {
  if (path.length === 0) return;
  if (path.charCodeAt(0) !== 0x2f) throw new SpiffeIdError(MSG.segmentChar);
  let segStart = 1;
  for (let i = 1; i <= path.length; i++) {
    const atEnd = i === path.length;
    const c = atEnd ? 0x2f : path.charCodeAt(i);
    if (c !== 0x2f) {
      if (!isPathSegmentChar(c)) throw new SpiffeIdError(MSG.segmentChar);
      continue;
    }
    const seg = path.slice(segStart, i);
    if (seg.length === 0) throw new SpiffeIdError(atEnd ? MSG.trailingSlash : MSG.emptySegment);
    if (seg === '.' || seg === '..') throw new SpiffeIdError(MSG.dotSegment);
    segStart = i + 1;
  }
}

/** A SPIFFE trust domain, e.g. `spike.ist`. Immutable. */
export class TrustDomain {
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /**
   * Parses a trust domain from its name (`example.org`) or its ID form (`spiffe://example.org`).
   * An ID form with a path is rejected.
   */
  static parse(s: string): TrustDomain {
    if (typeof s !== 'string' || s.length === 0) throw new SpiffeIdError(MSG.tdMissing);
    if (s.includes(':/')) {
      const id = SpiffeId.parse(s);
      if (id.path !== '') throw new SpiffeIdError(MSG.tdHasPath);
      return id.trustDomain;
    }
    validateTrustDomainName(s);
    return new TrustDomain(s);
  }

  /** The trust domain's ID form, `spiffe://<name>`. */
  idString(): string {
    return SCHEME_PREFIX + this.name;
  }

  /** The trust domain as a SPIFFE ID with an empty path. */
  id(): SpiffeId {
    return SpiffeId.fromSegments(this);
  }

  equals(o: TrustDomain): boolean {
    return o instanceof TrustDomain && o.name === this.name;
  }

  toString(): string {
    return this.name;
  }

  toJSON(): string {
    return this.name;
  }
}

/** A validated SPIFFE ID. Immutable; compare with {@link SpiffeId.equals}. */
export class SpiffeId {
  readonly trustDomain: TrustDomain;
  /** '' or '/seg(/seg)*'. */
  readonly path: string;

  private constructor(td: TrustDomain, path: string) {
    this.trustDomain = td;
    this.path = path;
  }

  /** Parses and validates a SPIFFE ID string (full spec rules, ≤ 2048 bytes). */
  static parse(s: string): SpiffeId {
    if (typeof s !== 'string' || s.length === 0) throw new SpiffeIdError(MSG.empty);
    // Length first, on UTF-8 bytes, so huge inputs are not scanned further.
    if (s.length > MAX_SPIFFE_ID_LENGTH || Buffer.byteLength(s, 'utf8') > MAX_SPIFFE_ID_LENGTH) {
      throw new SpiffeIdError(MSG.tooLong);
    }
    if (!s.startsWith(SCHEME_PREFIX)) throw new SpiffeIdError(MSG.scheme);
    const rest = s.slice(SCHEME_PREFIX.length);
    const slash = rest.indexOf('/');
    const tdName = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash);
    const td = TrustDomain.parse(tdName);
    validatePath(path);
    return new SpiffeId(td, path);
  }

  /** Builds an ID from a trust domain and path segments (each validated; no slashes). */
  static fromSegments(td: TrustDomain, ...segments: string[]): SpiffeId {
    if (!(td instanceof TrustDomain)) throw new SpiffeIdError(MSG.tdMissing);
    for (const seg of segments) validateSegment(seg);
    const path = segments.length === 0 ? '' : '/' + segments.join('/');
    if (SCHEME_PREFIX.length + td.name.length + path.length > MAX_SPIFFE_ID_LENGTH) {
      throw new SpiffeIdError(MSG.tooLong);
    }
    return new SpiffeId(td, path);
  }

  /** The path split into segments ([] for an empty path). */
  segments(): string[] {
    return this.path === '' ? [] : this.path.slice(1).split('/');
  }

  toString(): string {
    return SCHEME_PREFIX + this.trustDomain.name + this.path;
  }

  toJSON(): string {
    return this.toString();
  }

  equals(o: SpiffeId): boolean {
    return o instanceof SpiffeId && o.path === this.path && o.trustDomain.equals(this.trustDomain);
  }

  memberOf(td: TrustDomain): boolean {
    return this.trustDomain.equals(td);
  }
}

/**
 * The driver of the wire golden test: sends scripted raw requests to a running stack's Nexus
 * and Keepers (test/helpers/raw-wire.ts), turns each exchange into a normalised golden entry
 * (test/helpers/wire-golden.ts), and records the requests the SDK's `NexusClient` hands to its
 * HTTP dispatcher (an undici interceptor in front of the real mTLS dispatcher, so every SDK
 * call also really reaches Nexus).
 *
 * Request bodies are templates: `{{name}}` is replaced by a value the scenario captured
 * earlier with {@link GoldenRun.set} (a share, a ciphertext), and the template is what is
 * recorded (rule R1).
 */
import type { Dispatcher } from 'undici';
import { NexusClient } from '../../src/sdk/index.js';
import { WorkloadX509Source, authorizeIf, createMtlsDispatcher } from '../../src/spiffe/index.js';
import { RawWire, requestBytes, type WireAnswer } from './raw-wire.js';
import { type Stack, TD } from './stack.js';
import { normaliseBody, normaliseHeaders, type RawEntry, type SdkEntry } from './wire-golden.js';

export const NEXUS_ID = `spiffe://${TD}/spike/nexus`;
export const JSON_TYPE = 'application/json';
export const OCTETS = 'application/octet-stream';

/** One scripted raw request. */
export interface Call {
  /** Unique name of the exchange in the golden file. */
  name: string;
  /** Caller identity (a stack identity name). */
  as: string;
  /** `nexus` (default) or `keeper-N`. */
  to?: string;
  method?: string;
  /** Path and query, sent as is. */
  target: string;
  /** Content-Type header; default JSON; null = none. */
  contentType?: string | null;
  /** Body template (`{{name}}` placeholders). */
  body?: string;
  /** A body that is not text: its bytes (recorded per rule B1, or B2 when `randomOctets`). */
  bytes?: Buffer;
  randomOctets?: boolean;
  chunked?: boolean;
  /** Declare this Content-Length and send no body. */
  declaredLengthOnly?: number;
}

const isRandomOctetAnswer = (target: string, a: WireAnswer): boolean =>
  target.startsWith('/v1/cipher/encrypt') &&
  a.headers.some(([n, v]) => n.toLowerCase() === 'content-type' && v === OCTETS);

export class GoldenRun {
  readonly exchanges: RawEntry[] = [];
  readonly sdk: SdkEntry[] = [];
  readonly #vars = new Map<string, string>();
  readonly #wire: RawWire;
  readonly #sdkClients: Array<{ client: NexusClient; source: WorkloadX509Source }> = [];
  #sdkCurrent: SdkEntry['requests'] | undefined;

  constructor(private readonly stack: Stack) {
    this.#wire = new RawWire((identity) => stack.socket(identity));
  }

  /** Sets the value of `{{name}}` in later templates. */
  set(name: string, value: string): void {
    this.#vars.set(name, value);
  }

  #fill(template: string): string {
    return template.replace(/\{\{([A-Za-z0-9_.]+)\}\}/g, (_m: string, name: string) => {
      const v = this.#vars.get(name);
      if (v === undefined) throw new Error(`template value {{${name}}} was never captured`);
      return v;
    });
  }

  #server(to: string): { port: number; serverId: string } {
    if (to === 'nexus') return { port: Number(new URL(this.stack.nexusUrl).port), serverId: NEXUS_ID };
    const m = /^keeper-(\d+)$/.exec(to);
    const url = m ? this.stack.keeperUrls[Number(m[1]) - 1] : undefined;
    if (!m || url === undefined) throw new Error(`unknown server ${to}`);
    return { port: Number(new URL(url).port), serverId: `spiffe://${TD}/spike/keeper/${m[1]}` };
  }

  /** Sends one call, records it, and returns the answer (undefined when there was none). */
  async call(c: Call): Promise<WireAnswer | undefined> {
    if (this.exchanges.some((e) => e.name === c.name)) throw new Error(`duplicate exchange name ${c.name}`);
    const to = c.to ?? 'nexus';
    const method = c.method ?? 'POST';
    const contentType = c.contentType === undefined ? JSON_TYPE : c.contentType;
    const headers = contentType === null ? [] : [`Content-Type: ${contentType}`];
    const body = c.bytes ?? Buffer.from(this.#fill(c.body ?? ''), 'utf8');
    const bytes = requestBytes({ method, target: c.target, headers, body, chunked: c.chunked, declaredLengthOnly: c.declaredLengthOnly });
    const outcome = await this.#wire.exchange({ ...this.#server(to), identity: c.as, bytes });

    const recordedHeaders = [...headers];
    if (c.chunked === true) recordedHeaders.push('Transfer-Encoding: chunked');
    if (c.declaredLengthOnly !== undefined) recordedHeaders.push(`Content-Length: ${c.declaredLengthOnly} (declared; no body sent)`);
    const request = {
      line: `${method} ${c.target} HTTP/1.1`,
      headers: recordedHeaders,
      body: c.bytes !== undefined ? normaliseBody(c.bytes, { randomOctets: c.randomOctets === true }).text : (c.body ?? ''),
    };
    if (outcome.kind === 'no_answer') {
      this.exchanges.push({ name: c.name, as: c.as, to, request, response: { noAnswer: true } });
      return undefined;
    }
    const nb = normaliseBody(outcome.body, { randomOctets: isRandomOctetAnswer(c.target, outcome) });
    this.exchanges.push({
      name: c.name,
      as: c.as,
      to,
      request,
      response: { status: outcome.statusLine, headers: normaliseHeaders(outcome.headers, outcome.body, nb.variableLength), body: nb.text },
    });
    return outcome;
  }

  /** `call`, then the answer's body parsed as JSON (throws when there is none). */
  async callJson(c: Call): Promise<Record<string, unknown>> {
    const a = await this.call(c);
    if (a === undefined) throw new Error(`${c.name}: no answer`);
    return JSON.parse(a.body.toString('utf8')) as Record<string, unknown>;
  }

  /** An SDK client as `identity` whose dispatcher records every request it is given. */
  async sdkClient(identity: string): Promise<NexusClient> {
    const source = await WorkloadX509Source.open({ endpoint: this.stack.socket(identity), timeoutMs: 15_000 });
    const inner = createMtlsDispatcher({ source, authorizeServer: authorizeIf((id) => id.toString() === NEXUS_ID) });
    const recorder: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
      this.#recordSdkRequest(opts);
      return dispatch(opts, handler);
    };
    const client = NexusClient.create({ urls: [this.stack.nexusUrl], dispatcher: inner.compose(recorder) });
    this.#sdkClients.push({ client, source });
    return client;
  }

  #recordSdkRequest(opts: Dispatcher.DispatchOptions): void {
    if (this.#sdkCurrent === undefined) throw new Error('SDK request outside sdkCall()');
    const headers: string[] = [];
    const h = opts.headers;
    if (h !== undefined && h !== null && !Array.isArray(h) && !(Symbol.iterator in h)) {
      for (const [name, value] of Object.entries(h as Record<string, unknown>)) headers.push(`${name}: ${String(value)}`);
    } else if (h !== undefined && h !== null) {
      throw new Error('SDK headers in an unexpected form');
    }
    const raw = opts.body;
    if (raw !== undefined && raw !== null && !Buffer.isBuffer(raw) && !(raw instanceof Uint8Array) && typeof raw !== 'string') {
      throw new Error('SDK body is not bytes (pass Buffers to the stream calls)');
    }
    const body = raw === undefined || raw === null ? Buffer.alloc(0) : Buffer.from(raw as Uint8Array | string);
    const randomOctets = opts.path.startsWith('/v1/cipher/decrypt') && headers.includes(`content-type: ${OCTETS}`);
    this.#sdkCurrent.push({ method: opts.method, path: opts.path, headers, body: normaliseBody(body, { randomOctets }).text });
  }

  /** Runs one SDK call and records the requests it sent under `name`. */
  async sdkCall<T>(name: string, fn: () => Promise<T>): Promise<T> {
    if (this.sdk.some((e) => e.name === name)) throw new Error(`duplicate SDK entry ${name}`);
    const entry: SdkEntry = { name, requests: [] };
    this.#sdkCurrent = entry.requests;
    try {
      return await fn();
    } finally {
      this.#sdkCurrent = undefined;
      this.sdk.push(entry);
    }
  }

  async close(): Promise<void> {
    for (const { client, source } of this.#sdkClients) {
      await client.close().catch(() => undefined);
      source.close();
    }
    this.#wire.close();
  }
}

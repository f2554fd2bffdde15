/**
 * spike-agent's Workload API server: one gRPC server per configured identity, each on its own
 * unix socket `<socketDir>/<name>.sock` (socket 0600 inside a 0700 folder). File permissions
 * are the attestation: whoever can open the socket gets that identity's X.509-SVID.
 *
 * Per identity, an SVID is issued at start and re-issued at half its lifetime; every open
 * `FetchX509SVID` stream receives the new one. `FetchX509Bundles` streams the CA bundle. Every
 * RPC first checks the `workload.spiffe.io: true` header (InvalidArgument without it); the JWT
 * RPCs then answer Unimplemented. Request messages are capped at 16 KiB (the X.509 requests
 * are empty) and streams per identity are bounded.
 */
import fs from 'node:fs';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { SpikeError, type Logger } from '../lib/index.js';
import {
  WORKLOAD_API_HEADER,
  WORKLOAD_API_HEADER_VALUE,
  type EmptyMessage,
  type X509BundlesResponseMessage,
  type X509SvidResponseMessage,
} from '../spiffe/index.js';
import { ensurePrivateDir, type DevCa, type IssuedSvid } from './ca.js';
import { socketPath, type AgentIdentity } from './config.js';
import { workloadApiDefinitions } from './service.js';

class AgentServerError extends SpikeError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

interface WorkloadApiServerOptions {
  ca: DevCa;
  identities: readonly AgentIdentity[];
  socketDir: string;
  svidTtlMs: number;
  logger: Logger;
  /** Open X.509 streams allowed per identity; default 256. */
  maxStreamsPerIdentity?: number;
}

const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': 16 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.max_concurrent_streams': 32,
  'grpc.max_metadata_size': 16 * 1024,
  'grpc-node.max_session_memory': 4,
};
/** Retry delay when issuing an SVID fails (should not happen with a healthy CA). */
const ISSUE_RETRY_MS = 1_000;

type SvidStream = grpc.ServerWritableStream<EmptyMessage, X509SvidResponseMessage>;
type BundleStream = grpc.ServerWritableStream<EmptyMessage, X509BundlesResponseMessage>;

function hasSecurityHeader(md: grpc.Metadata): boolean {
  const v = md.get(WORKLOAD_API_HEADER);
  return v.length === 1 && v[0] === WORKLOAD_API_HEADER_VALUE;
}

const MISSING_HEADER: Partial<grpc.StatusObject> = {
  code: grpc.status.INVALID_ARGUMENT,
  details: 'security header missing from request',
};
const JWT_UNIMPLEMENTED: Partial<grpc.StatusObject> = {
  code: grpc.status.UNIMPLEMENTED,
  details: 'JWT-SVIDs are not served by spike-agent',
};

/** True if something accepts connections on the unix socket `p`. */
function socketAnswers(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(p);
    const done = (v: boolean): void => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(500, () => done(false));
  });
}

/** The state of one identity: its socket, current SVID and open streams. */
class IdentitySlot {
  readonly identity: AgentIdentity;
  readonly socket: string;
  readonly server = new grpc.Server(SERVER_OPTIONS);
  readonly svidStreams = new Set<SvidStream>();
  readonly bundleStreams = new Set<BundleStream>();
  current: IssuedSvid | undefined;
  /** Kept one generation so a stream still flushing it never sees zeroed bytes. */
  previous: IssuedSvid | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Set once this process listens on the socket (only then is the file ours to remove). */
  bound = false;

  constructor(identity: AgentIdentity, socket: string) {
    this.identity = identity;
    this.socket = socket;
  }
}

export class WorkloadApiServer {
  readonly #opts: WorkloadApiServerOptions;
  readonly #slots: IdentitySlot[] = [];
  readonly #bundleDer: Buffer;
  readonly #maxStreams: number;
  #closed = false;

  private constructor(opts: WorkloadApiServerOptions) {
    this.#opts = opts;
    this.#bundleDer = opts.ca.bundleDer();
    this.#maxStreams = opts.maxStreamsPerIdentity ?? 256;
  }

  /** Issues the first SVIDs, then binds every socket. Resolves when all of them listen. */
  static async start(opts: WorkloadApiServerOptions): Promise<WorkloadApiServer> {
    const s = new WorkloadApiServer(opts);
    try {
      await s.#start();
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  /** Socket path of each identity, by name. */
  sockets(): Record<string, string> {
    return Object.fromEntries(this.#slots.map((s) => [s.identity.name, s.socket]));
  }

  /** Current SVID serial of an identity (for logs and tests). */
  currentSerial(name: string): string | undefined {
    return this.#slots.find((s) => s.identity.name === name)?.current?.serialNumber;
  }

  async #start(): Promise<void> {
    const { socketDir, identities, logger } = this.#opts;
    ensurePrivateDir(socketDir);
    const { WORKLOAD_API_SERVICE } = await workloadApiDefinitions();
    for (const identity of identities) {
      const slot = new IdentitySlot(identity, socketPath({ socketDir }, identity.name));
      this.#slots.push(slot);
      await this.#rotate(slot);
      slot.server.addService(WORKLOAD_API_SERVICE, this.#handlers(slot));
    }
    for (const slot of this.#slots) {
      await this.#bind(slot);
      logger.info({ identity: slot.identity.name, spiffeId: slot.identity.spiffeId.toString(), socket: slot.socket }, 'Workload API socket listening');
    }
  }

  async #bind(slot: IdentitySlot): Promise<void> {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(slot.socket);
    } catch {
      st = undefined;
    }
    if (st) {
      if (!st.isSocket()) throw new AgentServerError('agent_socket_path_taken', `${slot.socket} exists and is not a socket`);
      if (await socketAnswers(slot.socket)) throw new AgentServerError('agent_socket_in_use', `${slot.socket} is served by another process`);
      fs.unlinkSync(slot.socket); // stale socket of a previous run
    }
    await new Promise<void>((resolve, reject) => {
      slot.server.bindAsync(`unix://${slot.socket}`, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err) reject(new AgentServerError('agent_socket_bind_failed', `cannot listen on ${slot.socket}`, { cause: err }));
        else resolve();
      });
    });
    slot.bound = true;
    // The folder is 0700, so nobody else can reach the socket between bind and chmod.
    fs.chmodSync(slot.socket, 0o600);
  }

  /** Issues a new SVID for the slot, pushes it to open streams and schedules the next one. */
  async #rotate(slot: IdentitySlot): Promise<void> {
    if (this.#closed) return;
    const { ca, svidTtlMs, logger } = this.#opts;
    let next: IssuedSvid;
    try {
      next = await ca.issueSvid(slot.identity.spiffeId, svidTtlMs);
    } catch (err) {
      if (!slot.current) throw err;
      logger.error({ identity: slot.identity.name, err }, 'SVID issuance failed; retrying');
      slot.timer = setTimeout(() => void this.#rotate(slot), ISSUE_RETRY_MS);
      return;
    }
    if (this.#closed) {
      next.privateKeyPkcs8.fill(0);
      return;
    }
    slot.previous?.privateKeyPkcs8.fill(0);
    slot.previous = slot.current;
    slot.current = next;
    const lifetime = next.notAfter.getTime() - Date.now();
    const delay = Math.max(ISSUE_RETRY_MS / 2, Math.floor(lifetime / 2));
    slot.timer = setTimeout(() => void this.#rotate(slot), delay);
    logger.debug({ identity: slot.identity.name, serial: next.serialNumber, notAfter: next.notAfter.toISOString(), streams: slot.svidStreams.size }, 'issued X.509-SVID');
    for (const call of slot.svidStreams) this.#sendSvid(slot, call);
  }

  #svidResponse(slot: IdentitySlot): X509SvidResponseMessage {
    const svid = slot.current!;
    return {
      svids: [{
        spiffe_id: slot.identity.spiffeId.toString(),
        x509_svid: svid.certChainDer,
        x509_svid_key: svid.privateKeyPkcs8,
        bundle: this.#bundleDer,
        hint: '',
      }],
      crl: [],
      federated_bundles: {},
    };
  }

  #sendSvid(slot: IdentitySlot, call: SvidStream): void {
    if (call.cancelled || call.writableEnded) {
      slot.svidStreams.delete(call);
      return;
    }
    call.write(this.#svidResponse(slot));
  }

  #handlers(slot: IdentitySlot): grpc.UntypedServiceImplementation {
    const log = this.#opts.logger;
    const refuse = (what: string): void => {
      log.warn({ identity: slot.identity.name, rpc: what }, 'Workload API request without the security header');
    };
    const track = <T extends SvidStream | BundleStream>(set: Set<T>, call: T): boolean => {
      if (set.size >= this.#maxStreams) {
        call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'too many open streams' });
        return false;
      }
      set.add(call);
      const drop = (): void => {
        set.delete(call);
      };
      call.on('cancelled', drop);
      call.on('close', drop);
      call.on('finish', drop);
      call.on('error', drop);
      return true;
    };
    return {
      FetchX509SVID: (call: SvidStream) => {
        if (!hasSecurityHeader(call.metadata)) {
          refuse('FetchX509SVID');
          call.emit('error', MISSING_HEADER);
          return;
        }
        if (this.#closed || !track(slot.svidStreams, call)) return;
        log.debug({ identity: slot.identity.name }, 'FetchX509SVID stream opened');
        this.#sendSvid(slot, call);
      },
      FetchX509Bundles: (call: BundleStream) => {
        if (!hasSecurityHeader(call.metadata)) {
          refuse('FetchX509Bundles');
          call.emit('error', MISSING_HEADER);
          return;
        }
        if (this.#closed || !track(slot.bundleStreams, call)) return;
        // The CA never changes while the agent runs, so one message is all this stream sends.
        call.write({ crl: [], bundles: { [this.#opts.ca.trustDomain.idString()]: this.#bundleDer } });
      },
      FetchJWTSVID: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        cb(hasSecurityHeader(call.metadata) ? JWT_UNIMPLEMENTED : MISSING_HEADER, null);
      },
      ValidateJWTSVID: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        cb(hasSecurityHeader(call.metadata) ? JWT_UNIMPLEMENTED : MISSING_HEADER, null);
      },
      FetchJWTBundles: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        call.emit('error', hasSecurityHeader(call.metadata) ? JWT_UNIMPLEMENTED : MISSING_HEADER);
      },
    };
  }

  /** Ends every stream, closes every socket (removing the files) and zeroes held keys. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots) {
      if (slot.timer) clearTimeout(slot.timer);
      for (const call of [...slot.svidStreams, ...slot.bundleStreams]) {
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'agent is shutting down' });
      }
      slot.svidStreams.clear();
      slot.bundleStreams.clear();
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          slot.server.forceShutdown();
          resolve();
        }, 1_000);
        slot.server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      if (slot.bound) {
        try {
          fs.unlinkSync(slot.socket);
        } catch {
          /* already removed by the server */
        }
      }
      slot.current?.privateKeyPkcs8.fill(0);
      slot.previous?.privateKeyPkcs8.fill(0);
    }
  }
}

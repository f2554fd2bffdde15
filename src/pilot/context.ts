/**
 * Per-run context of a Pilot command: the I/O streams, the environment, and a lazily
 * connected `NexusClient` whose own SPIFFE ID has passed the command's role gate.
 * Nothing connects before a command that needs Nexus runs, so `--help`
 * and usage errors never wait for a Workload API (gaps B15).
 *
 * A CLI call fetches its SVID once (`svid: 'once'`: no stream kept open) and a dead agent
 * (no socket, a stale socket, connection refused) is one line at once: "no Workload API at
 * <socket>: is the agent running?", not a wait for the source timeout. No logger is created
 * unless SPIKE_SYSTEM_LOG_LEVEL asks for one (start-up time: pino is then never loaded).
 */
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { createLogger, parseLevel, SpikeError } from '../lib/index.js';
import { NexusClient, assertDefaultTrusted, clientRoles, type Env } from '../sdk/index.js';
import { PilotError, type CommandGroup } from './errors.js';
import { resolvePilotEnv, type PilotRole } from './env.js';
import { ESCAPED_NOTE, escapeForTerminal } from './terminal-text.js';

/** Streams and process facts a run uses (injectable for tests). */
export interface PilotIo {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable;
  stdin: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  env: Env;
  cwd: string;
  /** Whether the process's stdin is a directory (Node reads one as an empty stream); absent in tests of other streams. */
  stdinIsDirectory?: () => boolean;
}

/** Role gate: which identity a command needs; `any` skips the client-side check. */
export type Gate = PilotRole | 'any';

/** Pilot waits this long for its first SVID unless SPIKE_SPIFFE_SOURCE_TIMEOUT says otherwise. */
const PILOT_SOURCE_TIMEOUT_MS = 10_000;

export interface GlobalOptions {
  socket?: string;
}

export class PilotContext {
  private client: NexusClient | undefined;
  /** The command being run (for group-specific error messages). */
  where: { group: CommandGroup; command: string } = { group: '', command: '' };
  /** `--socket` given after the subcommand (wins over the one before it). */
  leafSocket: string | undefined;
  private escapedNoted = false;

  constructor(
    readonly io: PilotIo,
    private readonly globals: () => GlobalOptions,
    /** Test seam: how a client is made. */
    private readonly connect: typeof NexusClient.connect = (o) => NexusClient.connect(o),
  ) {}

  /** Writes command output; at a terminal, control characters are shown escaped (terminal-text.ts). */
  out(text: string): void {
    if (this.io.stdout.isTTY === true) {
      const shown = escapeForTerminal(text);
      if (shown.changed && !this.escapedNoted) {
        this.escapedNoted = true;
        this.note(ESCAPED_NOTE);
      }
      text = shown.text;
    }
    this.io.stdout.write(text);
  }

  /** The `--socket` option in effect (after the subcommand wins over before it). */
  socketOption(): string | undefined {
    return this.leafSocket ?? this.globals().socket;
  }

  /** A one-line notice on stderr (prompts, warnings). */
  note(line: string): void {
    this.io.stderr.write(`${line}\n`);
  }

  /** Connects (once) and checks that this process has the identity `gate` requires. */
  async nexus(gate: Gate): Promise<NexusClient> {
    if (this.client) return this.client;
    const role: PilotRole = gate === 'any' ? 'operator' : gate;
    const r = resolvePilotEnv({ env: this.io.env, cwd: this.io.cwd, role, socket: this.socketOption() });
    for (const w of r.warnings) this.note(w);
    const roles = clientRoles(r.env);
    const endpoint = r.endpoint;
    const sockPath = endpoint.startsWith('unix://') ? endpoint.slice('unix://'.length) : endpoint.startsWith('unix:') ? endpoint.slice(5) : undefined;
    if (sockPath !== undefined && !fs.existsSync(sockPath)) throw noAgent(endpoint);
    if (r.endpointSource.kind === 'default') {
      try {
        assertDefaultTrusted();
      } catch (e) {
        throw new PilotError(`Error: ${e instanceof SpikeError ? e.message.replace(/^refusing/, 'Refusing') : 'Refusing the default Workload API socket'}.`, { code: 'pilot_untrusted_default_socket' });
      }
    }
    // The CLI's stderr is for one error line: the SDK logs only when asked to.
    const level = r.env['SPIKE_SYSTEM_LOG_LEVEL'] !== undefined ? parseLevel(r.env['SPIKE_SYSTEM_LOG_LEVEL']) : 'silent';
    let client: NexusClient;
    try {
      client = await this.connect({
        env: r.env,
        endpoint,
        svid: 'once',
        // A stopped or unready Nexus is reported at once, unless the variable asks for retries.
        retryUnavailableMs: r.env['SPIKE_HTTP_CLIENT_UNAVAILABLE_RETRY'] !== undefined ? undefined : 0,
        sourceTimeoutMs: r.env['SPIKE_SPIFFE_SOURCE_TIMEOUT'] !== undefined ? undefined : PILOT_SOURCE_TIMEOUT_MS,
        ...(level !== 'silent' ? { logger: createLogger({ component: 'pilot', level, destination: this.io.stderr }) } : {}),
      });
    } catch (e) {
      if (e instanceof SpikeError && e.code === 'workload_api_no_agent') throw noAgent(endpoint);
      throw workloadApiFailure(e, endpoint) ?? e;
    }
    this.client = client;
    if (gate !== 'any') {
      const id = client.selfId ?? '';
      const [ok, needed] =
        gate === 'operator'
          ? [roles.isPilotOperator(id), roles.pilotOperatorId]
          : gate === 'recover'
            ? [roles.isPilotRecover(id), roles.pilotRecoverId]
            : [roles.isPilotRestore(id), roles.pilotRestoreId];
      if (!ok) {
        const hint = gate === 'operator' ? '' : ` (dev stack: --socket ${gate})`;
        throw new PilotError(`Error: This command needs the ${needed} identity, but this process is ${id || 'unknown'}${hint}.`, {
          code: 'pilot_role_denied',
        });
      }
    }
    return client;
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await c.close();
  }
}

/** Nothing listens at the Workload API address: one line, at once. */
function noAgent(endpoint: string): PilotError {
  return new PilotError(
    `Error: no Workload API at ${endpoint}: is the agent running? (dev stack: \`npm start\` in this folder; else set SPIFFE_ENDPOINT_SOCKET or --socket)`,
    { code: 'pilot_no_socket' },
  );
}

/** The Workload API classes of `WorkloadApiError` codes. */
const WORKLOAD_API_CLASS: Record<string, string> = {
  workload_api_unavailable: 'Workload API unreachable',
  workload_api_closed: 'Workload API unreachable',
  workload_api_rejected: 'Workload API refused the request',
  workload_api_unimplemented: 'Workload API refused the request',
  workload_api_bad_response: 'Workload API answer unusable',
  workload_api_endpoint_invalid: 'invalid Workload API address',
};

/** A Workload API failure as one line naming the endpoint and the cause class; undefined for other errors. */
function workloadApiFailure(e: unknown, endpoint: string): PilotError | undefined {
  if (!(e instanceof SpikeError) || !e.code.startsWith('workload_api')) return undefined;
  const cls = WORKLOAD_API_CLASS[e.code] ?? 'Workload API unreachable';
  const detail = e.message.replace(/[\r\n]+/g, ' ').trim().replace(/[.]$/, '');
  return new PilotError(`Error: Cannot get an identity from the SPIFFE Workload API at ${endpoint} (${cls}): ${detail}.`, { code: 'pilot_workload_api' });
}

/** Wraps a commander action so failures are reported with the command's group. */
export function act<A extends unknown[]>(
  ctx: PilotContext,
  group: CommandGroup,
  command: string,
  fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    ctx.where = { group, command };
    // commander passes the Command last: its own --socket (after the subcommand) counts too.
    const cmd = args[args.length - 1] as { opts?: () => Record<string, unknown> } | undefined;
    const sock = cmd && typeof cmd.opts === 'function' ? cmd.opts()['socket'] : undefined;
    if (typeof sock === 'string') ctx.leafSocket = sock;
    await fn(...args);
  };
}

/**
 * How Pilot reports failures: exactly one readable line on stderr and a non-zero exit
 * (D15; SPIKE exits 0 after API errors, gaps B14). Stack traces are never printed.
 *
 * Exit codes: 0 success · 1 the operation failed (API error, role check, I/O, invalid input
 * detected while running) · 2 usage error (unknown command or flag, missing or malformed
 * argument). Messages follow SPIKE's wording where it has one, and never echo
 * secret values or shard material. The one path shown is the user's own argument in
 * "not found: <path>" (the CLI echoing its own input to the user's terminal; Nexus never does).
 */
import { SpikeError } from '../lib/index.js';
import type { StoreFailureKind } from '../protocol/curve-free.js';
import { NexusApiError, SdkUsageError, failureText } from '../sdk/index.js';

export const EXIT_OK = 0;
const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure with a ready-made one-line message (starting with "Error: "). */
export class PilotError extends SpikeError {
  readonly exitCode: number;
  constructor(line: string, opts: { usage?: boolean; code?: string } = {}) {
    super(opts.code ?? (opts.usage ? 'pilot_usage' : 'pilot_failed'), line);
    this.exitCode = opts.usage ? EXIT_USAGE : EXIT_FAILURE;
  }
}

/**
 * Runs an API call whose "not found" answer is reported as `Error: not found: <what>.`,
 * `what` being the user's own argument as typed (a path or a policy name that passed the
 * client-side grammar, so it is printable). Nexus itself never echoes it.
 */
export async function notFoundAs<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof NexusApiError && e.code === 'api_not_found') throw new PilotError(`Error: not found: ${what}.`, { code: 'pilot_not_found' });
    throw e;
  }
}

/**
 * Exit code for a commander exit: help asked for (`--help`, `spike help …`) and `--version`
 * are 0; help shown because a command was missing, and every other commander error, are usage errors.
 */
export function commanderExitCode(e: { code: string; exitCode: number }): number {
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return EXIT_OK;
  if (e.code === 'commander.help' && e.exitCode === 0) return EXIT_OK;
  return EXIT_USAGE;
}

/** Usage error (exit 2). */
export function usageError(line: string): PilotError {
  return new PilotError(line, { usage: true });
}

/** Command group a failure happened in, for SPIKE's group-specific messages. */
export type CommandGroup = 'secret' | 'policy' | 'cipher' | 'operator' | 'audit' | '';

function suffix(e: NexusApiError): string {
  return e.wireErr && e.wireErr !== e.code ? ` (${e.wireErr})` : '';
}

/**
 * For a call that got no HTTP answer: "Cannot reach SPIKE Nexus at <url> (<cause>)" or
 * "Cannot trust SPIKE Nexus at <url> (TLS: …); nothing was sent", naming every URL tried.
 */
function connectionPhrase(e: NexusApiError): string | undefined {
  if (e.status !== undefined || e.attempts.length === 0) return undefined;
  // The same URL tried again with the same result is named once.
  const where = [...new Set(e.attempts.map((a) => `${a.url} (${failureText(a.failure)})`))].join(', ');
  return e.code === 'tls_peer_rejected' ? `Cannot trust SPIKE Nexus at ${where}; nothing was sent` : `Cannot reach SPIKE Nexus at ${where}`;
}

/**
 * Advice for a store failure Nexus named: a disk or database problem is fixed where it is,
 * never with `spike operator restore` (which is for a Nexus that lost its root key).
 */
const STORE_FAILURE_LINE: Record<StoreFailureKind, string> = {
  disk_full:
    'Error: SPIKE Nexus cannot write: the disk that holds its store is full. Free space on that volume (or grow it), then try again; nothing needs restoring.',
  read_only:
    'Error: SPIKE Nexus cannot write: its store is read-only. Check that the data volume is mounted read-write and writable by Nexus (or that the database accepts writes), then try again; nothing needs restoring.',
  unreachable:
    'Error: SPIKE Nexus cannot reach its database. Check that the database server is up and reachable from Nexus, and its connection settings (SPIKE_NEXUS_DATABASE_URL); nothing needs restoring.',
  io_error: 'Error: The store of SPIKE Nexus reported an I/O error. Check the disk and the kernel log of the Nexus host.',
  integrity:
    'Error: The store of SPIKE Nexus failed an integrity check (damaged database file). Check the Nexus log and the disk; restore the database from a backup if it persists.',
  audit_disk_full:
    'Error: SPIKE Nexus refused the request because the disk that holds its audit log is full (nothing was changed). Free space on that volume (or grow it), then try again; nothing needs restoring.',
  audit_read_only:
    'Error: SPIKE Nexus refused the request because its audit log is read-only (nothing was changed). Check that the audit volume is mounted read-write and the file is writable by Nexus, then try again; nothing needs restoring.',
  audit_io_error: 'Error: SPIKE Nexus refused the request because writing its audit log failed with an I/O error (nothing was changed). Check the disk and the kernel log of the Nexus host.',
  timeout:
    'Error: SPIKE Nexus\'s database did not answer in time. Try again (the SDK moves to another instance when the write was not applied); if it persists, check the database\'s load and network.',
};

/** Operator commands that run a sharing move, which Nexus answers only when it is done. */
const MOVE_COMMANDS: ReadonlySet<string> = new Set(['refresh-shares', 'reshare', 'rotate-root-key']);

/** The message for an SDK error (SPIKE's wording plus our codes). */
function apiErrorLine(e: NexusApiError, group: CommandGroup, command = ''): string {
  const conn = connectionPhrase(e);
  if (conn !== undefined) {
    if (group === 'operator' && command === 'recover') return `Error: Failed to retrieve recovery shards: ${conn.charAt(0).toLowerCase()}${conn.slice(1)}.`;
    // The request reached Nexus before the wait ran out: a sharing move may still finish there.
    if (group === 'operator' && MOVE_COMMANDS.has(command) && e.attempts.at(-1)?.failure.class === 'timeout') {
      return `Error: ${conn}. The ${command} request may still complete on SPIKE Nexus: check its log (sharing move: …) before running it again.`;
    }
    return `Error: ${conn}.`;
  }
  const w = e.wireErr ?? '';
  if (group === 'cipher') {
    if (w.includes('decrypt')) return 'Error: Decryption operation failed.';
    if (w.includes('encrypt')) return 'Error: Encryption operation failed.';
    if (w === 'crypto_cipher_not_available') return 'Error: Cipher not available.';
  }
  if (group === 'operator' && command === 'recover' && e.code !== 'state_not_ready' && e.code !== 'access_unauthorized') {
    return `Error: Failed to retrieve recovery shards${suffix(e)}.`;
  }
  if (group === 'operator' && command === 'restore' && e.code === 'api_bad_request') {
    return `Error: SPIKE Nexus rejected the shard${suffix(e)}; it was not counted.`;
  }
  if (group === 'operator' && command === 'restore' && e.code === 'api_conflict') {
    return `Error: SPIKE Nexus already holds a different shard with this id${suffix(e)}; it was not counted.`;
  }
  if (group === 'operator' && (command === 'refresh-shares' || command === 'reshare') && e.storeFailure !== undefined && !e.storeFailure.startsWith('audit_')) {
    // The store failed inside the move: it may have stopped part-way (a pending sharing is
    // finished or dropped at the next Nexus start), so "did not run" would not be true.
    return `${STORE_FAILURE_LINE[e.storeFailure]} The ${command === 'reshare' ? 'Keeper set change' : 'share refresh'} may have stopped part-way: `
      + `once the store is back, run \`spike operator ${command}\` again, then re-export the recovery shards with \`spike operator recover\`.`;
  }
  if (group === 'operator' && command === 'refresh-shares' && e.code === 'state_not_ready') {
    return 'Error: The share refresh did not run: SPIKE Nexus is not ready, or not every Keeper acknowledged its new share (the current shares stay in force); start the missing Keepers and try again.';
  }
  if (group === 'operator' && command === 'reshare' && e.code === 'state_not_ready') {
    return 'Error: The Keeper set change did not run: SPIKE Nexus is not ready, or not every configured Keeper acknowledged its new share (the current shares stay in force); start the missing Keepers and try again.';
  }
  if (group === 'operator' && command === 'rotate-root-key' && e.code === 'state_not_ready' && e.storeFailure === undefined) {
    return 'Error: The root-key rotation did not take place: SPIKE Nexus is not ready, or not every Keeper acknowledged its new share (the current root key stays in force); start the missing Keepers and try again.';
  }
  if (group === 'operator' && MOVE_COMMANDS.has(command) && e.code === 'api_conflict') {
    return 'Error: Another share refresh, Keeper set change or root-key rotation holds the move lock (it is running, '
      + 'or it was interrupted and its lock has not expired yet); nothing was changed. Try again in a few seconds.';
  }
  const store = e.storeFailure === undefined ? undefined : STORE_FAILURE_LINE[e.storeFailure];
  if (store !== undefined) return store;
  if (w === 'state_rollback_detected') {
    return 'Error: SPIKE Nexus refuses to serve: its store is older than the anchor its Keepers hold (state rollback detected). '
      + 'If the store was restored from a backup on purpose, run `spike operator accept-rollback` (see docs/key-lifecycle.md).';
  }
  switch (e.code) {
    case 'state_not_ready':
      return 'Error: SPIKE is not ready yet. Please wait a moment and try again (if it stays not ready, restore it with `spike operator restore`).';
    case 'data_unmarshal_failure':
      return 'Error: Failed to parse API response.';
    case 'api_not_found':
      return group === 'policy' ? 'Error: Entity not found.' : 'Error: Resource not found.';
    case 'api_bad_request':
      // Nexus's own reason (e.g. "request body too large"); it never holds a value or path.
      return e.detail === undefined ? `Error: Invalid request${suffix(e)}.` : `Error: Invalid request${suffix(e)}: ${sentence(e.detail.replace(/^invalid request:\s*/i, ''))}`;
    case 'net_peer_connection':
      return e.status === undefined
        ? 'Error: Failed to connect to SPIKE Nexus.'
        : `Error: Failed to connect to SPIKE Nexus (HTTP ${e.status}${e.wireErr ? `, ${e.wireErr}` : ''}).`;
    case 'access_unauthorized':
      return 'Error: Unauthorized access.';
    case 'net_reading_response_body':
      return 'Error: Failed to read response body.';
    case 'api_conflict':
      return group === 'secret'
        ? `Error: Check-and-set failed: the secret's current version is not the one given with --cas${suffix(e)}.`
        : `Error: The request conflicts with the current state${suffix(e)}.`;
    case 'tls_peer_rejected':
      return 'Error: Cannot trust SPIKE Nexus (TLS check failed); nothing was sent.';
    case 'api_internal_error':
    case 'gen_general_failure':
      return `Error: SPIKE Nexus reported an error${suffix(e)}.`;
  }
  return `Error: ${sentence(e.message)}`;
}

/** Ends a message with exactly one full stop (or its own ? / !). */
function sentence(s: string): string {
  const t = s.trim();
  return /[.?!]$/.test(t) ? t : `${t}.`;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim();
}

/** Socket errors that end a cipher stream part-way (Node's and undici's names). */
const STREAM_CUT_CODES = new Set(['ECONNRESET', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** Turns any thrown value into the single stderr line and an exit code. */
export function describeError(e: unknown, group: CommandGroup, command = ''): { line: string; exitCode: number } {
  if (e instanceof PilotError) return { line: oneLine(e.message), exitCode: e.exitCode };
  if (e instanceof NexusApiError) return { line: apiErrorLine(e, group, command), exitCode: EXIT_FAILURE };
  if (e instanceof SdkUsageError) return { line: oneLine(`Error: ${sentence(e.message)}`), exitCode: EXIT_FAILURE };
  if (e instanceof SpikeError) {
    if (e.code.startsWith('workload_api')) {
      return { line: oneLine(`Error: Cannot get an identity from the SPIFFE Workload API: ${sentence(e.message)}`), exitCode: EXIT_FAILURE };
    }
    if (e.code === 'tls_peer_rejected') {
      const reason = (e as { reason?: unknown }).reason;
      const cls = reason === 'unauthorized' ? 'TLS: server ID not accepted' : 'TLS: chain not trusted';
      return { line: `Error: Cannot trust the server (${cls}); nothing was sent.`, exitCode: EXIT_FAILURE };
    }
    return { line: oneLine(`Error: ${sentence(e.message)}`), exitCode: EXIT_FAILURE };
  }
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  if (group === 'cipher' && typeof code === 'string' && STREAM_CUT_CODES.has(code)) {
    // Nexus answers a stream with 200 at once and resets the connection when the input passes
    // its size cap: this is not a local file problem, and what was written (stdout) is incomplete.
    return {
      line: `Error: SPIKE Nexus closed the connection during the cipher stream (${code}); no complete output was produced. `
        + 'An input over its stream size limit (SPIKE_NEXUS_CRYPTO_MAX_STREAM_SIZE, 64 MiB by default) ends this way.',
      exitCode: EXIT_FAILURE,
    };
  }
  if (code === 'EPIPE') return { line: '', exitCode: EXIT_FAILURE };
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return { line: `Error: A local file or stream operation failed (${code}).`, exitCode: EXIT_FAILURE };
  }
  return { line: 'Error: Unexpected failure.', exitCode: EXIT_FAILURE };
}

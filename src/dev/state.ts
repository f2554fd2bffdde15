/**
 * The `npm start` state folder (`./.spike`, or `$SPIKE_DEV_DIR`) and its marker.
 *
 * The folder holds the dev CA key, the Workload API sockets, the SQLite data and the dev
 * recovery shards. `npm start` must never reuse state it did not create: a repository that
 * ships `.spike/agent/ca.key` (a CA whose key the attacker knows) or `.spike/recovery/*`
 * would otherwise become the trust root or the root key of the dev stack.
 *
 * Rule (`src/agent/owned-dir.ts`): `npm start` creates the folder itself (mode 0700) and
 * writes a marker file `dev-stack.marker` (0600) into it that records the folder's inode
 * number. On every later start the folder must be a real directory (not a symlink) owned by the caller with no
 * group/other permissions, and hold a marker (a regular file owned by the caller, 0600)
 * naming this very folder's inode. A checkout cannot forge that: whatever it ships, the
 * folder git creates on this machine gets an inode number the repository could not know. A
 * moved folder keeps its inode on the same file system; a copied one is refused.
 *
 * An existing EMPTY folder owned by the caller and not writable by group or others is adopted
 * (git never creates an empty folder, and there is nothing in it to distrust). A folder of an
 * earlier version (no marker) is refused like any other: the one-line error says to delete it.
 */
import { SpikeError } from '../lib/index.js';
import { prepareOwnedDir } from '../agent/index.js';

export const MARKER_FILE = 'dev-stack.marker';

export class DevStateError extends SpikeError {
  constructor(readonly dir: string, readonly reason: string) {
    super('dev_state_untrusted', `${dir} ${reason}`);
  }
}

/**
 * Creates the dev state folder, or checks that an existing one is the one `npm start`
 * created (`src/agent/owned-dir.ts`). Throws {@link DevStateError} (nothing is changed then).
 */
export function prepareDevDir(dir: string): void {
  const problem = prepareOwnedDir(dir, MARKER_FILE);
  if (problem !== undefined) throw new DevStateError(dir, problem);
}

/** A path as a POSIX shell word (quoted only when it needs to be). */
export function shellQuote(p: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

/** The one-line error `npm start` prints for a refused state folder. */
export function devStateErrorLine(e: DevStateError): string {
  return (
    `[dev] Error: refusing the state folder ${e.dir}: it ${e.reason}; npm start only reuses a folder it created itself. ` +
    `If it only holds dev stack state, delete it (rm -rf ${shellQuote(e.dir)}) and run npm start again, or set SPIKE_DEV_DIR to another folder.`
  );
}

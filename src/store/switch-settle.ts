/**
 * The outcome of a root-key switch whose COMMIT answer was lost (PostgreSQL: a connection
 * reset or a failover while committing; key-custody.ts `switchRoot`). The switch wrote a key
 * check for the new root in the same transaction as the keyring sealed under it, so reading
 * both back tells whether it landed. Only a switch that is seen counts: a read that does not see
 * it is no proof it never will (a COMMIT may still be waiting for a standby), so the reads go
 * on for a while before the answer stays "unknown".
 */
import { checkKeyCheck, type RootKey } from '../crypto/index.js';
import type { CustodyBackend } from './custody-backend.js';
import { KEY_CHECK_RECORD } from './key-check.js';
import { Keyring, KEYRING_RECORD } from './keyring.js';

/** How many reads, and the first wait between them (doubling, at most 2 s). */
export interface SwitchSettle {
  attempts: number;
  firstWaitMs: number;
}

/** About 10 s in all. */
export const SETTLE: SwitchSettle = { attempts: 8, firstWaitMs: 100 };

/**
 * The stored keyring, once the stored key check opens under `root` (both read in one
 * transaction, nothing written); undefined when no read within `settle` saw it. The caller
 * destroys the keyring.
 */
export async function landedKeyring(backend: Pick<CustodyBackend, 'updateKeyRecords'>, root: RootKey, settle: SwitchSettle = SETTLE): Promise<Keyring | undefined> {
  for (let attempt = 0, waitMs = settle.firstWaitMs; attempt < settle.attempts; attempt++, waitMs = Math.min(waitMs * 2, 2_000)) {
    let fresh: Keyring | undefined;
    const seen = await backend.updateKeyRecords([KEY_CHECK_RECORD, KEYRING_RECORD], (found) => {
      const kcv = found(KEY_CHECK_RECORD);
      if (kcv === null || !checkKeyCheck(root, kcv)) return { result: false, writes: [] };
      fresh?.destroy();
      fresh = Keyring.load(root, found(KEYRING_RECORD));
      return { result: true, writes: [] };
    }).catch(() => false);
    if (seen && fresh) return fresh;
    fresh?.destroy();
    await new Promise((r) => setTimeout(r, waitMs));
  }
  return undefined;
}

/**
 * The host name in the Keeper URLs the dev stack dials.
 *
 * `127.0.0.1`, where the Keepers (and Nexus) listen. `localhost` also resolves to `::1`,
 * where any local user could listen on the same port first and be dialled: the SVID check
 * then fails, so the dev stack could be denied service. A folder that an earlier version
 * bootstrapped names `localhost` in its key sharing record, and a record from before sharing
 * records were tagged is adopted only with the very same Keeper list: such a folder keeps
 * `localhost` for its Keepers (npm start makes every child resolve IPv4 addresses first, so
 * that name reaches 127.0.0.1 as well). The choice is written into the folder on its first
 * start under this rule.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The file in the dev folder that records the choice. */
export const KEEPER_HOST_FILE = 'keeper-host';

/** The Keeper host of the dev folder `dir`; `bootstrapped`: it already holds a key (recovery shards). */
export function keeperHost(dir: string, bootstrapped: boolean): '127.0.0.1' | 'localhost' {
  const file = path.join(dir, KEEPER_HOST_FILE);
  let host: string | undefined;
  try {
    host = fs.readFileSync(file, 'utf8').trim();
  } catch {
    host = undefined;
  }
  if (host === '127.0.0.1' || host === 'localhost') return host;
  const chosen = bootstrapped ? 'localhost' : '127.0.0.1';
  fs.writeFileSync(file, `${chosen}\n`, { mode: 0o600 });
  return chosen;
}

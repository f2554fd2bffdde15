/**
 * The development Workload API (`spike-agent`). Outside code needs only the owned-folder
 * check, which the dev stack shares so both refuse state they did not create.
 */
export { prepareOwnedDir } from './owned-dir.js';

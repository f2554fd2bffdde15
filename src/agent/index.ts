/**
 * The development Workload API (`spike-agent`). Outside code needs only the owned-folder
 * check, which the dev stack and `spike operator recover` share so none uses state they did not create.
 */
export { ownedDirProblem, prepareOwnedDir } from './owned-dir.js';

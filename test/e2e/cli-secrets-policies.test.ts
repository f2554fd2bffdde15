/** `spike secret …` / `spike policy …` end to end on SQLite (the suite: cli-secrets-policies.ts). */
import { cliSecretsPoliciesSuite } from './cli-secrets-policies.js';

cliSecretsPoliciesSuite('sqlite');

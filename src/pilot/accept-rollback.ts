/**
 * `spike operator accept-rollback` (superuser; docs/key-lifecycle.md): after Nexus detected
 * that its store is older than the anchor its Keepers hold (and refuses to serve), the
 * operator who restored that store on purpose accepts it: Nexus re-anchors the store above
 * the Keepers' counter, audits it, and serves again. Acknowledged writes made after the
 * copy was taken are NOT brought back; the command says so. While Nexus is still running its
 * start-up rollback check there is nothing to decide yet: that is exit 1 ("try again").
 */
import type { Command } from 'commander';
import type { PilotContext } from './context.js';
import { PilotError } from './errors.js';
import { registerOperatorCall } from './operator-call.js';

export function registerAcceptRollback(operator: Command, ctx: PilotContext): void {
  registerOperatorCall(operator, ctx, {
    name: 'accept-rollback',
    description: 'Accept a detected state rollback (a deliberate restore of an older store) so SPIKE Nexus serves again (superuser)',
    gate: 'any',
    call: async (client) => {
      const r = await client.acceptRollback();
      // Nothing was decided yet: a failure (exit 1), so a script retries instead of reading success.
      if (r.state === 'checking') {
        throw new PilotError('Error: Nothing to accept yet: SPIKE Nexus is still running its rollback check; try again in a few seconds.', { code: 'pilot_not_yet' });
      }
      return r;
    },
    data: (r) => ({ ok: true, ...r }),
    human: (r) => (r.accepted
      ? `OK: Rollback accepted: the store (counter ${r.storeCounter ?? '?'}) was behind the Keepers' anchor (${r.keeperCounter ?? '?'}); `
        + `it is re-anchored at ${r.counter ?? '?'} and SPIKE Nexus serves again.\n`
        + 'Writes acknowledged after the restored copy was taken are lost; re-apply them if you can.\n'
      : 'OK: Nothing to accept: SPIKE Nexus detected no state rollback.\n'),
  });
}

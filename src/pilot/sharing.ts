/**
 * `spike operator refresh-shares` (superuser): asks Nexus for a proactive share refresh —
 * new Keeper shares of the same root key (docs/key-lifecycle.md) — and says loudly that the
 * break-the-glass recovery shards saved before it no longer work and must be saved again
 * with `spike operator recover`.
 *
 * `spike operator reshare` (superuser): moves the sharing to the Keepers, shares and
 * threshold Nexus is configured with (SPIKE_NEXUS_KEEPER_PEERS / SHAMIR_SHARES /
 * SHAMIR_THRESHOLD), the same root key; the same loud warning when it moved, a plain
 * "nothing to change" (shards still valid) when the stored sharing already matched.
 */
import type { Command } from 'commander';
import type { PilotContext } from './context.js';
import { registerOperatorCall } from './operator-call.js';
import type { ReshareResult, SharingResult } from '../sdk/index.js';

/** What moved, then the loud re-export warning (`what`: "REFRESH", "KEEPER SET CHANGE"). */
function movedReport(headline: string, what: string): string {
  return [
    headline,
    '',
    `  !!! RECOVERY SHARDS SAVED BEFORE THIS ${what} NO LONGER WORK !!!`,
    '  Save new ones now:        spike operator recover',
    '  then destroy the old shard files and copies everywhere you keep them.',
    '',
  ].join('\n');
}

function refreshReport(r: SharingResult): string {
  return movedReport(`OK: Keeper shares refreshed (epoch ${r.epoch}; any ${r.threshold} of ${r.shares} rebuild the same root key).`, 'REFRESH');
}

function reshareReport(r: ReshareResult): string {
  if (!r.changed) {
    return [
      `Nothing to change: the stored sharing already matches Nexus's Keeper settings (epoch ${r.epoch}; any ${r.threshold} of ${r.shares}).`,
      'Recovery shards are unchanged. (New shares for the same Keepers: spike operator refresh-shares.)',
      '',
    ].join('\n');
  }
  return movedReport(`OK: Keeper set changed (epoch ${r.epoch}; any ${r.threshold} of ${r.shares} Keepers rebuild the same root key).`, 'KEEPER SET CHANGE');
}

const STALE_NOTE = 'Warning: recovery shards saved before this change no longer work; run `spike operator recover`.';

export function registerSharing(operator: Command, ctx: PilotContext): void {
  registerOperatorCall(operator, ctx, {
    name: 'refresh-shares',
    description: 'New Keeper shares of the same root key (superuser); old recovery shards stop working: run `spike operator recover` after',
    gate: 'operator',
    call: (client) => client.refreshShares(),
    data: (r) => ({ ok: true, ...r, recoveryShardsStale: true }),
    human: refreshReport,
    note: () => STALE_NOTE,
  });
  registerOperatorCall(operator, ctx, {
    name: 'reshare',
    description: 'Move the Keeper shares to the Keepers, shares and threshold Nexus is configured with (superuser); old recovery shards stop working',
    gate: 'operator',
    call: (client) => client.reshare(),
    data: (r) => ({ ok: true, ...r, recoveryShardsStale: r.changed }),
    human: reshareReport,
    note: (r) => (r.changed ? STALE_NOTE : undefined),
  });
}

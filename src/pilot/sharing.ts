/**
 * `spike operator refresh-shares` (superuser): asks Nexus for a proactive share refresh —
 * new Keeper shares of the same root key (docs/key-lifecycle.md) — and says loudly that the
 * break-the-glass recovery shards saved before it no longer work and must be saved again
 * with `spike operator recover`.
 */
import type { Command } from 'commander';
import { act, type PilotContext } from './context.js';
import { addFormatOptions, parseFormat, render, type FormatOpts } from './format.js';

function refreshReport(r: { epoch: number; threshold: number; shares: number }): string {
  return [
    `OK: Keeper shares refreshed (epoch ${r.epoch}; any ${r.threshold} of ${r.shares} rebuild the same root key).`,
    '',
    '  !!! RECOVERY SHARDS SAVED BEFORE THIS REFRESH NO LONGER WORK !!!',
    '  Save new ones now:        spike operator recover',
    '  then destroy the old shard files and copies everywhere you keep them.',
    '',
  ].join('\n');
}

export function registerSharing(operator: Command, ctx: PilotContext): void {
  addFormatOptions(
    operator
      .command('refresh-shares')
      .description('New Keeper shares of the same root key (superuser); old recovery shards stop working: run `spike operator recover` after'),
  ).action(
    act(ctx, 'operator', 'refresh-shares', async (o: FormatOpts) => {
      const format = parseFormat(o.format, o.json);
      const client = await ctx.nexus('operator');
      const r = await client.refreshShares();
      ctx.out(render(format, { ok: true, ...r, recoveryShardsStale: true }, () => refreshReport(r)));
      if (format !== 'human') ctx.note('warning: recovery shards saved before this refresh no longer work; run `spike operator recover`');
    }),
  );
}

/**
 * `spike operator …`: break-the-glass recovery (the operator's guide is docs/recovery.md).
 *
 * - `recover` (recover role): fetches all shards and writes them as recovery files (see
 *   `recovery-files.ts`), then says where they went.
 * - `restore [file]` (restore role): submits one shard per call from a file or stdin and
 *   shows "collected k of t".
 * - `verify-shard <file>` (beyond SPIKE): checks a shard against the public commitments
 *   Nexus serves, locally, without submitting it.
 *
 * No shard material is ever printed, on success or on error (OPR-14). With the dev
 * stack, recover and restore use `recover.sock` / `restore.sock` automatically.
 */
import { Command } from 'commander';
import { wipe } from '../crypto/index.js';
import { PilotError } from './errors.js';
import { act, type PilotContext } from './context.js';
import { toJson } from './format.js';
import { prepareRecoveryDir, resolveRecoveryDir, writeRecoveryFiles } from './recovery-files.js';
import { readShard, readShardFile, parseShardText } from './shard-input.js';

function recoverReport(dir: string, files: readonly string[]): string {
  const lines = [
    '',
    '  SPIKE recovery shards saved to the recovery directory:',
    `  ${dir}`,
    '',
    ...files.map((f) => `    ${f}`),
    '',
    '  Please make sure that:',
    '    1. You encrypt these shards and keep them safe.',
    '    2. Securely erase the shards from the',
    '       recovery directory after you encrypt them',
    '       and save them to a safe location.',
    '',
    '  If you lose these shards, you will not be able to recover',
    '  SPIKE Nexus in the unlikely event of a total system crash.',
    '',
  ];
  return `${lines.join('\n')}\n`;
}

function restoreReport(s: { collected: number; remaining: number; restored: boolean }): string {
  if (s.restored) return '\n  SPIKE is now restored and ready to use.\n\n';
  const total = s.collected + s.remaining;
  return [
    '',
    ` Shards collected: ${s.collected} of ${total}`,
    ` Shards remaining: ${s.remaining}`,
    ' Please run `spike operator restore` again to provide the remaining shards.',
    '',
    '',
  ].join('\n');
}

export function registerOperator(program: Command, ctx: PilotContext): void {
  const operator = program.command('operator').description('Break-the-glass recovery of SPIKE Nexus');

  operator
    .command('recover')
    .description('Save the recovery shards to files (do this while SPIKE Nexus is healthy; recover role)')
    .option('--dir <path>', 'directory for the shard files (default: $SPIKE_PILOT_RECOVERY_DIR/recover or ~/.spike/recover)')
    .option('--force', 'replace existing recovery files that differ')
    .action(
      act(ctx, 'operator', 'recover', async (o: { dir?: string; force?: boolean }) => {
        // The recovery folder comes from --dir or the real environment only, never from a file.
        const dir = prepareRecoveryDir(resolveRecoveryDir(ctx.io.env, ctx.io.cwd, o.dir));
        const client = await ctx.nexus('recover');
        const shares = await client.recover();
        try {
          const r = writeRecoveryFiles(dir, shares, { force: o.force === true });
          ctx.out(recoverReport(dir, r.files));
        } finally {
          for (const s of shares) wipe(s.value);
        }
      }),
    );

  operator
    .command('restore')
    .description('Submit one recovery shard (restore role); run once per shard until restored')
    .argument('[file]', 'shard file (default: stdin; hidden prompt on a terminal)')
    .option('--json', 'print the status as JSON')
    .action(
      act(ctx, 'operator', 'restore', async (file: string | undefined, o: { json?: boolean }) => {
        const share = await readShard(ctx.io, file); // validated before any connection
        try {
          const client = await ctx.nexus('restore');
          const status = await client.restore(share);
          ctx.out(o.json ? toJson(status) : restoreReport(status));
        } finally {
          wipe(share.value);
        }
      }),
    );

  operator
    .command('verify-shard')
    .description('Check a recovery shard against the commitments SPIKE Nexus serves, without submitting it')
    .argument('<file>', 'shard file ("-" for stdin)')
    .option('--json', 'print the result as JSON')
    .action(
      act(ctx, 'operator', 'verify-shard', async (file: string, o: { json?: boolean }) => {
        const share = file === '-' ? await readShard(ctx.io, undefined) : parseShardFileArg(ctx, file);
        try {
          const client = await ctx.nexus('any');
          const { ok, info } = await client.verifyShard(share);
          if (share.id > info.shares && info.shares > 0) {
            throw new PilotError(`Error: Shard id ${share.id} is outside 1..${info.shares} for this deployment.`, { code: 'pilot_shard_mismatch' });
          }
          if (!ok) {
            throw new PilotError(
              `Error: Shard ${share.id} does NOT match the commitments served by SPIKE Nexus (epoch ${info.epoch}); it belongs to another key or is corrupted.`,
              { code: 'pilot_shard_mismatch' },
            );
          }
          const result = { ok: true, id: share.id, epoch: info.epoch, threshold: info.threshold, shares: info.shares };
          ctx.out(
            o.json
              ? toJson(result)
              : `OK: shard ${share.id} is valid for the current root key (epoch ${info.epoch}; any ${info.threshold} of ${info.shares} shards restore it).\n`,
          );
        } finally {
          wipe(share.value);
        }
      }),
    );
}

function parseShardFileArg(ctx: PilotContext, file: string): ReturnType<typeof parseShardText> {
  const raw = readShardFile(ctx.io, file);
  try {
    return parseShardText(raw);
  } finally {
    raw.fill(0);
  }
}

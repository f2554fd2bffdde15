/**
 * `spike operator …`: break-the-glass recovery (the operator's guide is docs/recovery.md).
 *
 * - `recover` (recover role): fetches all shards and writes them as recovery files (see
 *   `recovery-files.ts`), then says where they went.
 * - `restore [file]` (restore role): submits one shard per call from a file or stdin and
 *   shows "collected k of t".
 * - `verify-shard <file>` (beyond SPIKE): checks a shard against the public commitments
 *   Nexus serves, locally, without submitting it.
 * - `refresh-shares` (superuser): sharing.ts.
 *
 * No shard material is ever printed, on success or on error (OPR-14). With the dev
 * stack, recover and restore use `recover.sock` / `restore.sock` automatically, and recover
 * writes into the dev folder's recovery area unless `--out` says otherwise. Every command
 * takes `--format`/`--json`. Only these commands check the caller's role client-side (a
 * clear message before any shard moves); everything else is left to Nexus's policies.
 */
import path from 'node:path';
import { Command } from 'commander';
import { ownedDirProblem } from '../agent/index.js';
import { wipe } from '../crypto/curve-free.js';
import { PilotError, usageError } from './errors.js';
import { act, type PilotContext } from './context.js';
import { devDir, resolvePilotEnv } from './env.js';
import { addFormatOptions, parseFormat, render, type FormatOpts } from './format.js';
import { prepareRecoveryDir, resolveRecoveryDir, writeRecoveryFiles } from './recovery-files.js';
import { readShard, readShardFile, parseShardText } from './shard-input.js';
import { registerAcceptRollback } from './accept-rollback.js';
import { registerSharing } from './sharing.js';
import { registerOperatorCall } from './operator-call.js';

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

/** Marker file of a dev folder `npm start` created (src/dev/state.ts). */
const DEV_MARKER = 'dev-stack.marker';

/** The dev stack's recovery area when this command talks to the dev stack; undefined otherwise. */
function devRecovery(ctx: PilotContext): { dir: string } | { refused: string } | undefined {
  const r = resolvePilotEnv({ env: ctx.io.env, cwd: ctx.io.cwd, role: 'recover', socket: ctx.socketOption() });
  if (r.endpointSource.kind !== 'dev') return undefined;
  const dir = devDir(ctx.io.env, ctx.io.cwd);
  const problem = ownedDirProblem(dir, DEV_MARKER);
  return problem === undefined ? { dir: path.join(dir, 'recovery') } : { refused: `${dir} ${problem}` };
}

export function registerOperator(program: Command, ctx: PilotContext): void {
  const operator = program.command('operator').description('Break-the-glass recovery of SPIKE Nexus');
  registerSharing(operator, ctx);
  registerRotateRootKey(operator, ctx);

  addFormatOptions(
    operator
      .command('recover')
      .description('Save the recovery shards to files (do this while SPIKE Nexus is healthy; recover role)')
      .option('--out <dir>', 'directory for the shard files (default: $SPIKE_PILOT_RECOVERY_DIR/recover, or <dev dir>/recovery on the dev stack)')
      .option('--dir <dir>', 'same as --out')
      .option('--force', 'replace existing recovery files that differ'),
  ).action(
      act(ctx, 'operator', 'recover', async (o: FormatOpts & { out?: string; dir?: string; force?: boolean }) => {
        const format = parseFormat(o.format, o.json);
        if (o.out !== undefined && o.dir !== undefined && o.out !== o.dir) throw usageError('Error: Give --out or --dir, not both.');
        // The recovery folder comes from --out, the real environment or a dev folder npm start made, never from a file.
        const out = o.out ?? o.dir;
        const dir = prepareRecoveryDir(resolveRecoveryDir(ctx.io.env, ctx.io.cwd, out, out === undefined ? devRecovery(ctx) : undefined));
        const client = await ctx.nexus('recover');
        const shares = await client.recover();
        try {
          const r = writeRecoveryFiles(dir, shares, { force: o.force === true });
          ctx.out(render(format, { ok: true, dir, files: r.files }, () => recoverReport(dir, r.files)));
        } finally {
          for (const s of shares) wipe(s.value);
        }
      }),
    );

  addFormatOptions(
    operator
      .command('restore')
      .description('Submit one recovery shard (restore role); run once per shard until restored')
      .argument('[file]', 'shard file (default: stdin; hidden prompt on a terminal)'),
  ).action(
      act(ctx, 'operator', 'restore', async (file: string | undefined, o: FormatOpts) => {
        const format = parseFormat(o.format, o.json);
        const share = await readShard(ctx.io, file); // validated before any connection
        try {
          const client = await ctx.nexus('restore');
          const status = await client.restore(share);
          ctx.out(render(format, { ok: true, ...status }, () => restoreReport(status)));
        } finally {
          wipe(share.value);
        }
      }),
    );

  addFormatOptions(
    operator
      .command('verify-shard')
      .description('Check a recovery shard against the commitments SPIKE Nexus serves, without submitting it')
      .argument('<file>', 'shard file ("-" for stdin)'),
  ).action(
      act(ctx, 'operator', 'verify-shard', async (file: string, o: FormatOpts) => {
        const format = parseFormat(o.format, o.json);
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
            render(
              format,
              result,
              () => `OK: shard ${share.id} is valid for the current root key (epoch ${info.epoch}; any ${info.threshold} of ${info.shares} shards restore it).\n`,
            ),
          );
        } finally {
          wipe(share.value);
        }
      }),
    );
  registerAcceptRollback(operator, ctx);
}

/** `spike operator rotate-root-key` (Pilot superuser): a new root key; old shards become useless. */
export function registerRotateRootKey(operator: Command, ctx: PilotContext): void {
  registerOperatorCall(operator, ctx, {
    name: 'rotate-root-key',
    description: 'Replace the root key with a new random one (superuser); re-encryption runs in the background',
    gate: 'any',
    call: (client) => client.rotateRootKey(),
    data: (r) => ({ ok: true, ...r }),
    // json/yaml keep stdout for the data: the warning the human form prints goes to stderr
    note: () => 'Warning: recovery shards exported before this rotation no longer work; run `spike operator recover` now.',
    human: (r) => `OK: root key rotated (epoch ${r.epoch}, storage key id ${r.storageKeyId}, cipher version ${r.cipherVersion}).\n`
      + 'Older records are re-encrypted in the background (metric spike_keyring_storage_generations falls to 1 when done).\n'
      + 'IMPORTANT: recovery shards exported before this rotation no longer work; run `spike operator recover` now.\n',
  });
}

function parseShardFileArg(ctx: PilotContext, file: string): ReturnType<typeof parseShardText> {
  const raw = readShardFile(ctx.io, file);
  try {
    return parseShardText(raw);
  } finally {
    raw.fill(0);
  }
}

/**
 * `spike audit …`: offline checks of the Nexus audit trail (docs/audit.md).
 *
 * - `verify <file...>` reads the files in the order given (oldest first: `audit.log.N …
 *   audit.log.1 audit.log`) as one hash chain and reports the first entry that was edited,
 *   deleted, reordered, truncated or forged. With `--shard <file>` (the recovery shard files
 *   of `spike operator recover`, at least the threshold) it rebuilds the root key locally,
 *   derives the audit MAC key and checks every keyed entry's MAC too. Nothing is sent
 *   anywhere; the key is wiped when done.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { AuditKeys, type TrailFile, verifyTrail } from '../audit/index.js';
import { type Share, combineShares, wipeShare } from '../crypto/index.js';
import { act, type PilotContext } from './context.js';
import { PilotError } from './errors.js';
import { addFormatOptions, parseFormat, render, type FormatOpts } from './format.js';
import { parseShardText, readShardFile } from './shard-input.js';

function keysFromShards(ctx: PilotContext, files: readonly string[]): AuditKeys {
  const shares: Share[] = [];
  try {
    for (const f of files) {
      const raw = readShardFile(ctx.io, f);
      try {
        shares.push(parseShardText(raw));
      } finally {
        raw.fill(0);
      }
    }
    let root;
    try {
      root = combineShares(shares, shares.length);
    } catch {
      throw new PilotError('Error: The shards do not combine into a key (duplicate or inconsistent shards).');
    }
    try {
      return new AuditKeys(root);
    } finally {
      root.destroy();
    }
  } finally {
    for (const s of shares) wipeShare(s);
  }
}

function readTrail(ctx: PilotContext, files: readonly string[]): TrailFile[] {
  return files.map((f) => {
    try {
      return { name: f, text: fs.readFileSync(path.resolve(ctx.io.cwd, f), 'utf8') };
    } catch {
      throw new PilotError(`Error: Cannot read the audit file ${JSON.stringify(f)}.`);
    }
  });
}

export function registerAudit(program: Command, ctx: PilotContext): void {
  const audit = program.command('audit').description('Check the SPIKE Nexus audit trail');
  addFormatOptions(
    audit
      .command('verify')
      .description('Verify an audit trail offline: the files oldest first (audit.log.N … audit.log.1 audit.log)')
      .argument('<file...>', 'audit files, oldest first')
      .option('--shard <file>', 'a recovery shard file (repeat up to the threshold) to check the MACs too', (v: string, acc: string[]) => [...acc, v], [] as string[]),
  ).action(
      act(ctx, 'audit', 'verify', async (files: string[], o: FormatOpts & { shard: string[] }) => {
        const format = parseFormat(o.format, o.json);
        const trail = readTrail(ctx, files);
        const keys = o.shard.length > 0 ? keysFromShards(ctx, o.shard) : undefined;
        let r;
        try {
          r = verifyTrail(trail, keys);
        } finally {
          keys?.destroy();
        }
        if (r.problem !== undefined) {
          const p = r.problem;
          const hint = keys !== undefined && r.keyed === 0 && p.kind === 'edited' ? ' (or the shards are not this trail\'s key)' : '';
          throw new PilotError(`Error: Audit trail FAILED at ${p.file}:${p.line} (seq ${p.seq ?? '?'}): ${p.kind}: ${p.message}${hint}.`);
        }
        const macs = keys === undefined
          ? 'MACs not checked (give --shard files to check them)'
          : `${r.keyed} MACs verified` + (r.unauthenticated > 0 ? `; the last ${r.unauthenticated} entries are covered by no MAC yet (written while sealed, or appended without the key)` : '');
        const doc = { ok: true, entries: r.entries, files: files.length, macsChecked: keys !== undefined, keyed: r.keyed, unauthenticated: r.unauthenticated };
        ctx.out(render(format, doc, () => `Audit trail OK: ${r.entries} entries in ${files.length} file(s), chain intact; ${macs}.\n`));
      }),
    );
  addFormatOptions(
    audit
      .command('hash')
      .description('Print the HMAC a secret path has in the audit trail (asks SPIKE Nexus, which allows it to the superuser)')
      .argument('<path>', 'secret path'),
  ).action(
      act(ctx, 'audit', 'hash', async (p: string, o: FormatOpts) => {
        const format = parseFormat(o.format, o.json);
        const client = await ctx.nexus('any');
        const hash = await client.auditHash(p);
        ctx.out(render(format, { hash }, () => `${hash}\n`));
      }),
    );
}

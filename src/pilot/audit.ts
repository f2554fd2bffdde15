/**
 * `spike audit …`: checks of the Nexus audit trail (docs/audit.md).
 *
 * - `verify <file...>` reads the files in the order given (oldest first: `audit.log.N …
 *   audit.log.1 audit.log`) as one hash chain and reports the first entry that was edited,
 *   deleted, reordered, truncated or forged. The MACs are checked too with either
 *   - `--shard <file>` (the recovery shard files of `spike operator recover`, at least the
 *     threshold): offline, the root key is rebuilt locally, the audit MAC key derived and
 *     wiped when done; nothing is sent anywhere; or
 *   - `--online` (superuser): the keyed lines up to the first chain problem are sent to
 *     Nexus (`POST /v1/audit/verify`), which answers only which line's MAC first fails; the
 *     chain and the order are still checked here. No key ever leaves Nexus.
 * - `hash <path>` asks Nexus for the HMAC a path has in the trail (superuser).
 */
import buffer from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { AuditKeys, type MacCheck, type TrailFile, keyedLines, verifyTrail } from '../audit/index.js';
import { type Share, combineShares, wipeShare } from '../crypto/index.js';
import { act, type PilotContext } from './context.js';
import { PilotError, usageError } from './errors.js';
import { addFormatOptions, parseFormat, render, type FormatOpts } from './format.js';
import { parseShardText, readShardFile } from './shard-input.js';
import { checkSecretPath } from './validate.js';

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
    const file = path.resolve(ctx.io.cwd, f);
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      throw new PilotError(`Error: Cannot read the audit file ${JSON.stringify(f)}.`);
    }
    // A device (/dev/zero, a disk) would be read without end; files and pipes (`<(ssh host cat …)`) are fine.
    if (!st.isFile() && !st.isFIFO()) throw new PilotError(`Error: The audit file ${JSON.stringify(f)} is not a regular file or a pipe.`);
    return { name: f, text: readAuditFile(file, f) };
  });
}

/**
 * Most bytes of one audit file (a JavaScript string holds no more): a pipe that never ends
 * (`<(yes …)`) is refused at this size instead of growing without bound.
 */
const MAX_AUDIT_FILE_BYTES = Math.min(buffer.constants.MAX_STRING_LENGTH, 512 * 1024 * 1024);

/** One audit file's text, read up to `max` bytes (a file or a pipe). */
export function readAuditFile(file: string, shown: string, max = MAX_AUDIT_FILE_BYTES): string {
  const chunks: Buffer[] = [];
  let total = 0;
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    throw new PilotError(`Error: Cannot read the audit file ${JSON.stringify(shown)}.`);
  }
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(1 << 20);
      let n: number;
      try {
        n = fs.readSync(fd, chunk, 0, chunk.length, null);
      } catch {
        throw new PilotError(`Error: Cannot read the audit file ${JSON.stringify(shown)}.`);
      }
      if (n === 0) break;
      total += n;
      if (total > max) {
        throw new PilotError(`Error: The audit file ${JSON.stringify(shown)} is larger than ${Math.floor(max / 1048576)} MiB; verify it in smaller rotated files (SPIKE_NEXUS_AUDIT_MAX_BYTES).`);
      }
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The MAC check of `--online`: Nexus checks the keyed lines in order, up to the first chain
 * problem found here (the verifier stops there anyway), and names the first that fails.
 */
async function onlineCheck(ctx: PilotContext, trail: readonly TrailFile[]): Promise<MacCheck> {
  const chain = verifyTrail(trail);
  const until = keyedLines(trail).filter((k) => chain.problem === undefined || k.index <= chain.problem.at);
  const client = await ctx.nexus('operator');
  const bad = await client.auditVerify(until.map((k) => k.line));
  const badIndex = bad === null ? -1 : until[bad]!.index;
  return (i) => i !== badIndex;
}

export function registerAudit(program: Command, ctx: PilotContext): void {
  const audit = program.command('audit').description('Check the SPIKE Nexus audit trail');
  addFormatOptions(
    audit
      .command('verify')
      .description('Verify an audit trail: the files oldest first (audit.log.N … audit.log.1 audit.log)')
      .argument('<file...>', 'audit files, oldest first')
      .option('--shard <file>', 'a recovery shard file (repeat up to the threshold) to check the MACs offline', (v: string, acc: string[]) => [...acc, v], [] as string[])
      .option('--online', 'check the MACs through SPIKE Nexus (superuser; no key leaves Nexus)'),
  ).action(
      act(ctx, 'audit', 'verify', async (files: string[], o: FormatOpts & { shard: string[]; online?: boolean }) => {
        const format = parseFormat(o.format, o.json);
        if (o.online === true && o.shard.length > 0) throw usageError('Error: Give either --shard files or --online, not both.');
        const trail = readTrail(ctx, files);
        const keys = o.shard.length > 0 ? keysFromShards(ctx, o.shard) : o.online === true ? await onlineCheck(ctx, trail) : undefined;
        let r;
        try {
          r = verifyTrail(trail, keys);
        } finally {
          if (keys instanceof AuditKeys) keys.destroy();
        }
        const by = o.online === true ? ' by SPIKE Nexus' : '';
        if (r.problem !== undefined) {
          const p = r.problem;
          const other = o.online === true ? 'this Nexus does not hold the key this trail was written under' : 'the shards are not this trail\'s key';
          const hint = keys !== undefined && r.keyed === 0 && p.kind === 'edited' ? ` (or ${other})` : '';
          throw new PilotError(`Error: Audit trail FAILED at ${p.file}:${p.line} (seq ${p.seq ?? '?'}): ${p.kind}: ${p.message}${hint}.`);
        }
        const macs = keys === undefined
          ? 'MACs not checked (give --shard files or --online to check them)'
          : `${r.keyed} MACs verified${by}` + (r.unauthenticated > 0 ? `; the last ${r.unauthenticated} entries are covered by no MAC yet (written while sealed, or appended without the key)` : '');
        const doc = { ok: true, entries: r.entries, files: files.length, macsChecked: keys !== undefined, online: o.online === true, keyed: r.keyed, unauthenticated: r.unauthenticated };
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
        checkSecretPath(p); // the same grammar Nexus checks: a path that breaks it was never hashed
        const client = await ctx.nexus('any');
        const hash = await client.auditHash(p);
        ctx.out(render(format, { hash }, () => `${hash}\n`));
      }),
    );
}

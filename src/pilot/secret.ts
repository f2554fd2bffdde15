/**
 * `spike secret …`: put, get, delete, undelete, list, metadata get — plus the
 * additive `destroy`, `put --cas/--max-versions/--metadata`, values from files or stdin
 * (`key=@file`, `key=-`: values.ts), and `--format`/`--json` on every command, writes included.
 * Any identity may run them: Nexus decides by its policies (the CLI does not pre-filter).
 * A missing secret is reported as `Error: not found: <path as typed>.`.
 */
import { Command, Option } from 'commander';
import type { NexusClient, SecretMetadata } from '../sdk/index.js';
import { PilotError, notFoundAs, usageError } from './errors.js';
import { act, type PilotContext } from './context.js';
import { addFormatOptions, formatTime, formatTimeOrNull, parseFormat, render, success, type FormatOpts } from './format.js';
import { checkPathPrefix, checkSecretPath, parseNonNegInt, parsePairs, parsePositiveInt, parseVersionList } from './validate.js';
import { resolveValues } from './values.js';

export { addFormatOptions } from './format.js';

/** Human form of `secret get` (sorted `key: value` lines). */
export function humanSecret(values: Record<string, string>): string {
  return Object.keys(values)
    .sort()
    .map((k) => `${k}: ${values[k]}\n`)
    .join('');
}

/** The SDK metadata as SPIKE's JSON/YAML output shape. */
export function metadataDocument(m: SecretMetadata): Record<string, unknown> {
  const versions: Record<string, unknown> = {};
  for (const k of Object.keys(m.versions).sort((a, b) => Number(a) - Number(b))) {
    const v = m.versions[k]!;
    versions[k] = { createdTime: formatTime(v.createdTime), version: v.version, deletedTime: formatTimeOrNull(v.deletedTime) };
  }
  const md: Record<string, unknown> = {
    currentVersion: m.metadata.currentVersion,
    oldestVersion: m.metadata.oldestVersion,
    createdTime: formatTime(m.metadata.createdTime),
    updatedTime: formatTime(m.metadata.updatedTime),
    maxVersions: m.metadata.maxVersions,
  };
  if (m.metadata.customMetadata) md['customMetadata'] = { ...m.metadata.customMetadata };
  return { versions, metadata: md };
}

/** Human form of `secret metadata get` (SPIKE's `printSecretResponse`, versions in order). */
export function humanMetadata(m: SecretMetadata): string {
  const sep = `${'-'.repeat(50)}\n`;
  const md = m.metadata;
  let s = '\nMetadata:\n' + sep;
  s += `Current Version : ${md.currentVersion}\n`;
  s += `Oldest Version  : ${md.oldestVersion}\n`;
  s += `Created Time    : ${formatTime(md.createdTime)}\n`;
  s += `Last Updated    : ${formatTime(md.updatedTime)}\n`;
  s += `Max Versions    : ${md.maxVersions}\n`;
  if (md.customMetadata && Object.keys(md.customMetadata).length > 0) {
    s += 'Custom Metadata :\n';
    for (const k of Object.keys(md.customMetadata).sort()) s += `  ${k}: ${md.customMetadata[k]}\n`;
  }
  s += sep;
  const keys = Object.keys(m.versions).sort((a, b) => Number(a) - Number(b));
  if (keys.length > 0) {
    s += '\nSecret Versions:\n' + sep;
    for (const k of keys) {
      const v = m.versions[k]!;
      s += `Version ${k}:\n`;
      s += `  Created: ${formatTime(v.createdTime)}\n`;
      if (v.deletedTime !== null) s += `  Deleted: ${formatTime(v.deletedTime)}\n`;
      s += sep;
    }
  }
  return s;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function registerSecret(program: Command, ctx: PilotContext): void {
  const secret = program.command('secret').description('Manage secrets');

  addFormatOptions(
    secret
      .command('put')
      .description('Put secrets at the specified path (creates a new version)')
      .argument('<path>', 'secret path, e.g. secrets/db/creds')
      .argument('<key=value...>', 'key=value pairs; key=@file reads the file, key=- reads stdin, key=@@x stores @x')
      .option('--cas <version>', 'check-and-set: write only if the last written version (metadata lastVersion, deleted or not) is this (0 = never written)')
      .option('--max-versions <n>', 'versions to keep for this secret')
      .option('--metadata <key=value>', 'custom metadata (repeatable; not secret)', collect, [] as string[]),
  ).action(
    act(ctx, 'secret', 'put', async (path: string, pairs: string[], o: FormatOpts & { cas?: string; maxVersions?: string; metadata: string[] }) => {
      const format = parseFormat(o.format, o.json);
      checkSecretPath(path);
      const raw = parsePairs(pairs);
      const cas = o.cas !== undefined ? parseNonNegInt(o.cas, '--cas') : undefined;
      const maxVersions = o.maxVersions !== undefined ? parsePositiveInt(o.maxVersions, '--max-versions') : undefined;
      const customMetadata = o.metadata.length > 0 ? parsePairs(o.metadata, (i) => (o.metadata.length > 1 ? `--metadata number ${i + 1}` : '--metadata')) : undefined;
      const values = await resolveValues(ctx.io, raw);
      const client = await ctx.nexus('any');
      const written = await client.putSecret(path, values, {
        ...(cas !== undefined ? { cas } : {}),
        ...(maxVersions !== undefined ? { maxVersions } : {}),
        ...(customMetadata !== undefined ? { customMetadata } : {}),
      });
      const version = written.version;
      ctx.out(success(format, `wrote secret ${path}${version !== undefined ? ` (version ${version})` : ''}`, { path, ...(version !== undefined ? { version } : {}) }));
    }),
  );

  addFormatOptions(
    secret
      .command('get')
      .description('Get secrets from the specified path')
      .argument('<path>', 'secret path')
      .argument('[key]', 'print only this key')
      .option('-v, --version <n>', 'version to read (0 = current)', '0'),
  ).action(
    act(ctx, 'secret', 'get', async (path: string, key: string | undefined, o: FormatOpts & { version: string }) => {
      const format = parseFormat(o.format, o.json);
      checkSecretPath(path);
      const version = parseNonNegInt(o.version, '--version');
      const client = await ctx.nexus('any');
      const what = version === 0 ? path : `${path} (version ${version})`;
      const values = await notFoundAs(what, () => client.getSecret(path, version === 0 ? {} : { version }));
      if (key !== undefined) {
        if (!Object.prototype.hasOwnProperty.call(values, key)) {
          throw new PilotError(`Error: not found: key ${JSON.stringify(key)} in ${what}.`, { code: 'pilot_not_found' });
        }
        const v = values[key]!;
        // Human form ends in exactly one newline (none added to a value that has one); json keeps the bytes.
        ctx.out(render(format, v, () => (v.endsWith('\n') ? v : `${v}\n`)));
        return;
      }
      ctx.out(render(format, { ...values }, () => humanSecret(values)));
    }),
  );

  // delete, undelete and destroy share one shape: a path and a version list.
  const versionCommands = [
    {
      name: 'delete', done: 'deleted', description: 'Delete secret versions (soft delete)',
      versions: 'comma-separated versions to delete (0 = current; default: current)', required: false,
      call: (client: NexusClient, path: string, versions: number[]) => client.deleteSecret(path, versions),
    },
    {
      name: 'undelete', done: 'undeleted', description: 'Undelete secret versions',
      versions: 'comma-separated versions to restore (default: the latest deleted one)', required: false,
      call: (client: NexusClient, path: string, versions: number[]) => client.undeleteSecret(path, versions),
    },
    {
      name: 'destroy', done: 'destroyed', description: 'Permanently destroy secret versions (cannot be undone)',
      versions: 'comma-separated versions to destroy (0 = current); required', required: true,
      call: (client: NexusClient, path: string, versions: number[]) => client.destroySecret(path, versions),
    },
  ] as const;
  for (const command of versionCommands) {
    addFormatOptions(
      secret
        .command(command.name)
        .description(command.description)
        .argument('<path>', 'secret path')
        .addOption(new Option('-v, --versions <list>', command.versions)),
    ).action(
      act(ctx, 'secret', command.name, async (path: string, o: FormatOpts & { versions?: string }) => {
        const format = parseFormat(o.format, o.json);
        checkSecretPath(path);
        if (command.required && o.versions === undefined) {
          throw usageError('Error: destroy needs --versions (use 0 for the current version).');
        }
        const versions = o.versions !== undefined ? parseVersionList(o.versions) : [];
        const client = await ctx.nexus('any');
        const which = versions.length === 0 ? '' : ` (version${versions.length > 1 ? 's' : ''} ${versions.join(', ')})`;
        // Undelete answers "not found" for a missing path and for a version that is not deleted alike.
        const missing = command.name !== 'undelete' ? `${path}${which}`
          : `${path} (no deleted version${versions.length === 0 ? '' : ` ${versions.join(', ')}`})`;
        await notFoundAs(missing, () => command.call(client, path, versions));
        ctx.out(success(format, `${command.done} secret ${path}${which}`, { path, versions }));
      }),
    );
  }

  // `[prefix]` (additive): a plain prefix (`app/` or `app/db`), fetched in pages; paths that
  // do not start with it are dropped here too, for a Nexus that ignores the prefix.
  addFormatOptions(secret.command('list').description('List secret paths').argument('[prefix]', 'only paths starting with this')).action(
    act(ctx, 'secret', 'list', async (prefix: string | undefined, o: FormatOpts) => {
      const format = parseFormat(o.format, o.json);
      if (prefix !== undefined) checkPathPrefix(prefix);
      const client = await ctx.nexus('any');
      const keys: string[] = [];
      for await (const k of client.secretPaths(prefix ? { prefix } : {})) if (k.startsWith(prefix ?? '')) keys.push(k);
      ctx.out(render(format, keys, () => (keys.length === 0 ? 'No secrets found.\n' : keys.map((k) => `- ${k}\n`).join(''))));
    }),
  );

  const metadata = secret.command('metadata').description('Secret metadata');
  addFormatOptions(
    metadata
      .command('get')
      .description('Get the metadata of a secret')
      .argument('<path>', 'secret path')
      .option('-v, --version <n>', 'version that must exist (0 = current)', '0'),
  ).action(
    act(ctx, 'secret', 'metadata get', async (path: string, o: FormatOpts & { version: string }) => {
      const format = parseFormat(o.format, o.json);
      checkSecretPath(path);
      const version = parseNonNegInt(o.version, '--version');
      const client = await ctx.nexus('any');
      const m = await notFoundAs(version === 0 ? path : `${path} (version ${version})`, () =>
        client.getSecretMetadata(path, version === 0 ? {} : { version }),
      );
      ctx.out(render(format, metadataDocument(m), () => humanMetadata(m)));
    }),
  );
}

/**
 * `spike policy …`: create, apply, list, get, delete, with SPIKE's flags,
 * `--format`/`--json` on every command, and `--yes` to skip delete's confirmation. Patterns
 * are checked here first (patterns.ts: which rule, or where it does not compile). Any
 * identity may run them: Nexus decides by its policies. The delete prompt goes to stderr
 * (stdout carries data only). A policy's id is its name (the API's `id` field of get and
 * delete takes the name; Nexus answers `id: ""`, SPIKE's wire), so json/yaml show the name as `id`.
 */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import type { Policy, PolicySpec } from '../sdk/index.js';
import { PilotError, notFoundAs, usageError } from './errors.js';
import { act, type PilotContext } from './context.js';
import { addFormatOptions, formatTime, parseFormat, render, success, yaml, type FormatOpts } from './format.js';
import { checkPolicyPatterns } from './patterns.js';
import { checkPolicyName, parsePermissions } from './validate.js';

const POLICY_FILE_MAX = 64 * 1024;

interface PolicyFlags {
  name?: string;
  pathPattern?: string;
  spiffeidPattern?: string;
  permissions?: string;
}

/** The four flags → a spec; missing ones → one usage line naming them. */
export function policyFromFlags(f: PolicyFlags): PolicySpec {
  const missing: string[] = [];
  if (!f.name) missing.push('--name');
  if (!f.pathPattern) missing.push('--path-pattern');
  if (!f.spiffeidPattern) missing.push('--spiffeid-pattern');
  if (!f.permissions) missing.push('--permissions');
  if (missing.length > 0) throw usageError(`Error: All flags are required (missing: ${missing.join(', ')}).`);
  const spec = {
    name: checkPolicyName(f.name!),
    spiffeIdPattern: f.spiffeidPattern!,
    pathPattern: f.pathPattern!,
    permissions: parsePermissions(f.permissions!),
  };
  checkPolicyPatterns(spec);
  return spec;
}

/** Parses a policy YAML document (keys `name`, `spiffeidPattern`, `pathPattern`, `permissions`). */
export function policyFromYaml(text: string): PolicySpec {
  // Errors (a second document too) and warnings (an unknown tag, a collection as a key) both
  // refuse the file; logLevel 'error' keeps the yaml package from printing its warnings (extra
  // stderr lines) while still reporting a second document ('silent' would drop it unseen).
  let doc: unknown;
  try {
    const parsed = yaml().parseDocument(text, { uniqueKeys: true, logLevel: 'error' });
    if (parsed.errors.length > 0 || parsed.warnings.length > 0) throw new Error('invalid');
    const keys = parsed.contents !== null && yaml().isMap(parsed.contents) ? parsed.contents.items.map((i) => i.key) : [];
    if (keys.some((k) => yaml().isCollection(k))) throw new Error('invalid');
    doc = parsed.toJS({ maxAliasCount: 0 });
  } catch {
    throw usageError('Error: Invalid policy file: not valid YAML.');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw usageError('Error: Invalid policy file: expected a mapping.');
  const d = doc as Record<string, unknown>;
  const allowed = ['name', 'spiffeidPattern', 'pathPattern', 'permissions'];
  for (const k of Object.keys(d)) {
    if (!allowed.includes(k)) throw usageError(`Error: Invalid policy file: unknown key '${k.replace(/[^a-zA-Z0-9_-]/g, '?').slice(0, 32)}' (expected ${allowed.join(', ')}).`);
  }
  const missing = allowed.filter((k) => d[k] === undefined || d[k] === null || d[k] === '');
  if (missing.length > 0) throw usageError(`Error: Invalid policy file: missing ${missing.join(', ')}.`);
  for (const k of ['name', 'spiffeidPattern', 'pathPattern']) {
    if (typeof d[k] !== 'string') throw usageError(`Error: Invalid policy file: ${k} must be a string.`);
  }
  const perms = d['permissions'];
  let list: string[];
  if (typeof perms === 'string') list = perms.split(',');
  else if (Array.isArray(perms) && perms.every((p) => typeof p === 'string')) list = perms as string[];
  else throw usageError('Error: Invalid policy file: permissions must be a list of strings.');
  const spec = {
    name: checkPolicyName(d['name'] as string),
    spiffeIdPattern: d['spiffeidPattern'] as string,
    pathPattern: d['pathPattern'] as string,
    permissions: parsePermissions(list),
  };
  checkPolicyPatterns(spec, { path: 'pathPattern in the policy file', spiffeId: 'spiffeidPattern in the policy file' });
  return spec;
}

/**
 * Reads the policy file to its end (at most 64 KiB). A pipe (`--file <(…)`, `/dev/stdin`)
 * delivers its bytes in pieces: one read would see only the first piece and could apply a
 * policy cut short (`permissions: read` of `read,write`).
 */
export function readPolicyFile(file: string): string {
  // The file name is the user's own argument (echoed to their terminal, as for key=@file).
  const shown = JSON.stringify(file);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const errno = (e as { code?: unknown }).code;
    throw new PilotError(`Error: Policy file ${shown} does not exist or cannot be read${typeof errno === 'string' && /^E[A-Z]+$/.test(errno) ? ` (${errno})` : ''}.`, { code: 'pilot_file' });
  }
  try {
    const buf = Buffer.alloc(POLICY_FILE_MAX + 1);
    let n = 0;
    for (;;) {
      let r: number;
      try {
        r = fs.readSync(fd, buf, n, buf.length - n, null);
      } catch {
        throw new PilotError(`Error: Policy file ${shown} cannot be read (not a file?).`, { code: 'pilot_file' });
      }
      if (r === 0) break;
      n += r;
      if (n > POLICY_FILE_MAX) throw usageError(`Error: Policy file ${shown} is larger than 64 KiB.`);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Policy as SPIKE's JSON/YAML output shape (the keys of SPIKE's policy read, `spiffiedPattern` included). */
export function policyDocument(p: Policy): Record<string, unknown> {
  return {
    id: p.id || p.name,
    name: p.name,
    spiffiedPattern: p.spiffeIdPattern,
    pathPattern: p.pathPattern,
    permissions: [...p.permissions],
    createdAt: formatTime(p.createdAt),
    updatedAt: formatTime(p.updatedAt),
  };
}

export function humanPolicy(p: Policy): string {
  let s = 'POLICY DETAILS\n==============\n\n';
  s += `Name: ${p.name}\n`;
  s += `SPIFFE ID Pattern: ${p.spiffeIdPattern}\n`;
  s += `Path Pattern: ${p.pathPattern}\n`;
  s += `Permissions: ${p.permissions.join(', ')}\n`;
  s += `Created At: ${formatTime(p.createdAt)}\n`;
  if (p.updatedAt && formatTime(p.updatedAt) !== '0001-01-01T00:00:00Z') s += `Updated At: ${formatTime(p.updatedAt)}\n`;
  return s;
}

export function humanPolicyList(items: readonly { name: string }[]): string {
  if (items.length === 0) return 'No policies found.\n';
  let s = 'POLICIES\n========\n\n';
  for (const p of items) s += `Name: ${p.name}\n--------\n\n`;
  return s;
}

function nameFrom(arg: string | undefined, flag: string | undefined): string {
  if (arg !== undefined && flag !== undefined && arg !== flag) throw usageError('Error: Give the policy name either as an argument or with --name, not both.');
  const n = arg ?? flag;
  if (n === undefined || n === '') throw usageError('Error: A policy name is required (argument or --name).');
  return checkPolicyName(n);
}

/** Reads one line from stdin (for the delete confirmation); resolves '' at end of input. */
function readLine(stdin: NodeJS.ReadableStream, max = 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let acc = '';
    const onData = (chunk: Buffer | string): void => {
      acc += chunk.toString();
      const nl = acc.indexOf('\n');
      if (nl >= 0 || acc.length > max) {
        cleanup();
        resolve(nl >= 0 ? acc.slice(0, nl) : acc.slice(0, max));
      }
    };
    const onEnd = (): void => {
      cleanup();
      resolve(acc);
    };
    const onError = (e: unknown): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', onError);
      stdin.pause();
    };
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.on('error', onError);
    stdin.resume();
  });
}

export function registerPolicy(program: Command, ctx: PilotContext): void {
  const policy = program.command('policy').description('Manage policies');

  const addSpecFlags = (c: Command): Command =>
    c
      .option('--name <name>', 'policy name')
      .option('--path-pattern <regex>', "path pattern (RE2, full match), e.g. '^secrets/db/.*$'")
      .option('--spiffeid-pattern <regex>', "SPIFFE ID pattern (RE2, full match), e.g. '^spiffe://example\\.org/app/.*$'")
      .option('--permissions <list>', 'comma-separated: read, write, list, execute, super');

  addFormatOptions(addSpecFlags(policy.command('create').description('Create a new policy (fails if the name exists)'))).action(
    act(ctx, 'policy', 'create', async (o: PolicyFlags & FormatOpts) => {
      const format = parseFormat(o.format, o.json);
      const spec = policyFromFlags(o);
      const client = await ctx.nexus('any');
      const existing = await client.listPolicies();
      if (existing.some((p) => p.name === spec.name)) {
        throw new PilotError(`Error: Policy '${spec.name}' already exists.`, { code: 'pilot_policy_exists' });
      }
      await client.putPolicy(spec);
      ctx.out(success(format, `created policy ${spec.name}`, { id: spec.name, name: spec.name }));
    }),
  );

  addFormatOptions(addSpecFlags(policy.command('apply').description('Create or update a policy from a YAML file or flags'))
    .option('--file <yaml>', 'YAML file with name, spiffeidPattern, pathPattern, permissions'))
    .action(
      act(ctx, 'policy', 'apply', async (o: PolicyFlags & FormatOpts & { file?: string }) => {
        const format = parseFormat(o.format, o.json);
        let spec: PolicySpec;
        if (o.file !== undefined) {
          if (o.name || o.pathPattern || o.spiffeidPattern || o.permissions) {
            throw usageError('Error: Use either --file or the policy flags, not both.');
          }
          spec = policyFromYaml(readPolicyFile(o.file));
        } else spec = policyFromFlags(o);
        const client = await ctx.nexus('any');
        await client.putPolicy(spec);
        ctx.out(success(format, `applied policy ${spec.name}`, { id: spec.name, name: spec.name }));
      }),
    );

  addFormatOptions(
    policy
      .command('list')
      .description('List policies')
      .addOption(new Option('--path-pattern <regex>', 'only policies with exactly this path pattern').conflicts('spiffeidPattern'))
      .addOption(new Option('--spiffeid-pattern <regex>', 'only policies with exactly this SPIFFE ID pattern')),
  ).action(
    act(ctx, 'policy', 'list', async (o: { pathPattern?: string; spiffeidPattern?: string; format?: string; json?: boolean }) => {
      const format = parseFormat(o.format, o.json);
      const client = await ctx.nexus('any');
      const items = await client.listPolicies({
        ...(o.spiffeidPattern !== undefined ? { spiffeIdPattern: o.spiffeidPattern } : {}),
        ...(o.pathPattern !== undefined ? { pathPattern: o.pathPattern } : {}),
      });
      ctx.out(render(format, items.map((p) => ({ id: p.id || p.name, name: p.name })), () => humanPolicyList(items)));
    }),
  );

  addFormatOptions(
    policy.command('get').description('Show a policy').argument('[name]', 'policy name').option('--name <name>', 'policy name'),
  ).action(
    act(ctx, 'policy', 'get', async (arg: string | undefined, o: { name?: string; format?: string; json?: boolean }) => {
      const format = parseFormat(o.format, o.json);
      const name = nameFrom(arg, o.name);
      const client = await ctx.nexus('any');
      const p = await notFoundAs(`policy ${name}`, () => client.getPolicy(name));
      ctx.out(render(format, policyDocument(p), () => humanPolicy(p)));
    }),
  );

  addFormatOptions(
    policy
      .command('delete')
      .description('Delete a policy (asks for confirmation unless --yes)')
      .argument('[name]', 'policy name')
      .option('--name <name>', 'policy name')
      .option('-y, --yes', 'do not ask for confirmation'),
  )
    .action(
      act(ctx, 'policy', 'delete', async (arg: string | undefined, o: FormatOpts & { name?: string; yes?: boolean }) => {
        const format = parseFormat(o.format, o.json);
        const name = nameFrom(arg, o.name);
        const client = await ctx.nexus('any');
        await notFoundAs(`policy ${name}`, () => client.getPolicy(name)); // before asking
        if (!o.yes) {
          ctx.io.stderr.write(`Are you sure you want to delete policy '${name}'? (y/N): `);
          const answer = (await readLine(ctx.io.stdin)).trim();
          // A terminal echoed the answer and its Enter; a pipe did not: end the prompt's line.
          if (ctx.io.stdin.isTTY !== true) ctx.io.stderr.write('\n');
          if (answer !== 'y' && answer !== 'Y') throw new PilotError('Operation canceled.', { code: 'pilot_canceled' });
        }
        await notFoundAs(`policy ${name}`, () => client.deletePolicy(name));
        ctx.out(success(format, `deleted policy ${name}`, { id: name, name }));
      }),
    );
}

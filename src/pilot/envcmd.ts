/**
 * `spike env`: which SPIFFE Workload API endpoint and SPIKE Nexus URL the CLI would use, and
 * why (`flag --socket`, `environment (NAME)`, `dev stack hint at <path>`, `default`). It reads
 * local files only: it contacts neither the Workload API nor Nexus. Warnings about a refused
 * dev-stack hint go to stderr, as for every other command.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { act, type PilotContext } from './context.js';
import { describeSource, resolvePilotEnv, type PilotRole, type SettingSource } from './env.js';
import { usageError } from './errors.js';
import { addFormatOptions, parseFormat, render, type FormatOpts } from './format.js';

const ROLES: readonly PilotRole[] = ['operator', 'recover', 'restore'];

function sourceJson(s: SettingSource): Record<string, string> {
  switch (s.kind) {
    case 'environment':
      return { source: 'environment', variable: s.variable };
    case 'dev':
      return { source: 'dev', path: s.path };
    default:
      return { source: s.kind };
  }
}

function socketMissing(endpoint: string): boolean {
  const p = endpoint.startsWith('unix://') ? endpoint.slice('unix://'.length) : endpoint.startsWith('unix:') ? endpoint.slice(5) : undefined;
  return p !== undefined && !fs.existsSync(p);
}

export function registerEnv(program: Command, ctx: PilotContext): void {
  addFormatOptions(
    program
      .command('env')
      .description('Show which Workload API endpoint and Nexus URL are used, and why (contacts nothing)')
      .option('--role <role>', 'the identity a command needs: operator (default), recover or restore'),
  ).action(
      act(ctx, '', 'env', async (o: FormatOpts & { role?: string }) => {
        const format = parseFormat(o.format, o.json);
        const role = (o.role ?? 'operator') as PilotRole;
        if (!ROLES.includes(role)) throw usageError('Error: Invalid --role (use operator, recover or restore).');
        const r = resolvePilotEnv({ env: ctx.io.env, cwd: ctx.io.cwd, role, socket: ctx.socketOption() });
        for (const w of r.warnings) ctx.note(w);
        const missing = socketMissing(r.endpoint);
        const nexusUrl = withoutCredentials(r.nexusUrl);
        const doc = {
          workloadApi: { endpoint: r.endpoint, ...sourceJson(r.endpointSource), ...(missing ? { socketMissing: true } : {}) },
          nexusUrl: { url: nexusUrl, ...sourceJson(r.nexusUrlSource) },
        };
        ctx.out(
          render(
            format,
            doc,
            () =>
              `SPIFFE Workload API: ${r.endpoint} (source: ${describeSource(r.endpointSource)}${missing ? '; no socket there' : ''})\n` +
              `SPIKE Nexus URL: ${nexusUrl} (source: ${describeSource(r.nexusUrlSource)})\n`,
          ),
        );
      }),
    );
}

/**
 * The URL list as shown: a user or password in one (which connecting refuses anyway) is
 * replaced by `***`, and so is a query string, since this output is the kind pasted into bug
 * reports. A URL that does not parse is masked from `//` to its first `@`.
 */
export function withoutCredentials(urls: string): string {
  return urls.split(',').map((u) => {
    try {
      const url = new URL(u.trim());
      if (url.username === '' && url.password === '' && url.search === '') return u;
      if (url.username !== '' || url.password !== '') {
        url.username = '***';
        url.password = '';
      }
      if (url.search !== '') url.search = '***';
      return url.toString();
    } catch {
      return u.replace(/\/\/[^@]*@/, '//***@').replace(/\?.*$/, '?***');
    }
  }).join(',');
}

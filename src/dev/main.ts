/**
 * `npm start`: a whole local SPIKE in one command (issue 4 point 4).
 *
 * Brings up `spike-agent` (one socket per identity), three Keepers, Nexus on SQLite and,
 * on the first start only, Bootstrap; prints `SPIKE ready` once Nexus serves, then how
 * to use the CLI from another terminal. State lives in `./.spike/` (`SPIKE_DEV_DIR`
 * overrides); an existing folder is reused only if npm start created it (see `state.ts`),
 * otherwise npm start stops with a one-line error before running anything. Ctrl-C stops
 * every child.
 *
 * Keepers hold shares in memory only, so a restarted dev stack has empty Keepers. As a
 * DEVELOPMENT CONVENIENCE ONLY, the first start exports break-the-glass shards (the
 * recover role) into `<dir>/recovery/` (files 0600, folder 0700) and later starts
 * restore from them (the restore role), with a warning. Never do this in production:
 * those files together are the root key. When the sharing moves (share refresh), the
 * shards are exported again (shard-watch.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatRecoveryFile, parseRecoveryFile, recoveryFileName, wipeShare, type Share } from '../crypto/index.js';
import { WorkloadX509Source } from '../spiffe/index.js';
import { NexusClient } from '../sdk/index.js';
import { ALLOCATOR_ENV } from '../lib/index.js';
import { DevStateError, devStateErrorLine, prepareDevDir } from './state.js';
import { bannerLines } from './banner.js';
import { startShardWatch } from './shard-watch.js';
import { keeperHost } from './keeper-host.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TD = 'spike.ist';
const THRESHOLD = 2;
const SHARES = 3;

interface Child { name: string; proc: ChildProcess }

const IDENTITIES: Record<string, string> = {
  nexus: `spiffe://${TD}/spike/nexus`,
  'keeper-1': `spiffe://${TD}/spike/keeper/1`,
  'keeper-2': `spiffe://${TD}/spike/keeper/2`,
  'keeper-3': `spiffe://${TD}/spike/keeper/3`,
  bootstrap: `spiffe://${TD}/spike/bootstrap`,
  pilot: `spiffe://${TD}/spike/pilot/role/superuser`,
  recover: `spiffe://${TD}/spike/pilot/role/recover`,
  restore: `spiffe://${TD}/spike/pilot/role/restore`,
  demo: `spiffe://${TD}/workload/demo`,
};

function ports(): { nexus: number; keepers: number[] } {
  const nexus = Number(process.env['SPIKE_DEV_NEXUS_PORT'] ?? 8553);
  const keepers = (process.env['SPIKE_DEV_KEEPER_PORTS'] ?? '8443,8543,8643').split(',').map((p) => Number(p.trim()));
  if (!Number.isInteger(nexus) || keepers.length !== SHARES || keepers.some((p) => !Number.isInteger(p))) {
    throw new Error('SPIKE_DEV_NEXUS_PORT / SPIKE_DEV_KEEPER_PORTS must be port numbers (three Keeper ports)');
  }
  return { nexus, keepers };
}

/**
 * `n` distinct ports the kernel considers free on loopback now (for the operations listeners).
 * All are held at once and only then released: a port picked and released one at a time can
 * be handed out again by the next pick, and two children then collide (EADDRINUSE).
 */
async function freeLoopbackPorts(n: number): Promise<number[]> {
  const held: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      held.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return held.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(held.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    say('usage: npm start  (env: SPIKE_DEV_DIR, SPIKE_DEV_NEXUS_PORT, SPIKE_DEV_KEEPER_PORTS, SPIKE_SYSTEM_LOG_LEVEL)');
    return;
  }
  const dir = path.resolve((process.env['SPIKE_DEV_DIR'] ?? '').trim() || '.spike'); // blank = unset, as for `spike`
  const sockets = path.join(dir, 'sockets');
  const recoveryDir = path.join(dir, 'recovery');
  try {
    prepareDevDir(dir); // before anything runs: never reuse state npm start did not create
  } catch (err) {
    process.stderr.write(`${err instanceof DevStateError ? devStateErrorLine(err) : `[dev] Error: cannot prepare ${dir}: ${(err as Error).message}`}\n`);
    process.exitCode = 1;
    return;
  }
  const p = ports();
  const shardFiles = fs.existsSync(recoveryDir)
    ? fs.readdirSync(recoveryDir).filter((f) => /^spike\.recovery\.[0-9]+\.txt$/.test(f)).sort()
    : [];
  const keepersAt = keeperHost(dir, shardFiles.length > 0);
  const url = `https://127.0.0.1:${p.nexus}`;
  // Operations listeners (probes, metrics; plain HTTP on loopback): Nexus first, then each Keeper.
  const opsPorts = await freeLoopbackPorts(SHARES + 1);
  const opsUrl = (i: number): string => `http://127.0.0.1:${opsPorts[i]!}`;
  const children: Child[] = [];
  let stopping = false;

  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const c of [...children].reverse()) c.proc.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise<void>((resolve) => {
      if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
      const t = setTimeout(() => { c.proc.kill('SIGKILL'); resolve(); }, 5000);
      c.proc.once('exit', () => { clearTimeout(t); resolve(); });
    })));
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  const baseEnv: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    SPIKE_SYSTEM_LOG_LEVEL: process.env['SPIKE_SYSTEM_LOG_LEVEL'] ?? 'WARN',
    SPIKE_NEXUS_SHAMIR_SHARES: String(SHARES),
    SPIKE_NEXUS_SHAMIR_THRESHOLD: String(THRESHOLD),
    SPIKE_NEXUS_KEEPER_PEERS: p.keepers.map((k) => `https://${keepersAt}:${k}`).join(','),
    SPIKE_NEXUS_API_URL: url,
  };
  const sock = (name: string): string => `unix://${path.join(sockets, `${name}.sock`)}`;

  /** Spawns a binary, prefixes its output, resolves when `readyLine` appears on stderr. */
  const start = (name: string, bin: string, args: string[], env: NodeJS.ProcessEnv, readyLine?: string): Promise<Child> =>
    new Promise((resolve, reject) => {
      // As the shipped units do: glibc returns memory freed after bursts of TLS work (src/lib/allocator.ts).
      const childEnv = { ...ALLOCATOR_ENV, ...env };
      // IPv4 first: a Keeper URL naming `localhost` reaches 127.0.0.1, where it listens (keeperHost).
      const proc = spawn(process.execPath, ['--dns-result-order=ipv4first', path.join(REPO_ROOT, 'bin', `${bin}.js`), ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      const child = { name, proc };
      children.push(child);
      let ready = readyLine === undefined;
      if (ready) resolve(child);
      for (const stream of [proc.stdout, proc.stderr]) {
        readline.createInterface({ input: stream! }).on('line', (line) => {
          if (!ready && line.includes(readyLine!)) {
            ready = true;
            resolve(child);
          }
          process.stdout.write(`[${name}] ${line}\n`);
        });
      }
      proc.once('exit', (code, signal) => {
        if (!ready) reject(new Error(`${name} exited before it was ready (code ${code ?? signal})`));
        else if (!stopping && bin !== 'spike-bootstrap') {
          process.stderr.write(`[dev] ${name} exited unexpectedly (code ${code ?? signal}); stopping\n`);
          void stop(1);
        }
      });
    });

  try {
    const identityArgs = Object.entries(IDENTITIES).flatMap(([n, id]) => ['--identity', `${n}=${id}`]);
    await start('agent', 'spike-agent', ['--trust-domain', TD, '--state-dir', path.join(dir, 'agent'), '--socket-dir', sockets, ...identityArgs],
      baseEnv, 'spike-agent ready');
    await Promise.all(p.keepers.map((port, i) => start(`keeper-${i + 1}`, 'spike-keeper', [], {
      ...baseEnv, SPIFFE_ENDPOINT_SOCKET: sock(`keeper-${i + 1}`), SPIKE_KEEPER_TLS_PORT: `127.0.0.1:${port}`,
      SPIKE_KEEPER_OPS_ADDR: `127.0.0.1:${opsPorts[i + 1]!}`,
    }, 'spike-keeper ready')));
    const auditLog = path.join(dir, 'audit', 'audit.log');
    fs.mkdirSync(path.dirname(auditLog), { recursive: true, mode: 0o700 });
    await start('nexus', 'spike-nexus', [], {
      ...baseEnv, SPIFFE_ENDPOINT_SOCKET: sock('nexus'), SPIKE_NEXUS_TLS_PORT: `127.0.0.1:${p.nexus}`,
      SPIKE_NEXUS_DATA_DIR: dir, SPIKE_NEXUS_BACKEND_STORE: 'sqlite',
      SPIKE_NEXUS_OPS_ADDR: `127.0.0.1:${opsPorts[0]!}`,
      SPIKE_NEXUS_AUDIT_LOG: auditLog,
      // A dev folder made by an older version has an untagged sharing record: adopt and tag
      // it (the folder is this user's own, 0700; see SPIKE_NEXUS_ACCEPT_UNTAGGED_SHARING).
      SPIKE_NEXUS_ACCEPT_UNTAGGED_SHARING: 'true',
    }, 'spike-nexus ready');
    // `spike` reads only this loopback URL from here, and only with the dev socket (src/pilot/devhint.ts).
    // The DEV_OPS_* lines are for people and scripts: names without the SPIKE_/SPIFFE_ prefix
    // are skipped by that reader, so they add nothing it trusts and no warning.
    const opsLines = [`DEV_OPS_NEXUS_URL=${opsUrl(0)}`, ...p.keepers.map((_, i) => `DEV_OPS_KEEPER_${i + 1}_URL=${opsUrl(i + 1)}`)];
    fs.writeFileSync(path.join(dir, 'env'), `# written by npm start\nSPIKE_NEXUS_API_URL=${url}\n${opsLines.join('\n')}\n`, { mode: 0o600 });

    if (shardFiles.length === 0) {
      await new Promise<void>((resolve, reject) => {
        void start('bootstrap', 'spike-bootstrap', ['-init'], { ...baseEnv, SPIFFE_ENDPOINT_SOCKET: sock('bootstrap') }).then((c) => {
          c.proc.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bootstrap failed (exit ${code})`))));
        }, reject);
      });
      await waitReady(url, sock('pilot'));
      await exportShards(url, sock('recover'), recoveryDir);
      say(`[dev] WARNING: development convenience: break-the-glass shards were written to ${recoveryDir} so that`);
      say('[dev]          a restarted dev stack can restore its key. Never do this in production.');
    } else {
      say(`[dev] WARNING: restoring the root key from development shards in ${recoveryDir} (Keepers start empty).`);
      await restoreShards(url, sock('restore'), recoveryDir, shardFiles.slice(0, THRESHOLD));
      await waitReady(url, sock('pilot'));
    }
    const epoch = await withClient(url, sock('pilot'), async (c) => (await c.getCommitments()).epoch);
    await startShardWatch({ url, socket: sock('pilot'), exportedEpoch: epoch, say, reexport: () => exportShards(url, sock('recover'), recoveryDir) });
    const devDirSet = (process.env['SPIKE_DEV_DIR'] ?? '').trim() !== '';
    for (const line of bannerLines({ cwd: process.cwd(), dir, devDirSet, opsUrls: opsPorts.map((_, i) => opsUrl(i)), auditLog })) say(line);
  } catch (err) {
    process.stderr.write(`[dev] ${(err as Error).message}\n`);
    await stop(1);
  }
}

async function withClient<T>(url: string, socket: string, fn: (c: NexusClient) => Promise<T>): Promise<T> {
  const source = await WorkloadX509Source.open({ endpoint: socket, timeoutMs: 30_000 });
  const client = await NexusClient.connect({ urls: [url], source });
  try {
    return await fn(client);
  } finally {
    await client.close();
    source.close();
  }
}

async function waitReady(url: string, socket: string): Promise<void> {
  await withClient(url, socket, async (c) => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        await c.listSecrets();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error('Nexus did not become ready within 120 s');
        if ((err as { code?: string }).code !== 'state_not_ready') throw err;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  });
}

async function exportShards(url: string, socket: string, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const shares: Share[] = await withClient(url, socket, (c) => c.recover());
  try {
    for (const s of shares) {
      const file = path.join(dir, recoveryFileName(s.id));
      const tmp = `${file}.tmp`;
      const body = formatRecoveryFile(s);
      try {
        const fd = fs.openSync(tmp, 'w', 0o600);
        try {
          fs.writeSync(fd, body);
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        fs.renameSync(tmp, file);
      } finally {
        body.fill(0);
      }
    }
  } finally {
    for (const s of shares) wipeShare(s);
  }
}

async function restoreShards(url: string, socket: string, dir: string, files: string[]): Promise<void> {
  await withClient(url, socket, async (c) => {
    for (const f of files) {
      const raw = fs.readFileSync(path.join(dir, f));
      let share: Share | undefined;
      try {
        share = parseRecoveryFile(raw);
        const r = await c.restore(share);
        say(`[dev] restore: collected ${r.collected} of ${r.collected + r.remaining}`);
        if (r.restored) return;
      } finally {
        raw.fill(0);
        if (share) wipeShare(share);
      }
    }
  });
}

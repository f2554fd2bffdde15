/**
 * The CLI contract (D15, P17, OPR-14): exactly one readable line on stderr and a
 * non-zero exit on every error (2 for usage, 1 otherwise), data only on stdout, no stack
 * traces, nothing connects before argument checks pass, role gates with a clear message.
 * The Nexus connection is replaced through `run`'s `connect` seam; the Nexus URL is a closed
 * port, so what is exercised is Pilot itself. Real processes: test/e2e/pilot-cli.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { Agent } from 'undici';
import { NexusClient } from '../sdk/client.js';
import { SpikeError } from '../lib/errors.js';
import { groupOf, helpArgv, run } from './main.js';
import type { PilotIo } from './context.js';
import { binPath } from '../../test/helpers/bin.js';

let cwd: string;
let deadUrl: string;
let sockFile: string;

before(async () => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-main-'));
  sockFile = path.join(cwd, 'agent.sock');
  fs.writeFileSync(sockFile, ''); // exists; the connect seam never dials it
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  deadUrl = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  await new Promise<void>((r) => srv.close(() => r()));
});
after(() => fs.rmSync(cwd, { recursive: true, force: true }));

function sink(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  return {
    stream: new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(Buffer.from(c));
        cb();
      },
    }),
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}

interface Result {
  code: number;
  out: string;
  err: string;
  connects: number;
}

async function spike(argv: string[], o: { selfId?: string; stdin?: string | Buffer; connectError?: unknown; env?: Record<string, string> } = {}): Promise<Result> {
  const out = sink();
  const err = sink();
  let connects = 0;
  const io: PilotIo = {
    stdout: out.stream,
    stderr: err.stream,
    stdin: Readable.from(o.stdin === undefined ? [] : [Buffer.from(o.stdin)]),
    env: { SPIFFE_ENDPOINT_SOCKET: `unix://${sockFile}`, ...(o.env ?? {}) },
    cwd,
  };
  const code = await run(argv, io, {
    connect: async () => {
      connects++;
      if (o.connectError !== undefined) throw o.connectError;
      return NexusClient.create({ urls: [deadUrl], allowHttp: true, dispatcher: new Agent(), selfId: () => o.selfId ?? 'spiffe://spike.ist/spike/pilot/role/superuser' });
    },
  });
  return { code, out: out.text(), err: err.text(), connects };
}

/** Exactly one line on stderr, starting with "Error: " (or SPIKE's "Operation canceled."), no stack. */
function oneErrorLine(r: Result, re?: RegExp): void {
  const lines = r.err.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one stderr line, got: ${JSON.stringify(r.err)}`);
  assert.match(lines[0]!, /^(Error: |Operation canceled\.)/);
  assert.ok(!/\n\s+at /.test(r.err) && !r.err.includes('.js:'), 'no stack trace');
  if (re) assert.match(lines[0]!, re);
}

const SHARD = `spike:2:${'ab'.repeat(32)}`;

test('--help and --version: exit 0, text on stdout only, no connection', async () => {
  const h = await spike(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.out, /Usage: spike/);
  assert.equal(h.err, '');
  assert.equal(h.connects, 0);
  const sub = await spike(['secret', 'get', '--help']);
  assert.equal(sub.code, 0);
  assert.match(sub.out, /--version <n>/);
  const v = await spike(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.out, /^\d+\.\d+\.\d+\n$/);
});

test('usage errors: exit 2, one "Error:" line, nothing connects', async () => {
  for (const argv of [
    ['bogus'],
    ['secret', 'get'],
    ['secret', 'put', 'a/b'],
    ['secret', 'get', 'a/b', '--nope'],
    ['secret', 'put', 'a/b', 'password:s3cret'],
    ['secret', 'get', 'a/b', '-f', 'xml'],
    ['secret', 'get', 'a/b', '--version', 'x'],
    ['secret', 'delete', 'a/b', '-v', '1,-2'],
    ['secret', 'destroy', 'a/b'],
    ['policy', 'create', '--name', 'p'],
    ['policy', 'list', '--path-pattern', 'a', '--spiffeid-pattern', 'b'],
    ['policy', 'get'],
    ['cipher', 'encrypt', '--plaintext', 'not base64!'],
    ['cipher', 'decrypt', '--version', '300', '--nonce', 'AA==', '--ciphertext', 'AA=='],
  ]) {
    const r = await spike(argv);
    assert.equal(r.code, 2, argv.join(' '));
    oneErrorLine(r);
    assert.equal(r.out, '', 'nothing on stdout');
    assert.equal(r.connects, 0, `${argv.join(' ')}: no connection before arguments are valid`);
    assert.ok(!r.err.includes('s3cret'), 'no secret echoed');
  }
});

test('invalid secret path: exit 2 (a malformed argument), SPIKE wording without echoing the path', async () => {
  const r = await spike(['secret', 'get', '../etc/secret-name']);
  assert.equal(r.code, 2);
  oneErrorLine(r, /^Error: Invalid secret path: it has a '\.' or '\.\.' segment\.$/);
  assert.ok(!r.err.includes('secret-name'), 'the path is not echoed');
  assert.equal(r.connects, 0);
});

test('API failure: one line naming the Nexus URL and the cause class, exit 1, nothing on stdout', async () => {
  const r = await spike(['secret', 'list', '--json']);
  assert.equal(r.code, 1);
  oneErrorLine(r, /^Error: Cannot reach SPIKE Nexus at http:\/\/127\.0\.0\.1:\d+ \(connection refused\)\.$/);
  assert.equal(r.out, '');
  assert.equal(r.connects, 1);
});

test('role gates only on operator commands: any workload may try secret/policy/cipher (Nexus decides)', async () => {
  for (const argv of [['secret', 'list'], ['secret', 'get', 'a/b'], ['policy', 'list'], ['cipher', 'encrypt', '--plaintext', 'aGk=']]) {
    const wl = await spike(argv, { selfId: 'spiffe://spike.ist/app/workload' });
    assert.equal(wl.code, 1);
    oneErrorLine(wl, /^Error: Cannot reach SPIKE Nexus at http:\/\/127\.0\.0\.1:\d+ \(connection refused\)\.$/);
    assert.equal(wl.connects, 1);
  }
  const rec = await spike(['operator', 'recover', '--dir', path.join(cwd, 'rec')]);
  assert.equal(rec.code, 1);
  oneErrorLine(rec, /needs the spiffe:\/\/spike\.ist\/spike\/pilot\/role\/recover identity.*--socket recover/);
  const res = await spike(['operator', 'restore'], { stdin: SHARD });
  assert.equal(res.code, 1);
  oneErrorLine(res, /role\/restore identity/);
  assert.ok(!res.err.includes('abab'), 'OPR-14: no shard material');
  const ok = await spike(['operator', 'restore'], { stdin: SHARD, selfId: 'spiffe://spike.ist/spike/pilot/role/restore' });
  oneErrorLine(ok, /^Error: Cannot reach SPIKE Nexus at http:\/\/127\.0\.0\.1:\d+ \(connection refused\)\.$/);
  const lookAlike = await spike(['operator', 'recover', '--dir', path.join(cwd, 'rec')], { selfId: 'spiffe://spike.ist/spike/pilot/role/recover-x' });
  oneErrorLine(lookAlike, /needs the .*recover identity/);
  const other = await spike(['operator', 'restore'], { stdin: SHARD, selfId: 'spiffe://td9.test/spike/pilot/role/restore' });
  oneErrorLine(other, /needs the/);
  const td = await spike(['operator', 'restore'], { stdin: SHARD, selfId: 'spiffe://td9.test/spike/pilot/role/restore', env: { SPIKE_TRUST_ROOT_PILOT: 'td9.test' } });
  oneErrorLine(td, /Cannot reach SPIKE Nexus at /);
});

test('OPR-10/14/15: a hostile shard on stdin fails before any connection, without echoing it', async () => {
  for (const stdin of [`spoke:2:${'ab'.repeat(32)}`, `spike:0:${'ab'.repeat(32)}`, `spike:2:${'AB'.repeat(32)}`, Buffer.alloc(5000, 0x61), `spike:2:${'ab'.repeat(32)}\r\n`]) {
    const r = await spike(['operator', 'restore'], { stdin, selfId: 'spiffe://spike.ist/spike/pilot/role/restore' });
    assert.equal(r.code, 1);
    oneErrorLine(r, /^Error: Invalid recovery shard: /);
    assert.equal(r.connects, 0);
    assert.ok(!r.err.includes('abab') && !r.err.includes('ABAB'));
  }
});

test('connection-level failures are one line too: Workload API errors, unexpected exceptions (no stack)', async () => {
  const wapi = await spike(['secret', 'list'], { connectError: new SpikeError('workload_api_unavailable', 'no Workload API answered within 10000 ms') });
  assert.equal(wapi.code, 1);
  oneErrorLine(wapi, /^Error: Cannot get an identity from the SPIFFE Workload API at unix:\/\/.*agent\.sock \(Workload API unreachable\): no Workload API answered within 10000 ms\.$/);
  const boom = await spike(['secret', 'list'], { connectError: new TypeError('x is not a function') });
  assert.equal(boom.code, 1);
  oneErrorLine(boom, /^Error: Unexpected failure\.$/);
  const noSock = await spike(['secret', 'list'], { env: { SPIFFE_ENDPOINT_SOCKET: `unix://${path.join(cwd, 'nope.sock')}` } });
  assert.equal(noSock.code, 1);
  oneErrorLine(noSock, /^Error: no Workload API at unix:\/\/.*nope\.sock: is the agent running\? \(dev stack: `npm start`/);
  assert.equal(noSock.connects, 0);
});

test('policy delete asks on stderr and cancels unless answered y', async () => {
  // getPolicy fails first (dead Nexus), so the question is never asked for a missing policy
  const r = await spike(['policy', 'delete', 'p1'], { stdin: 'y\n' });
  oneErrorLine(r, /Cannot reach SPIKE Nexus at /);
  assert.equal(r.out, '');
});

test('cipher: missing input file is one line, exit 1', async () => {
  const r = await spike(['cipher', 'encrypt', '-f', 'missing.bin']);
  assert.equal(r.code, 1);
  oneErrorLine(r, /^Error: Input file does not exist: missing\.bin$/);
  assert.equal(r.connects, 0);
});

test('--socket works before or after the subcommand; "secret get -v/--version <n>" is the subcommand\'s', async () => {
  for (const argv of [
    ['--socket', 'nope', 'secret', 'list'],
    ['secret', 'list', '--socket', 'nope'],
  ]) {
    const r = await spike(argv);
    assert.equal(r.code, 1);
    oneErrorLine(r, /^Error: no Workload API at unix:\/\/.*\.spike\/sockets\/nope\.sock: is the agent running\?/);
    assert.equal(r.connects, 0);
  }
  const v = await spike(['secret', 'get', 'a/b', '--version', '2']);
  oneErrorLine(v, /Cannot reach SPIKE Nexus at /);
  assert.equal(v.connects, 1);
});

test('spike env: endpoint and Nexus URL with their sources, contacts nothing; --json; bad --role is a usage error', async () => {
  const r = await spike(['env'], { env: { SPIKE_NEXUS_API_URL: 'https://nexus.example:8553' } });
  assert.equal(r.code, 0);
  assert.equal(r.err, '');
  assert.equal(r.connects, 0);
  assert.equal(
    r.out,
    `SPIFFE Workload API: unix://${sockFile} (source: environment (SPIFFE_ENDPOINT_SOCKET))\n` +
      'SPIKE Nexus URL: https://nexus.example:8553 (source: environment (SPIKE_NEXUS_API_URL))\n',
  );
  const j = await spike(['env', '--json', '--socket', './gone.sock']);
  assert.equal(j.code, 0);
  assert.deepEqual(JSON.parse(j.out), {
    workloadApi: { endpoint: `unix://${path.join(cwd, 'gone.sock')}`, source: 'flag', socketMissing: true },
    nexusUrl: { url: 'https://localhost:8553', source: 'default' },
  });
  const t = await spike(['env'], { env: { SPIFFE_ENDPOINT_SOCKET: '' } });
  assert.match(t.out, /^SPIFFE Workload API: unix:\/\/\/tmp\/spire-agent\/public\/api\.sock \(source: default(; no socket there)?\)\n/);
  const bad = await spike(['env', '--role', 'admin']);
  assert.equal(bad.code, 2);
  oneErrorLine(bad, /^Error: Invalid --role/);
});

test('help exits 0 whatever exit code the host process has set (a failed test earlier in the same runner)', async () => {
  const before = process.exitCode;
  process.exitCode = 1;
  try {
    for (const argv of [['secret', 'help', 'put'], ['help', 'secret'], ['secret', 'get', '--help']]) {
      const r = await spike(argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.equal(process.exitCode, 1, 'the host\'s exit code is left as it was');
    }
    assert.equal((await spike(['secret'])).code, 2, 'a bare group is still a usage error');
  } finally {
    process.exitCode = before;
  }
});

test('spike help …, <group> help <cmd> and --help exit 0; a bare group or `spike` alone is a usage error (2)', async () => {
  for (const argv of [['help'], ['help', 'secret'], ['help', 'policy'], ['secret', 'help', 'put'], ['operator', '--help'], ['completion', '--help']]) {
    const r = await spike(argv);
    assert.equal(r.code, 0, argv.join(' '));
    assert.match(r.out, /Usage: spike/);
    assert.equal(r.connects, 0);
  }
  for (const argv of [[], ['secret'], ['secret', 'metadata']]) assert.equal((await spike(argv)).code, 2, argv.join(' '));
  // help walks the whole command path (commander's own help command took one name only)
  for (const [argv, usage] of [[['help', 'secret', 'put'], 'spike secret put'], [['help', 'operator', 'recover'], 'spike operator recover'],
    [['help', 'secret', 'metadata', 'get'], 'spike secret metadata get'], [['help', 'help'], 'spike'], [['--socket', 'pilot', 'help', 'policy', 'create'], 'spike policy create']] as const) {
    const r = await spike([...argv]);
    assert.equal(r.code, 0, argv.join(' '));
    assert.match(r.out, new RegExp(`^Usage: ${usage} `), argv.join(' '));
  }
  const unknown = await spike(['help', 'nosuch']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /^Error: unknown command 'nosuch'/);
  // attack-argv-terminal-escapes: the user's argv quoted in a usage error is shown escaped
  const hostile = await spike(['sec\u001b]0;T\u0007ret', 'get']);
  assert.equal(hostile.code, 2);
  assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f]/.test(hostile.err), JSON.stringify(hostile.err));
  assert.match(hostile.err, /sec\\x1b\]0;T\\x07ret/);
  assert.deepEqual(helpArgv(['secret', 'help', 'put']), ['secret', 'help', 'put'], 'a group\'s own help command is commander\'s');
  // no line starting with help runs a command: options and `--` after help end the names
  for (const [argv, want] of [
    [['help', '--socket', 'demo', 'secret', 'delete', 'a/b'], ['--help']],
    [['help', '--', 'secret', 'delete', 'a/b'], ['--help']],
    [['help', 'secret', 'list', '--'], ['secret', 'list', '--help']],
    [['help', 'secret', 'delete', '--'], ['secret', 'delete', '--help']],
    [['help', 'secret', 'list', '--socket'], ['secret', 'list', '--help']],
    [['help', 'nosuch', 'secret', 'delete', 'a/b'], ['nosuch']],
    [['--socket', 'help', 'secret', 'get', 'x'], ['--socket', 'help', 'secret', 'get', 'x']],
  ] as const) assert.deepEqual(helpArgv([...argv]), want, argv.join(' '));
  for (const argv of [['help', '--socket', 'demo', 'secret', 'delete', 'a/b'], ['help', '--', 'secret', 'delete', 'a/b'], ['help', 'secret', 'delete', '--']]) {
    const r = await spike(argv);
    assert.equal(r.connects, 0, `${argv.join(' ')} must not run the command`);
    assert.equal(r.code, 0, argv.join(' '));
  }
});

test('one output rule: every command has --format and --json (from the tree the completion script is made of)', async () => {
  const script = await spike(['completion', 'bash']);
  assert.equal(script.code, 0);
  const sub = script.out.slice(script.out.indexOf('_spike_subcommands()'), script.out.indexOf('_spike_options()'));
  const leaves = [...sub.matchAll(/^ {4}"([a-z -]+)"\) echo "" ;;$/gm)].map((m) => m[1]!.split(' '));
  assert.ok(leaves.length >= 18, `leaves: ${leaves.length}`);
  for (const leaf of leaves) {
    if (leaf[0] === 'completion') continue; // prints a shell script, nothing else
    const h = await spike([...leaf, '--help']);
    assert.equal(h.code, 0, leaf.join(' '));
    assert.match(h.out, /--format <format>/, `${leaf.join(' ')} has --format`);
    assert.match(h.out, /--json/, `${leaf.join(' ')} has --json`);
  }
  const both = await spike(['policy', 'list', '--json', '--format', 'yaml']);
  assert.equal(both.code, 2);
  oneErrorLine(both, /^Error: --json cannot be combined with another --format\.$/);
  const yaml = await spike(['env', '--format', 'yaml'], { env: { SPIKE_NEXUS_API_URL: 'https://nexus.example:8553' } });
  assert.match(yaml.out, /^workloadApi:\n {2}endpoint: /);
});

test('invalid policy patterns and value sources fail before any connection, naming the rule', async () => {
  const flags = ['--name', 'p', '--spiffeid-pattern', '^spiffe://x/a$', '--permissions', 'read'];
  const c = await spike(['policy', 'create', ...flags, '--path-pattern', '(a)\\1']);
  assert.equal(c.code, 2);
  oneErrorLine(c, /^Error: Invalid --path-pattern: it does not compile \(invalid escape sequence at character 4: `\\1`\)\.$/);
  assert.equal(c.connects, 0);
  const two = await spike(['secret', 'put', 'a/b', 'x=-', 'y=-']);
  assert.equal(two.code, 2);
  oneErrorLine(two, /Only one value can come from stdin/);
  const missing = await spike(['secret', 'put', 'a/b', 'x=@nope.txt']);
  assert.equal(missing.code, 1);
  oneErrorLine(missing, /^Error: Cannot read the file "nope\.txt" for key 'x': no such file\.$/);
  assert.equal(missing.connects, 0);
});

test('operator recover off the dev stack asks for --out (never $HOME)', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-home-'));
  try {
    const r = await spike(['operator', 'recover'], { env: { HOME: home }, selfId: 'spiffe://spike.ist/spike/pilot/role/recover' });
    assert.equal(r.code, 2);
    oneErrorLine(r, /^Error: Say where the recovery shards go: --out <dir> \(or set SPIKE_PILOT_RECOVERY_DIR\)\.$/);
    assert.deepEqual(fs.readdirSync(home), []);
    assert.equal(r.connects, 0);
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test('start-up: only the group being run is loaded; help and typos still see every group', async () => {
  assert.equal(groupOf(['secret', 'get', 'a/b']), 'secret');
  assert.equal(groupOf(['--socket', 'secret', 'policy', 'list']), 'policy', 'the value of --socket is not the group');
  assert.equal(groupOf(['--help']), undefined);
  assert.equal(groupOf(['help', 'secret']), undefined);
  assert.equal(groupOf(['secrt', 'get']), undefined);
  assert.equal(groupOf([]), undefined);
  const help = await spike(['--help']);
  assert.equal(help.code, 0);
  for (const g of ['secret', 'policy', 'cipher', 'operator', 'env', 'audit']) assert.match(help.out, new RegExp(`\\b${g}\\b`), g);
  const typo = await spike(['secrt', 'list']);
  assert.equal(typo.code, 2);
  assert.match(typo.err, /secret/, 'the suggestion names the real group');
  const sub = await spike(['secret', '--help']);
  assert.equal(sub.code, 0);
  assert.match(sub.out, /\bget\b/);
});

test('ATTACK stdout on a full disk (> /dev/full): exit 1 with one line, never exit 0 with the data lost', { skip: !fs.existsSync('/dev/full') }, () => {
  for (const args of [['--version'], ['completion', 'bash']]) {
    const full = fs.openSync('/dev/full', 'w');
    try {
      const r = spawnSync(process.execPath, [binPath('spike'), ...args], { stdio: ['ignore', full, 'pipe'], encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 1, args.join(' '));
      assert.equal(r.stderr, 'Error: Cannot write the output to stdout (ENOSPC).\n');
    } finally {
      fs.closeSync(full);
    }
  }
});

test('ATTACK audit verify of a device (/dev/zero): refused at once with one line, never read without end', { skip: !fs.existsSync('/dev/zero') }, () => {
  const r = spawnSync(process.execPath, [binPath('spike'), 'audit', 'verify', '/dev/zero'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'Error: The audit file "/dev/zero" is not a regular file or a pipe.\n');
});

test('attack-cli-unbounded-input: cipher rewrap refuses an input larger than any cipher stream with one line, before contacting Nexus', async () => {
  const r = await spike(['cipher', 'rewrap'], { stdin: Buffer.alloc((64 << 20) + 2048, 1) });
  assert.equal(r.code, 1);
  oneErrorLine(r, /The input is larger than Nexus's largest cipher stream/);
  assert.equal(r.connects, 0);
});

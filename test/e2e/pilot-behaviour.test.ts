/**
 * One behaviour rule for every `spike` command (issue 15 §2), with the real binary against a
 * real stack (test/helpers/stack.ts: spike-agent, 3 Keepers, Nexus on SQLite, Bootstrap):
 *
 * - `--format human|json|yaml` / `--json` on writes too: `OK: …` lines, `{"ok":true,…}` objects;
 *   one time format (RFC 3339, UTC, to the second); `policy list --json` shows the ids get/delete take;
 * - values from a file (`key=@file`, bytes exactly, trailing newline kept) or stdin (`key=-`),
 *   with the `@@` / `@-` escapes, so secrets need not be on argv;
 * - errors say what was wrong: which path rule, where a pattern does not compile, "not found:
 *   <path as typed>" — and Nexus itself never echoes a path (its answers are checked too);
 * - refused input changes nothing and says why: an empty or directory stdin for `key=-`, a request
 *   over Nexus's body cap (Nexus's own reason is shown), list prefix rules, undelete's version;
 * - `spike help …` exits 0 (also `help <group> <command>`); `spike completion bash` passes
 *   `bash -n` and `zsh -n` (zsh installed from Debian's packages when missing and root);
 * - a non-superuser workload uses the CLI for what its policy allows (also in cli-secrets-policies.ts);
 * - operator and audit commands (refresh-shares, rotate-root-key, audit hash) answer in json/yaml too,
 *   writes with `ok: true`, their warnings on stderr.
 */
import 'reflect-metadata';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ensureCommand } from '../helpers/apt.js';
import { binCommand, binEnvPath } from '../helpers/bin.js';
import { Stack } from '../helpers/stack.js';

const APP = 'spiffe://spike.ist/workload/beh-app';
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

let stack: Stack;
let files: string;

before(async () => {
  stack = await Stack.start({ identities: { 'beh-app': APP } });
  files = path.join(stack.dir, 'value-files');
  fs.mkdirSync(files, { mode: 0o700 });
});

after(async () => {
  await stack?.stop();
});

type Run = { code: number | null; stdout: string; stderr: string };

async function ok(args: string[], opts: { stdin?: Buffer; identity?: string } = {}): Promise<string> {
  const r = await stack.spike(args, opts);
  assert.equal(r.code, 0, `spike ${args.join(' ')} → ${r.code}: ${r.stderr}`);
  assert.equal(r.stderr, '', `spike ${args.join(' ')}: stderr`);
  return r.stdout;
}

function oneLine(r: Run, re: RegExp, code = 1): void {
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stdout, '');
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, JSON.stringify(r.stderr));
  assert.match(lines[0]!, re);
}

test('writes in every format: one OK line in human form, a small object in json/yaml', async () => {
  assert.equal(await ok(['secret', 'put', 'fmt/a', 'k=1']), 'OK: wrote secret fmt/a (version 1).\n');
  assert.deepEqual(JSON.parse(await ok(['secret', 'put', 'fmt/a', 'k=2', '--json'])), { ok: true, path: 'fmt/a', version: 2 });
  assert.deepEqual(YAML.parse(await ok(['secret', 'put', 'fmt/a', 'k=3', '--format', 'yaml'])), { ok: true, path: 'fmt/a', version: 3 });
  assert.deepEqual(JSON.parse(await ok(['secret', 'delete', 'fmt/a', '-v', '1,2', '-f', 'json'])), { ok: true, path: 'fmt/a', versions: [1, 2] });
  assert.deepEqual(JSON.parse(await ok(['secret', 'undelete', 'fmt/a', '-v', '1', '--json'])), { ok: true, path: 'fmt/a', versions: [1] });
  assert.deepEqual(JSON.parse(await ok(['secret', 'destroy', 'fmt/a', '-v', '1', '--json'])), { ok: true, path: 'fmt/a', versions: [1] });
  const flags = ['--spiffeid-pattern', '^spiffe://spike\\.ist/workload/beh-app$', '--path-pattern', '^app/.*$', '--permissions', 'read,list'];
  assert.deepEqual(JSON.parse(await ok(['policy', 'create', '--name', 'beh-read', ...flags, '--json'])), { ok: true, id: 'beh-read', name: 'beh-read' });
  assert.equal(await ok(['policy', 'apply', '--name', 'beh-read', ...flags]), 'OK: applied policy beh-read.\n');
  // the ids get/delete take (the name), not Nexus's empty `id`
  const list = JSON.parse(await ok(['policy', 'list', '--json'])) as Array<{ id: string; name: string }>;
  assert.deepEqual(list, [{ id: 'beh-read', name: 'beh-read' }]);
  const got = JSON.parse(await ok(['policy', 'get', list[0]!.id, '--json'])) as Record<string, string>;
  assert.equal(got['id'], 'beh-read');
  assert.match(got['createdAt']!, RFC3339_UTC);
  assert.match(got['updatedAt']!, RFC3339_UTC);
  assert.match(await ok(['policy', 'get', 'beh-read']), /^Created At: \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/m);
  const md = JSON.parse(await ok(['secret', 'metadata', 'get', 'fmt/a', '--json'])) as {
    versions: Record<string, { createdTime: string; deletedTime: string | null }>;
    metadata: { createdTime: string; updatedTime: string };
  };
  assert.match(md.metadata.createdTime, RFC3339_UTC);
  assert.match(md.metadata.updatedTime, RFC3339_UTC);
  for (const v of Object.values(md.versions)) assert.match(v.createdTime, RFC3339_UTC);
  assert.match(md.versions['2']!.deletedTime!, RFC3339_UTC);
  const human = await ok(['secret', 'metadata', 'get', 'fmt/a']);
  assert.match(human, /^Created Time {4}: \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/m);
  assert.match(human, /^ {2}Deleted: \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/m);
  const env = YAML.parse(await ok(['env', '--format', 'yaml'])) as { workloadApi: { endpoint: string } };
  assert.match(env.workloadApi.endpoint, /^unix:\/\//);
  const ct = JSON.parse(await ok(['cipher', 'encrypt', '--json'], { stdin: Buffer.from('hello') })) as { ciphertext: string };
  const pt = JSON.parse(await ok(['cipher', 'decrypt', '--json'], { stdin: Buffer.from(ct.ciphertext, 'base64') })) as { plaintext: string };
  assert.equal(Buffer.from(pt.plaintext, 'base64').toString(), 'hello');
  assert.equal(await ok(['policy', 'delete', 'beh-read', '--yes']), 'OK: deleted policy beh-read.\n');
});

test('values from a file (bytes exactly, trailing newline kept) and stdin; @@ and @- escapes', async () => {
  const pem = '-----BEGIN KEY-----\nMIIB\r\n-----END KEY-----\n';
  fs.writeFileSync(path.join(files, 'key.pem'), pem);
  fs.writeFileSync(path.join(files, 'pw.txt'), 'no-newline');
  const put = await stack.spike(
    ['secret', 'put', 'vals/a', `pem=@${path.join(files, 'key.pem')}`, `pw=@${path.join(files, 'pw.txt')}`, 'token=-', 'at=@@home', 'dash=@-', 'plain=x'],
    { stdin: Buffer.from('from-stdin\n\n') },
  );
  assert.equal(put.code, 0, put.stderr);
  assert.equal(put.stdout, 'OK: wrote secret vals/a (version 1).\n');
  const values = JSON.parse(await ok(['secret', 'get', 'vals/a', '--json'])) as Record<string, string>;
  assert.deepEqual(values, { pem, pw: 'no-newline', token: 'from-stdin\n\n', at: '@home', dash: '-', plain: 'x' });
  // human form of one key: the value, ending in exactly one newline
  assert.equal(await ok(['secret', 'get', 'vals/a', 'pem']), pem);
  assert.equal(await ok(['secret', 'get', 'vals/a', 'pw']), 'no-newline\n');
  // refusals change nothing and never show the content
  fs.writeFileSync(path.join(files, 'bin'), Buffer.from([0x53, 0x45, 0x43, 0xff]));
  oneLine(await stack.spike(['secret', 'put', 'vals/a', 'x=-', 'y=-'], { stdin: Buffer.from('a') }), /^Error: Only one value can come from stdin \(key=-\) per call\.$/, 2);
  oneLine(await stack.spike(['secret', 'put', 'vals/a', `x=@${path.join(files, 'bin')}`]), /^Error: The file ".*\/bin" for key 'x' is not UTF-8 text/);
  oneLine(await stack.spike(['secret', 'put', 'vals/a', 'x=@missing.txt']), /^Error: Cannot read the file "missing\.txt" for key 'x': no such file\.$/);
  const meta = JSON.parse(await ok(['secret', 'metadata', 'get', 'vals/a', '--json'])) as { metadata: { currentVersion: number } };
  assert.equal(meta.metadata.currentVersion, 1, 'no refused put wrote a version');
});

test('errors say what was wrong: path rule, pattern position, not found as typed; Nexus never echoes the path', async () => {
  const [badChar, dots, reserved, pattern, missing, missingV, missingKey, missingPolicy] = await Promise.all([
    stack.spike(['secret', 'get', 'db creds']),
    stack.spike(['secret', 'put', 'a/../b', 'k=v']),
    stack.spike(['secret', 'get', 'spike/system/acl']),
    stack.spike(['policy', 'create', '--name', 'p', '--spiffeid-pattern', '^spiffe://spike\\.ist/x$', '--path-pattern', '^app/(x$', '--permissions', 'read']),
    stack.spike(['secret', 'get', 'nothing/here-7f3a']),
    stack.spike(['secret', 'get', 'vals/a', '-v', '9']),
    stack.spike(['secret', 'get', 'vals/a', 'nokey']),
    stack.spike(['policy', 'get', 'no-such-policy']),
  ]);
  oneLine(badChar, /^Error: Invalid secret path: character 3 is not allowed \(use ASCII letters, digits and/, 2);
  assert.ok(!badChar.stderr.includes('db creds'));
  oneLine(dots, /^Error: Invalid secret path: it has a '\.' or '\.\.' segment\.$/, 2);
  oneLine(reserved, /^Error: Invalid secret path: spike\/system is reserved\.$/, 2);
  oneLine(pattern, /^Error: Invalid --path-pattern: it does not compile \(missing closing \): `\^app\/\(x\$`\)\.$/, 2);
  oneLine(missing, /^Error: not found: nothing\/here-7f3a\.$/);
  oneLine(missingV, /^Error: not found: vals\/a \(version 9\)\.$/);
  oneLine(missingKey, /^Error: not found: key "nokey" in vals\/a\.$/);
  oneLine(missingPolicy, /^Error: not found: policy no-such-policy\.$/);
  // the path in the message is the CLI's own argument: Nexus never logs it
  assert.ok(!stack.logs(stack.nexusName()).includes('nothing/here-7f3a'), 'Nexus never logs the path');
});

test('refusals that change nothing: empty or directory stdin, a too large request, list prefix rules, undelete and --metadata wording', async () => {
  await ok(['secret', 'put', 'keep/a', 'k=original']);
  // key=- with nothing on stdin (a closed stdin reads as empty) is refused, not stored as ''
  oneLine(await stack.spike(['secret', 'put', 'keep/a', 'k=-'], { stdin: Buffer.alloc(0) }), /^Error: stdin gave no value for key 'k'; for an empty value write 'k=' instead of 'k=-'\.$/);
  // a directory as stdin: Node reads it as an empty stream
  const [file, ...pre] = binCommand('spike');
  const dirIn = fs.openSync(files, 'r');
  try {
    const r = spawnSync(file!, [...pre, 'secret', 'put', 'keep/a', 'k=-'], {
      stdio: [dirIn, 'pipe', 'pipe'], encoding: 'utf8',
      env: { ...stack.nexusEnv(), PATH: binEnvPath(), HOME: stack.dir, SPIFFE_ENDPOINT_SOCKET: stack.socket('pilot'), SPIKE_SYSTEM_LOG_LEVEL: 'WARN' },
    });
    oneLine({ code: r.status, stdout: r.stdout, stderr: r.stderr }, /^Error: stdin for key 'k' is a directory, not a value\.$/);
  } finally {
    fs.closeSync(dirIn);
  }
  // exactly 1 MiB passes the CLI's per-value check, but the request is larger than Nexus's body cap: Nexus says why
  fs.writeFileSync(path.join(files, 'one-mib'), Buffer.alloc(1 << 20, 0x61));
  oneLine(await stack.spike(['secret', 'put', 'keep/a', `k=@${path.join(files, 'one-mib')}`]), /^Error: Invalid request: request body too large\.$/);
  assert.equal(await ok(['secret', 'get', 'keep/a', 'k']), 'original\n', 'nothing refused above was stored');
  // a list prefix names the rule it broke (exit 2: a malformed argument)
  oneLine(await stack.spike(['secret', 'list', 'a b']), /^Error: Invalid secret path prefix: character 2 is not allowed \(use ASCII letters/, 2);
  oneLine(await stack.spike(['secret', 'list', 'x'.repeat(501)]), /^Error: Invalid secret path prefix: it is longer than 500 characters\.$/, 2);
  // undelete of a version that is not deleted: the version, not just the path
  oneLine(await stack.spike(['secret', 'undelete', 'keep/a', '-v', '1']), /^Error: not found: keep\/a \(no deleted version 1\)\.$/);
  oneLine(await stack.spike(['secret', 'undelete', 'keep/a']), /^Error: not found: keep\/a \(no deleted version\)\.$/);
  // a bad --metadata pair is named as such, not as the (valid) value argument
  oneLine(await stack.spike(['secret', 'put', 'keep/a', 'k=v', '--metadata', 'bad']), /^Error: Invalid key-value pair \(--metadata\): expected key=value\.$/, 2);
  oneLine(await stack.spike(['secret', 'put', 'keep/a', 'k=v', '--max-versions', '-3']), /^Error: Invalid --max-versions: expected an integer ≥ 1\.$/, 2);
  assert.equal(JSON.parse(await ok(['secret', 'metadata', 'get', 'keep/a', '--json'])).metadata.currentVersion, 1);
});

test('a non-superuser workload uses the CLI for what its policy allows (the server decides)', async () => {
  await ok(['policy', 'create', '--name', 'beh-app', '--spiffeid-pattern', `^${APP.replace(/\./g, '\\.')}$`, '--path-pattern', '^app/.*$', '--permissions', 'read,write']);
  assert.equal(await ok(['secret', 'put', 'app/cfg', 'mode=prod'], { identity: 'beh-app' }), 'OK: wrote secret app/cfg (version 1).\n');
  assert.equal(await ok(['secret', 'get', 'app/cfg', 'mode'], { identity: 'beh-app' }), 'prod\n');
  oneLine(await stack.spike(['secret', 'get', 'vals/a'], { identity: 'beh-app' }), /^Error: Unauthorized access\.$/);
  oneLine(await stack.spike(['policy', 'list'], { identity: 'beh-app' }), /^Error: Unauthorized access\.$/);
  // operator commands keep their client-side role check
  oneLine(await stack.spike(['operator', 'recover', '--out', path.join(files, 'rec')], { identity: 'beh-app' }), /needs the spiffe:\/\/spike\.ist\/spike\/pilot\/role\/recover identity/);
});

test('spike help … exits 0; completion scripts are valid shell', async (t) => {
  for (const args of [['help'], ['help', 'secret'], ['secret', 'help', 'put'], ['help', 'completion'], ['help', 'help']]) {
    const r = await stack.spike(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /Usage: spike/);
  }
  // the whole command path, not just its group
  const put = await stack.spike(['help', 'secret', 'put']);
  assert.equal(put.code, 0, put.stderr);
  assert.match(put.stdout, /^Usage: spike secret put /);
  oneLine(await stack.spike(['help', 'nosuch']), /^Error: unknown command 'nosuch'/, 2);
  const bash = await ok(['completion', 'bash']);
  const file = path.join(files, 'spike.bash');
  fs.writeFileSync(file, bash);
  const n = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
  assert.equal(n.status, 0, n.stderr);
  const c = spawnSync('bash', ['-c', `source ${file}; COMP_WORDS=(spike secret ''); COMP_CWORD=2; _spike; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' });
  assert.equal(c.stdout.trim(), 'put get delete undelete destroy list metadata help');
  const shells = spawnSync('bash', ['-c', `source ${file}; COMP_WORDS=(spike completion ''); COMP_CWORD=2; _spike; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' });
  assert.equal(shells.stdout.trim(), 'bash zsh', 'spike completion <TAB> offers the shells, not file names');
  const zsh = await ok(['completion', 'zsh']);
  assert.match(zsh, /^#compdef spike\n/);
  if (!ensureCommand('zsh', ['--version'], 'zsh')) {
    t.diagnostic('zsh is not installed and could not be installed here (not root, or no package source): zsh -n skipped');
  } else {
    const z = spawnSync('zsh', ['-n'], { input: zsh, encoding: 'utf8' });
    assert.equal(z.status, 0, z.stderr);
  }
  oneLine(await stack.spike(['completion', 'fish']), /^Error: Unsupported shell \(use bash or zsh\)\.$/, 2);
});

test('operator and audit commands answer in json and yaml too; their writes carry ok: true, warnings go to stderr', async () => {
  await ok(['secret', 'put', 'ops/a', 'k=before']);
  const refresh = await stack.spike(['operator', 'refresh-shares', '--json']);
  assert.equal(refresh.code, 0, refresh.stderr);
  const r = JSON.parse(refresh.stdout) as { ok: boolean; epoch: number; recoveryShardsStale: boolean };
  assert.equal(r.ok, true);
  assert.equal(r.recoveryShardsStale, true);
  assert.ok(Number.isSafeInteger(r.epoch) && r.epoch > 0);
  assert.match(refresh.stderr, /^Warning: recovery shards saved before this change no longer work; run `spike operator recover`\.\n$/, 'the warning the human form prints, on stderr');
  const rotation = await stack.spike(['operator', 'rotate-root-key', '--format', 'yaml']);
  assert.equal(rotation.code, 0, rotation.stderr);
  assert.match(rotation.stderr, /^Warning: recovery shards exported before this rotation no longer work; run `spike operator recover` now\.\n$/);
  const rot = YAML.parse(rotation.stdout) as { ok: boolean; epoch: number; storageKeyId: number; cipherVersion: number };
  assert.equal(rot.ok, true);
  assert.ok(rot.epoch > r.epoch, `rotation epoch ${rot.epoch} after refresh epoch ${r.epoch}`);
  assert.ok(Number.isSafeInteger(rot.storageKeyId) && Number.isSafeInteger(rot.cipherVersion));
  const hash = JSON.parse(await ok(['audit', 'hash', 'ops/a', '--json'])) as { hash: string };
  assert.match(hash.hash, /^[0-9a-f]{64}$/);
  assert.equal((await ok(['audit', 'hash', 'ops/a'])).trim(), hash.hash, 'the same hash in human form');
  assert.deepEqual(JSON.parse(await ok(['secret', 'get', 'ops/a', '--json'])), { k: 'before' }, 'still readable after both');
});

/** `spike completion bash|zsh`: generated from the command tree, valid shell, every command and option in it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { commandTree, completionScript } from './completion.js';

function tree(): Command {
  const root = new Command('spike').option('--socket <s>');
  const secret = root.command('secret');
  secret.command('get').option('-f, --format <f>').option('--json');
  secret.command('put');
  root.command('cipher').command('encrypt').option('-f, --file <p>').option('--format <f>');
  return root;
}

test('the tree: every command path with its subcommands (help included) and option flags', () => {
  const nodes = commandTree(tree());
  const byPath = new Map(nodes.map((n) => [n.path, n]));
  assert.deepEqual(byPath.get('')!.subcommands, ['secret', 'cipher', 'help']);
  assert.deepEqual(byPath.get('secret')!.subcommands, ['get', 'put', 'help']);
  assert.deepEqual(byPath.get('secret get')!.options, ['-f', '--format', '--json', '--help']);
  assert.ok(byPath.get('')!.options.includes('--version'));
});

test('bash script passes bash -n and completes commands, options and --format values', () => {
  const script = completionScript('bash', tree());
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spike-compl-')), 'spike.bash');
  fs.writeFileSync(file, script);
  assert.equal(spawnSync('bash', ['-n', file]).status, 0);
  const complete = (words: string[]): string => {
    const r = spawnSync('bash', ['-c', `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _spike; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' });
    return r.stdout.trim();
  };
  assert.equal(complete(['spike', 'sec']), 'secret');
  assert.equal(complete(['spike', 'secret', '']), 'get put help');
  assert.equal(complete(['spike', 'secret', 'get', '--js']), '--json');
  assert.equal(complete(['spike', 'secret', 'get', '--format', '']), 'human json yaml');
  assert.equal(complete(['spike', 'secret', 'get', '-f', 'j']), 'json');
  assert.notEqual(complete(['spike', 'cipher', 'encrypt', '-f', '']), 'human json yaml', 'cipher -f is --file');
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
});

test('zsh script: zsh -n when zsh is installed', (t) => {
  const script = completionScript('zsh', tree());
  assert.match(script, /^#compdef spike\n/);
  if (spawnSync('zsh', ['--version']).error) {
    t.skip('zsh is not installed on this machine');
    return;
  }
  const r = spawnSync('zsh', ['-n'], { input: script });
  assert.equal(r.status, 0, r.stderr?.toString());
});

test('an unknown shell is a usage error', () => {
  assert.throws(() => completionScript('fish', tree()), /Unsupported shell/);
});

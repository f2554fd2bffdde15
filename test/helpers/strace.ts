/**
 * `strace` for tests that watch or fault a real process's system calls: installed from
 * Debian's packages when missing (as the PostgreSQL helper does), and attached to a running
 * process with fault injection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureCommand } from './apt.js';

/**
 * Whether this process may attach to another (root, and Yama's ptrace_scope below 3): tests that
 * fault a running server skip otherwise.
 */
export function canAttach(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    return Number(fs.readFileSync('/proc/sys/kernel/yama/ptrace_scope', 'utf8').trim()) < 3;
  } catch {
    return true; // no Yama: root may attach
  }
}

/** Makes sure `strace` runs here (installed from Debian's packages when it is missing). */
export function ensureStrace(): void {
  if (!ensureCommand('strace', ['-V'], 'strace')) throw new Error('strace is missing and could not be installed (apt-get install strace)');
}

/** Thread ids of a process whose tracer is `tracer` (from /proc). */
function tracedThreads(pid: number, tracer: number): { all: number; traced: number } {
  const tids = fs.readdirSync(`/proc/${pid}/task`);
  let traced = 0;
  for (const tid of tids) {
    try {
      const m = /^TracerPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
      if (Number(m?.[1]) === tracer) traced++;
    } catch {
      // a thread that just ended
    }
  }
  return { all: tids.length, traced };
}

export interface Injection {
  /** The trace file: one line per faulted call. */
  readonly file: string;
  /** Detaches (the process goes on untraced) and waits for strace to exit. */
  stop(): Promise<void>;
}

/**
 * Attaches strace to every thread of `pid` and makes `syscalls` that touch `onlyPath` fail
 * with `errno` (`strace -P`: only calls on that file are traced, so only they are faulted).
 * Resolves once every thread is traced.
 */
export async function injectErrno(pid: number, o: { syscalls: string[]; errno: string; onlyPath: string; file: string }): Promise<Injection> {
  ensureStrace();
  const list = o.syscalls.join(',');
  const child: ChildProcess = spawn('strace', ['-f', '-qq', '-p', String(pid), '-P', o.onlyPath, '-e', `trace=${list}`,
    '-e', `inject=${list}:error=${o.errno}`, '-o', o.file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr = (stderr + String(c)).slice(-2000); });
  let spawnError: Error | undefined;
  child.once('error', (e) => { spawnError = e; });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const t = child.pid === undefined ? { all: 0, traced: 0 } : tracedThreads(pid, child.pid);
    if (t.traced > 0 && t.traced === t.all) break;
    if (spawnError !== undefined || child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`strace did not attach to every thread of ${pid} (${t.traced} of ${t.all}): ${spawnError?.message ?? stderr.trim()}`);
    }
    await sleep(20);
  }
  return {
    file: o.file,
    async stop() {
      child.kill('SIGINT'); // strace detaches from every thread and exits
      const killed = setTimeout(() => child.kill('SIGKILL'), 10_000); // a tracer stuck on a hung call: the kernel detaches a dead one
      await exited;
      clearTimeout(killed);
    },
  };
}

/**
 * The child processes of one end-to-end stack, by name: long-running ones started until a
 * ready line appears in their output, one-shot commands run to completion, and everything they
 * printed kept for log scans. `logs(name)` is the current incarnation of a name; `logs()` is all
 * output ever captured, in start order. Long-running children get their own process group, so
 * a kill reaches a wrapper's children too (strace blocks SIGTERM).
 */
import { spawn, type ChildProcess } from 'node:child_process';

interface Proc {
  proc: ChildProcess;
  exited: Promise<void>;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class Children {
  readonly #procs = new Map<string, Proc>();
  readonly #logs = new Map<string, string[]>();
  readonly #history: string[][] = [];

  /** Starts `argv` under `name`; resolves once `readyLine` appears (at once without one). */
  start(name: string, argv: readonly string[], env: Record<string, string>, readyLine?: string): Promise<void> {
    const proc = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const lines = this.#capture(name, []);
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    this.#procs.set(name, { proc, exited });
    return new Promise((resolve, reject) => {
      let ready = readyLine === undefined;
      if (ready) resolve();
      let buf = '';
      const onData = (chunk: Buffer): void => {
        const text = chunk.toString('utf8');
        lines.push(text);
        if (!ready) {
          buf += text;
          if (buf.includes(readyLine!)) {
            ready = true;
            resolve();
          }
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.once('exit', (code, sig) => {
        if (!ready) reject(new Error(`${name} exited before ready (${code ?? sig}): ${lines.join('').slice(-2000)}`));
      });
    });
  }

  /** Runs `argv` to completion in `cwd`, capturing its output (also into the logs under `name`). */
  run(name: string, argv: readonly string[], env: Record<string, string>, cwd: string, stdin?: Buffer): Promise<RunResult> {
    return new Promise((resolve) => {
      const proc = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'], cwd });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      proc.stdout.on('data', (c: Buffer) => out.push(c));
      proc.stderr.on('data', (c: Buffer) => err.push(c));
      proc.stdin.end(stdin);
      proc.once('close', (code) => {
        const stdout = Buffer.concat(out).toString('utf8');
        const stderr = Buffer.concat(err).toString('utf8');
        this.#capture(name, [stdout, stderr]);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Signals `name`'s process group (or the process) and waits for its exit; no-op if not started. */
  async kill(name: string, signal: NodeJS.Signals): Promise<void> {
    const p = this.#procs.get(name);
    if (!p) return;
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      try {
        process.kill(-p.proc.pid!, signal);
      } catch {
        p.proc.kill(signal);
      }
    }
    await p.exited;
    this.#procs.delete(name);
  }

  /** Kills every running child with SIGKILL, the last started first. */
  async killAll(): Promise<void> {
    for (const n of [...this.#procs.keys()].reverse()) await this.kill(n, 'SIGKILL');
  }

  process(name: string): ChildProcess | undefined {
    return this.#procs.get(name)?.proc;
  }

  clearLogs(name: string): void {
    this.#logs.get(name)?.splice(0);
  }

  logs(name?: string): string {
    if (name !== undefined) return (this.#logs.get(name) ?? []).join('');
    return this.#history.map((l) => l.join('')).join('');
  }

  #capture(name: string, lines: string[]): string[] {
    this.#logs.set(name, lines);
    this.#history.push(lines);
    return lines;
  }
}

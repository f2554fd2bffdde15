/**
 * The audit log writer: an append-only file of JSON lines (format.ts), separate from the
 * application log.
 *
 * Durability: `append()` builds the line at once (so the chain order is the call order) and
 * resolves only once the line is written and `fdatasync`ed. Lines appended while a flush
 * runs wait for the next one, which writes them all and syncs once (group commit).
 * `appendDeferred()` is for entries nobody waits for (request results, lifecycle events): the
 * line is built and chained at once, but it starts no flush of its own; it rides the next
 * awaited entry's flush, or is flushed {@link DEFER_MS} after the flush in progress (or after
 * it was appended, when none is) when none comes. Under load a request then costs one flush
 * (its intent), not two; a crash can lose only deferred lines not yet written, none of which
 * was promised to anybody.
 *
 * Failure: when a write or sync fails, every line of that batch and every line queued
 * behind it is rejected, the file is cut back to its last durable size and the chain state
 * (seq, prev) rolls back to the last durable line, so the next append retries cleanly.
 * Callers fail closed on a rejection (the router answers 503 before the handler runs).
 *
 * Rotation: before a batch that would take the file past `maxBytes`, `audit.log` becomes
 * `audit.log.1` (older ones shift up: `.1` → `.2` …; nothing is deleted). The chain carries
 * on into the new file: its first line's `prev` is the hash of the last line of `.1`.
 *
 * At start the chain continues from the newest line on disk; a torn last line (a crash during
 * a write, never acknowledged) is cut off first.
 *
 * `-` writes to standard output (no sync, no rotation).
 */
import fs from 'node:fs';
import { type AuditFailureCause, auditFailureCause } from './failure.js';
import { AuditKeys, type EntryFields, GENESIS_PREV, buildLine, sha256Hex } from './format.js';

/** Counters for metrics (src/ops); must not throw. */
export interface AuditObserver {
  written(n: number): void;
  failed(n: number): void;
}

/** The file operations (tests replace them to inject failures). */
export interface AuditIo {
  write(fd: number, data: Buffer): Promise<void>;
  sync(fd: number): Promise<void>;
}

const nodeIo: AuditIo = {
  write: (fd, data) => new Promise((resolve, reject) => {
    let off = 0;
    const step = (): void => {
      fs.write(fd, data, off, data.length - off, null, (err, n) => {
        if (err) return reject(err);
        off += n;
        if (off < data.length) step();
        else resolve();
      });
    };
    step();
  }),
  sync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
};

export interface AuditWriterOptions {
  /** File path, or `-` for standard output. */
  file: string;
  /** Rotate before a batch would take the file past this size (default 100 MiB). */
  maxBytes?: number;
  observer?: AuditObserver;
  io?: AuditIo;
  now?: () => Date;
}

interface Pending {
  line: string;
  /** SHA-256 (hex) of `line`: the next line's `prev`. */
  hash: string;
  /** Someone waits for this line: the flush loop goes on while such a line is queued. */
  awaited: boolean;
  resolve(): void;
  reject(e: unknown): void;
}

/** Longest a deferred line waits for an awaited one to carry it to disk. */
export const DEFER_MS = 20;

/** A refused append; `failure` names why (no cause: the writer was closed). */
export class AuditUnavailableError extends Error {
  readonly code = 'audit_unavailable';
  readonly failure: AuditFailureCause;
  constructor(cause?: unknown) {
    super('audit log unavailable', { cause });
    this.name = 'AuditUnavailableError';
    this.failure = cause === undefined ? 'closed' : auditFailureCause(cause);
  }
}

/**
 * Cuts a torn last line (no newline: a crash during a write) off `file`. Such a line was never
 * acknowledged (its sync had not returned), so removing it loses nothing that was promised.
 */
function cutTornTail(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r+');
  } catch {
    return;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return;
    const len = Math.min(size, 1 << 20);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    if (buf[len - 1] === 0x0a) return;
    const nl = buf.lastIndexOf(0x0a);
    fs.ftruncateSync(fd, nl === -1 ? size - len : size - len + nl + 1);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads the last line of `file` (undefined: no file, or empty). */
function lastLine(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return undefined;
    const len = Math.min(size, 1 << 20);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    const text = buf.toString('utf8').replace(/\n$/, '');
    return text.slice(text.lastIndexOf('\n') + 1);
  } finally {
    fs.closeSync(fd);
  }
}

export class AuditWriter {
  readonly #file: string;
  readonly #stdout: boolean;
  readonly #maxBytes: number;
  readonly #io: AuditIo;
  readonly #observer: AuditObserver | undefined;
  readonly #now: () => Date;
  #fd: number;
  #keys: AuditKeys | undefined;
  #queue: Pending[] = [];
  /** Awaited lines in #queue. */
  #awaitedQueued = 0;
  #flushing = false;
  #closing = false;
  #closed = false;
  #deferTimer: NodeJS.Timeout | undefined;
  // chain state: built (next line) and durable (rollback point)
  #seq = 0;
  #prev = GENESIS_PREV;
  #size = 0;
  #durable = { seq: 0, prev: GENESIS_PREV, size: 0 };

  constructor(o: AuditWriterOptions) {
    this.#file = o.file;
    this.#stdout = o.file === '-';
    this.#maxBytes = o.maxBytes ?? 100 * 1024 * 1024;
    this.#io = o.io ?? nodeIo;
    this.#observer = o.observer;
    this.#now = o.now ?? (() => new Date());
    if (this.#stdout) {
      this.#fd = 1;
    } else {
      // Continue the chain from the newest line on disk (the live file, else the last rotated one).
      cutTornTail(this.#file);
      const last = lastLine(this.#file) ?? lastLine(`${this.#file}.1`);
      if (last !== undefined) {
        try {
          const seq = (JSON.parse(last) as { seq?: unknown }).seq;
          if (typeof seq === 'number') this.#seq = seq;
        } catch {
          /* a torn last line: the chain still links to its bytes; verify will report it */
        }
        this.#prev = sha256Hex(last);
      }
      this.#fd = fs.openSync(this.#file, 'a', 0o600);
      this.#size = fs.fstatSync(this.#fd).size;
      this.#durable = { seq: this.#seq, prev: this.#prev, size: this.#size };
    }
  }

  /** Installs the audit keys once the root key exists (later entries carry a MAC and paths). */
  useKeys(keys: AuditKeys | undefined): void {
    this.#keys?.destroy();
    this.#keys = keys;
  }

  /** The path's HMAC (hex), or undefined before the root key exists. */
  hashPath(path: string): string | undefined {
    return this.#keys?.hashPath(path);
  }

  get keyed(): boolean {
    return this.#keys !== undefined;
  }

  /** Appends one entry; resolves once it is on disk, rejects with {@link AuditUnavailableError}. */
  append(fields: EntryFields): Promise<void> {
    return this.#enqueue(fields, true);
  }

  /**
   * Appends one entry that nobody waits for: chained now, written with the next awaited entry
   * or within {@link DEFER_MS}. Resolves once on disk; rejects as {@link append} does.
   */
  appendDeferred(fields: EntryFields): Promise<void> {
    return this.#enqueue(fields, false);
  }

  #enqueue(fields: EntryFields, awaited: boolean): Promise<void> {
    if (this.#closed) return Promise.reject(new AuditUnavailableError());
    this.#seq += 1;
    const line = buildLine(this.#now().toISOString(), this.#seq, fields, this.#prev, this.#keys);
    const hash = sha256Hex(line);
    this.#prev = hash;
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ line, hash, awaited, resolve, reject });
      if (awaited) this.#awaitedQueued += 1;
      if (this.#flushing) return;
      if (awaited) void this.#flush();
      else this.#armDeferTimer();
    });
  }

  /** Flushes the queued deferred lines after {@link DEFER_MS} (once armed, not pushed back). */
  #armDeferTimer(): void {
    this.#deferTimer ??= setTimeout(() => {
      this.#deferTimer = undefined;
      if (!this.#flushing && this.#queue.length > 0) void this.#flush();
    }, DEFER_MS);
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
    try {
      // The first round writes whatever is queued (an awaited line, or deferred ones whose
      // time is up); later rounds run only for awaited lines (or to drain on close).
      let first = true;
      while (this.#queue.length > 0 && (first || this.#awaitedQueued > 0 || this.#closing)) {
        first = false;
        const batch = this.#queue.splice(0);
        this.#awaitedQueued = 0;
        const data = Buffer.from(batch.map((p) => `${p.line}\n`).join(''), 'utf8');
        try {
          if (!this.#stdout && this.#size > 0 && this.#size + data.length > this.#maxBytes) this.#rotate();
          await this.#io.write(this.#fd, data);
          if (!this.#stdout) await this.#io.sync(this.#fd);
        } catch (e) {
          this.#fail(batch, e);
          continue;
        }
        this.#size += data.length;
        const last = batch[batch.length - 1]!;
        this.#durable = { seq: this.#durable.seq + batch.length, prev: last.hash, size: this.#size };
        this.#observer?.written(batch.length);
        for (const p of batch) p.resolve();
      }
    } finally {
      this.#flushing = false;
      // Deferred lines appended during the last round wait for their own time.
      if (this.#queue.length > 0 && !this.#closed) this.#armDeferTimer();
    }
  }

  /** Rejects the batch and everything chained behind it; cuts the file back; rolls the chain back. */
  #fail(batch: Pending[], e: unknown): void {
    const rejected = [...batch, ...this.#queue.splice(0)];
    this.#awaitedQueued = 0;
    this.#seq = this.#durable.seq;
    this.#prev = this.#durable.prev;
    this.#size = this.#durable.size;
    if (!this.#stdout) {
      try {
        fs.ftruncateSync(this.#fd, this.#durable.size);
      } catch {
        /* the file may hold a torn tail; the next write still links to the durable line */
      }
    }
    this.#observer?.failed(rejected.length);
    const err = new AuditUnavailableError(e);
    for (const p of rejected) p.reject(err);
  }

  /**
   * Renames the live file to `.1` (older ones shift up) and opens a new one. The new file is
   * opened before the old descriptor is closed, and the writer only ever holds a descriptor it
   * owns: if the rename or the open fails, the old file stays open and in place (the batch
   * then fails closed; the next batch tries again), never a closed descriptor number that the
   * process may since have given to a socket or another file.
   */
  #rotate(): void {
    let n = 1;
    while (fs.existsSync(`${this.#file}.${n}`)) n++;
    for (; n > 1; n--) fs.renameSync(`${this.#file}.${n - 1}`, `${this.#file}.${n}`);
    fs.renameSync(this.#file, `${this.#file}.1`);
    let fresh: number;
    try {
      fresh = fs.openSync(this.#file, 'a', 0o600);
    } catch (e) {
      // Put the old file back under the live name, still open, so nothing is half-rotated.
      try {
        fs.renameSync(`${this.#file}.1`, this.#file);
      } catch {
        /* the old descriptor still writes to the renamed file: the chain stays whole */
      }
      throw e;
    }
    const old = this.#fd;
    this.#fd = fresh;
    fs.closeSync(old);
    this.#size = fs.fstatSync(this.#fd).size;
    this.#durable = { ...this.#durable, size: this.#size };
  }

  /** Writes the queued lines (deferred ones too, at once), then closes the file. */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
    if (!this.#flushing && this.#queue.length > 0) void this.#flush();
    while (this.#flushing || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 1));
    this.#closed = true;
    this.#keys?.destroy();
    this.#keys = undefined;
    if (!this.#stdout) fs.closeSync(this.#fd);
  }
}

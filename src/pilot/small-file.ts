/**
 * Reads a small local file the user named (a secret value's `@file`, a shard file) without
 * ever blocking or reading without bound: opened O_NONBLOCK (a FIFO or device is refused by the
 * regular-file check instead of hanging the open; a procfs or sysfs file, whose size is not what
 * it reads as, is refused too), at most `max` bytes kept, the read buffer
 * zeroed whatever happens. Failures are a {@link SmallFileError} naming what went wrong (never
 * the content); each caller words its own message.
 */
import fs from 'node:fs';

export type SmallFileFailure = 'open' | 'not_regular' | 'too_large';

export class SmallFileError extends Error {
  constructor(readonly failure: SmallFileFailure, readonly errno?: string) {
    super(failure);
  }
}

/** The file's bytes (a new buffer the caller zeroes); `noFollow`: a symlink as the last component is refused. */
export function readSmallFile(abs: string, max: number, opts: { noFollow?: boolean } = {}): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (opts.noFollow ? fs.constants.O_NOFOLLOW : 0));
  } catch (e) {
    throw new SmallFileError('open', (e as { code?: string }).code);
  }
  const buf = Buffer.alloc(max + 1);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new SmallFileError('not_regular');
    let n = 0;
    while (n < buf.length) {
      let r: number;
      try {
        r = fs.readSync(fd, buf, n, buf.length - n, null);
      } catch (e) {
        throw new SmallFileError('open', (e as { code?: string }).code);
      }
      if (r === 0) break;
      n += r;
    }
    if (n > max) throw new SmallFileError('too_large');
    // procfs and sysfs files claim to be regular but do not have the size they read as
    // (/proc/self/environ behind a planted symlink): refused, as is a file changing meanwhile.
    if (n !== st.size) throw new SmallFileError('not_regular');
    return Buffer.from(buf.subarray(0, n));
  } finally {
    buf.fill(0); // also when a read fails part-way
    fs.closeSync(fd);
  }
}

/**
 * Base class of every typed error in the project. `code` is stable and safe to show
 * (it never contains input values); `message` is a fixed human sentence.
 */
export class SpikeError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A loggable description of an error: its stable code only, never its message text. */
export function errInfo(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return err instanceof Error ? err.name : 'unknown';
}

/** The row shapes a persistent backend reads and writes for the sealed store (sealed.ts). */

/** A secret's metadata row as read (`meta` null: no row); `versions`: value rows exist for the id. */
export interface MetaRow {
  meta: Buffer | null;
  versions: boolean;
}

/**
 * One snapshot of a secret for a read: its metadata row, plus the value of `version` —
 * the version asked, or the newest stored one when none was asked (null: no such row).
 */
export interface ReadRow extends MetaRow {
  version: number | null;
  value: Buffer | null;
}

/** A secret write, sealed; `path` is set when the row is created. */
export interface SealedSecretWrite {
  created: boolean;
  path: Buffer | null;
  meta: Buffer;
  added: { version: number; blob: Buffer } | null;
  /** Versions whose value rows must be deleted. */
  dropped: number[];
}

/**
 * Keyring checks of the root-key rotation e2e tests: one Nexus metric read from its
 * operations listener, and which key ids the sealed blobs in the database carry (read-only,
 * beside the running Nexus; sqlite file or postgres tables) — "the old key is gone" means
 * one key id left.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { envelopeKeyId } from '../../src/crypto/index.js';
import type { E2eBackend, Stack } from './stack.js';

/** A plain (label-less) sample of Nexus instance 1's metrics; undefined when absent or unreachable. */
export async function opsMetric(stack: Stack, name: string): Promise<number | undefined> {
  try {
    const r = await fetch(`${stack.nexusOpsUrl()}/metrics`);
    const line = (await r.text()).split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Every sealed blob in the database. */
export async function storedBlobs(stack: Stack, backend: E2eBackend): Promise<Buffer[]> {
  if (backend === 'postgres') {
    const c = new pg.Client({ connectionString: stack.postgres!.connectionString });
    await c.connect();
    try {
      return (await c.query<{ b: Buffer }>(`SELECT path AS b FROM spike_secrets UNION ALL SELECT meta FROM spike_secrets
        UNION ALL SELECT value FROM spike_secret_versions UNION ALL SELECT body FROM spike_policies`)).rows.map((r) => r.b);
    } finally {
      await c.end();
    }
  }
  const db = new Database(path.join(stack.dir, 'data', 'spike.db'), { readonly: true, fileMustExist: true });
  try {
    return [
      ...db.prepare('SELECT path FROM secrets UNION ALL SELECT meta FROM secrets').pluck().all(),
      ...db.prepare('SELECT value FROM secret_versions').pluck().all(),
      ...db.prepare('SELECT body FROM policies').pluck().all(),
    ] as Buffer[];
  } finally {
    db.close();
  }
}

/** Key id → number of sealed blobs in the database. */
export async function keyIdsInDb(stack: Stack, backend: E2eBackend): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const b of await storedBlobs(stack, backend)) out.set(envelopeKeyId(b) ?? -1, (out.get(envelopeKeyId(b) ?? -1) ?? 0) + 1);
  return out;
}

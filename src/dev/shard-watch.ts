/**
 * DEVELOPMENT CONVENIENCE ONLY: keeps the dev stack's own recovery shards current. Every
 * few seconds the public sharing epoch is read (the commitments route, superuser identity);
 * when it moved (a share refresh, a Keeper set change, a root-key rotation), the shards
 * are exported again (recover identity) so that a restarted dev stack still restores its
 * key. Failures are reported once per epoch and retried; nothing here ever prints a shard.
 */
import { WorkloadX509Source } from '../spiffe/index.js';
import { NexusClient } from '../sdk/index.js';

interface ShardWatchOptions {
  url: string;
  /** Socket of an identity allowed to read the commitments (the dev superuser). */
  socket: string;
  /** Epoch of the shards already on disk. */
  exportedEpoch: number;
  /** Writes the current shards to the recovery area. */
  reexport: () => Promise<void>;
  say: (line: string) => void;
  intervalMs?: number;
}

/** Starts watching; returns a stop function. */
export async function startShardWatch(o: ShardWatchOptions): Promise<() => Promise<void>> {
  const source = await WorkloadX509Source.open({ endpoint: o.socket, timeoutMs: 30_000 });
  const client = await NexusClient.connect({ urls: [o.url], source });
  let exported = o.exportedEpoch;
  let warned: number | undefined;
  let busy = false;
  const tick = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    let epoch: number | undefined;
    try {
      epoch = (await client.getCommitments()).epoch;
      if (epoch !== exported) {
        await o.reexport();
        exported = epoch;
        o.say(`[dev] the sharing moved to epoch ${epoch}: development shards exported again`);
      }
    } catch {
      if (epoch !== undefined && warned !== epoch) o.say(`[dev] WARNING: could not export the development shards of epoch ${epoch} yet; retrying`);
      if (epoch !== undefined) warned = epoch;
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), o.intervalMs ?? 2000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await client.close();
    source.close();
  };
}

/**
 * A bounded dependency probe for `/readyz`: at most one check runs at a time, a result is
 * reused for `ttlMs`, and a check that does not settle within `timeoutMs` counts as failed.
 * A storm of probe requests therefore costs the dependency (e.g. the database) at most one
 * cheap query per `ttlMs`.
 */
export interface ProbeOptions {
  ttlMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

export function cachedProbe(check: () => Promise<unknown>, opts: ProbeOptions = {}): () => Promise<boolean> {
  const ttl = opts.ttlMs ?? 1_000;
  const timeout = opts.timeoutMs ?? 2_000;
  const now = opts.now ?? Date.now;
  let last: { ok: boolean; at: number } | undefined;
  let running: Promise<boolean> | undefined;
  const run = async (): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeout);
      });
      return await Promise.race([check().then(() => true, () => false), deadline]);
    } finally {
      clearTimeout(timer);
    }
  };
  return () => {
    if (last !== undefined && now() - last.at < ttl) return Promise.resolve(last.ok);
    running ??= run().then((ok) => {
      last = { ok, at: now() };
      running = undefined;
      return ok;
    });
    return running;
  };
}

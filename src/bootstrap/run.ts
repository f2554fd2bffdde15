/**
 * Bootstrap (SPIKE's `bootstrap -init`): makes the root key once, splits it with a random
 * polynomial (D5), gives every Keeper its share together with the public commitments (D6),
 * then proves that Nexus rebuilt the same key (docs/design/share-lifecycle.md, § 1).
 *
 * Run-once: before generating anything it asks Nexus (`/v1/bootstrap/status`, an
 * additive Bootstrap-only route) whether the store already holds a key-check record; if
 * so it stops with a clear message and changes nothing. A run interrupted half-way can be
 * rerun: Keepers accept a replacement share from Bootstrap until a Nexus has confirmed a
 * sharing (src/keeper/slot.ts).
 *
 * Atomic seeding (CFG-03), in two phases: every Keeper first gets its share *staged* (held
 * apart, never served to Nexus); only when all of them acknowledged does Bootstrap commit
 * (the identical share again, unstaged), and only then can Nexus rebuild the key. A Keeper
 * that cannot be reached in the first phase fails the run with nothing Nexus could use; the
 * rerun's staged shares replace the abandoned ones (a Keeper zeroes a staged share that is
 * not committed within 5 minutes: src/keeper/slot.ts). A Keeper lost between the phases is
 * like a Keeper lost after the run: with `threshold` commits Nexus rebuilds the key and
 * re-seeds it; with fewer the run fails and nothing is usable either.
 *
 * The verify probe uses its own purpose key, `bootstrap-verify/v1` (D7), never the
 * storage or cipher key, so the verify route is no decryption oracle (gap C2).
 *
 * Secrets: the root key, the shares, the probe key. All are wiped before `runBootstrap`
 * returns, on success and on failure.
 */
import { createHash, randomBytes } from 'node:crypto';
import { derivePurposeKey, gcmSeal, RootKey, splitSecret, wipe, wipeShare, type Share } from '../crypto/index.js';
import { backoffDelay, SpikeError, type Logger } from '../lib/index.js';
import type { BootstrapConfig } from '../config/index.js';
import { type KeeperClient, KeeperCallError } from '../keeper/index.js';
import { PATHS, VERIFY_AAD } from '../protocol/index.js';
import { AnswerTooLargeError, readAnswer, type MtlsHttpsClient } from '../spiffe/index.js';

class BootstrapError extends SpikeError {
  constructor(code: 'bootstrap_keeper_failed' | 'bootstrap_verify_mismatch' | 'bootstrap_verify_timeout' | 'bootstrap_nexus_unreachable', message: string) {
    super(code, message);
  }
}

type BootstrapOutcome = 'initialized' | 'already_initialized';

interface BootstrapDeps {
  config: BootstrapConfig;
  keepers: KeeperClient;
  nexus: MtlsHttpsClient;
  logger: Logger;
  /** Progress lines for a human (stderr in the CLI). */
  say?: (line: string) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Largest answer from Nexus read (its bootstrap answers are a few bytes). */
const MAX_NEXUS_ANSWER_BYTES = 64 * 1024;

async function postJson(nexus: MtlsHttpsClient, url: string, body: unknown, timeoutMs: number): Promise<{ status: number; json: unknown }> {
  const signal = AbortSignal.timeout(timeoutMs);
  const u = new URL(url);
  const res = await nexus.request({
    origin: u.origin, path: u.pathname + u.search, method: 'POST', body: Buffer.from(JSON.stringify(body)),
    headers: { 'content-type': 'application/json' }, signal,
  });
  let text: string;
  try {
    text = (await readAnswer(res.body, MAX_NEXUS_ANSWER_BYTES, signal)).toString('utf8');
  } catch (e) {
    if (e instanceof AnswerTooLargeError) return { status: res.statusCode, json: undefined };
    throw e;
  }
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.statusCode, json };
}

async function nexusInitialized(d: BootstrapDeps, deadline: number): Promise<boolean> {
  let attempt = 0;
  for (;;) {
    try {
      const r = await postJson(d.nexus, d.config.nexusUrl + PATHS.bootstrapStatus, {}, 10_000);
      if (r.status === 200 && r.json && typeof r.json === 'object') {
        return (r.json as Record<string, unknown>)['initialized'] === true;
      }
      d.logger.warn({ status: r.status }, 'unexpected answer from nexus status');
    } catch (err) {
      d.logger.warn({ reason: (err as { code?: string }).code ?? 'error' }, 'nexus not reachable yet');
    }
    if (Date.now() > deadline) throw new BootstrapError('bootstrap_nexus_unreachable', 'SPIKE Nexus did not answer; is it running?');
    await sleep(backoffDelay(attempt++, { initialMs: 500, maxMs: 5000 }));
  }
}

type Phase = 'stage' | 'commit';

async function deliver(d: BootstrapDeps, url: string, share: Share, epoch: number, commitments: ReturnType<typeof splitSecret>['commitments'], phase: Phase): Promise<void> {
  const c = d.config;
  const started = Date.now();
  let lastStatus: number | undefined;
  for (let attempt = 0; attempt < c.keeperMaxRetries; attempt++) {
    try {
      await d.keepers.contribute(url, { value: share.value, id: share.id, epoch, commitments, ...(phase === 'stage' ? { staged: true } : {}) });
      return;
    } catch (err) {
      lastStatus = err instanceof KeeperCallError ? err.status : undefined;
      if (lastStatus === 409) {
        throw new BootstrapError('bootstrap_keeper_failed', `keeper ${share.id} already holds a confirmed share of another key; SPIKE is already initialised`);
      }
      d.logger.warn({ keeper: url, keeperId: share.id, phase, attempt: attempt + 1 }, 'share delivery failed; retrying');
    }
    const wait = backoffDelay(attempt, { initialMs: c.keeperRetryInitialMs, maxMs: c.keeperRetryMaxMs });
    if (c.keeperTimeoutMs > 0 && Date.now() - started + wait > c.keeperTimeoutMs) break;
    if (attempt + 1 < c.keeperMaxRetries) await sleep(wait);
  }
  throw new BootstrapError('bootstrap_keeper_failed', `failed to reach keeper ${share.id} (${url}); fix it and rerun bootstrap`);
}

/** Runs one phase on every Keeper at once, waiting for all (the shares are wiped only after). */
async function everyKeeper(d: BootstrapDeps, shares: Share[], epoch: number, commitments: ReturnType<typeof splitSecret>['commitments'], phase: Phase): Promise<{ done: number; failures: BootstrapError[] }> {
  const results = await Promise.allSettled(d.config.keeperPeers.map((url, i) => deliver(d, url, shares[i]!, epoch, commitments, phase)));
  const failures: BootstrapError[] = [];
  for (const r of results) {
    if (r.status === 'fulfilled') continue;
    if (!(r.reason instanceof BootstrapError)) throw r.reason;
    failures.push(r.reason);
  }
  return { done: results.length - failures.length, failures };
}

/** Phase 1 everywhere, then phase 2 (see the module doc); throws when the sharing is not usable. */
async function seed(d: BootstrapDeps, shares: Share[], commitments: ReturnType<typeof splitSecret>['commitments']): Promise<void> {
  const say = d.say ?? (() => undefined);
  const epoch = 1;
  const staged = await everyKeeper(d, shares, epoch, commitments, 'stage');
  if (staged.failures.length > 0) {
    say(`${staged.failures.length} of ${shares.length} Keepers did not take their share; nothing was committed (Nexus cannot use this run).`);
    throw staged.failures[0]!;
  }
  say('Every Keeper holds its share (staged). Committing…');
  const committed = await everyKeeper(d, shares, epoch, commitments, 'commit');
  if (committed.done < d.config.shamir.threshold) {
    say(`only ${committed.done} of ${shares.length} Keepers committed their share, fewer than the threshold; Nexus cannot use this run.`);
    throw committed.failures[0]!;
  }
  if (committed.failures.length > 0) {
    say(`${committed.failures.length} Keeper(s) lost the share before the commit; Nexus re-seeds them once it has rebuilt the key.`);
  }
}

/** Consecutive "could not open the probe" answers of a ready Nexus that mean another key. */
const VERIFY_REFUSALS_FOR_MISMATCH = 3;

function mismatch(): BootstrapError {
  return new BootstrapError('bootstrap_verify_mismatch', 'SPIKE Nexus holds a different root key than the one just created');
}

function isInternalError(json: unknown): boolean {
  return json !== null && typeof json === 'object' && (json as Record<string, unknown>)['err'] === 'api_internal_error';
}

async function verify(d: BootstrapDeps, root: RootKey): Promise<void> {
  const text = Buffer.from(randomBytes(32).toString('hex'));
  const expected = createHash('sha256').update(text).digest('hex');
  const key = derivePurposeKey(root, 'bootstrap-verify/v1');
  const nonce = randomBytes(12);
  let ciphertext: Uint8Array;
  try {
    ciphertext = gcmSeal(key, nonce, text, VERIFY_AAD);
  } finally {
    wipe(key, text);
  }
  const body = { nonce: nonce.toString('base64'), ciphertext: Buffer.from(ciphertext).toString('base64') };
  const deadline = Date.now() + d.config.verificationTimeoutMs;
  let attempt = 0;
  let refusals = 0;
  for (;;) {
    try {
      const r = await postJson(d.nexus, d.config.nexusUrl + PATHS.verify, body, 10_000);
      if (r.status === 200) {
        const hash = r.json && typeof r.json === 'object' ? (r.json as Record<string, unknown>)['hash'] : undefined;
        if (hash === expected) return;
        throw mismatch();
      }
      // A ready Nexus whose key cannot open the probe answers SPIKE's 500 api_internal_error
      // (not the 503 of a Nexus still rebuilding): it holds another key (CFG-04). Several in a
      // row, so that one unexpected failure is not taken for it; before, Bootstrap retried
      // until the verification timeout (30 min by default) and then blamed a slow Nexus.
      refusals = r.status === 500 && isInternalError(r.json) ? refusals + 1 : 0;
      if (refusals >= VERIFY_REFUSALS_FOR_MISMATCH) throw mismatch();
      d.logger.info({ status: r.status }, 'nexus not ready for verification yet');
    } catch (err) {
      if (err instanceof BootstrapError) throw err;
      d.logger.info({ reason: (err as { code?: string }).code ?? 'error' }, 'nexus verification attempt failed');
    }
    if (Date.now() > deadline) throw new BootstrapError('bootstrap_verify_timeout', 'SPIKE Nexus did not confirm the new root key in time');
    await sleep(backoffDelay(attempt++, { initialMs: 100, maxMs: 5000 }));
  }
}

export async function runBootstrap(d: BootstrapDeps): Promise<BootstrapOutcome> {
  const say = d.say ?? (() => undefined);
  const c = d.config;
  const deadline = Date.now() + Math.max(30_000, c.verificationTimeoutMs);
  if (!c.force && (await nexusInitialized(d, deadline))) {
    say('SPIKE is already initialised: the root key was not changed.');
    return 'already_initialized';
  }
  const root = RootKey.generate();
  const { shares, commitments } = splitSecret(root, c.shamir.threshold, c.shamir.shares);
  try {
    say(`Delivering ${shares.length} shares to Keepers (threshold ${c.shamir.threshold})…`);
    await seed(d, shares, commitments);
    say('Shares committed. Verifying that Nexus rebuilt the key…');
    await verify(d, root);
    say('Bootstrap verification passed.');
    return 'initialized';
  } finally {
    for (const s of shares) wipeShare(s);
    root.destroy();
  }
}

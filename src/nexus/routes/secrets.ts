/**
 * Nexus secret routes (D1, D2, D10, D13; gaps A5, B2, B3, B19):
 *
 *   POST /v1/store/secrets                     put (additive: `cas`, `maxVersions` ≤ SPIKE_NEXUS_MAX_SECRET_VERSIONS
 *                                              (clamped), `customMetadata`)
 *   POST /v1/store/secrets?action=get          get the current version or `version`
 *   POST /v1/store/secrets?action=delete       soft delete (`versions`; empty/0 = current)
 *   POST /v1/store/secrets?action=undelete     undelete (empty/0 = the highest deleted version)
 *   POST /v1/store/secrets?action=destroy      additive: wipe versions for good
 *   POST /v1/store/secrets?action=list         the paths the caller may see (secret-list.ts)
 *   POST /v1/store/secrets/metadata?action=get metadata with real version numbers (B3)
 *
 * Guards (authorisation before any existence check, D10) come from `ctx.guards`; versioning
 * semantics live in the store (`src/store/model.ts`), each write one transaction (D13).
 * Responses are SPIKE's shapes, Go-encoded: maps as `Map` (keys sorted like Go), times as
 * {@link GoTime}; error bodies are SPIKE's zero-valued shapes
 * (`src/protocol/error-shapes.ts`). Store errors map as
 * documented in `store-errors.ts` (409 check-and-set, 500 integrity, 503 busy/locked).
 * Not served in `lite` mode (those paths fall through to SPIKE's 400). Nothing here logs a
 * path or a value.
 */
import { notFound, ACTIONS, ERROR_SHAPES, PATHS, SecretGetRequest, SecretMetadataRequest, SecretPutRequest, SecretVersionsRequest, type SecretGetResponse, type SecretMetaDataContent, type SecretMetadataResponse, type SecretVersionInfo } from '../../protocol/index.js';
import { GoTime, type HandlerContext, type Route, defineRoute } from '../../http/index.js';
import { stringMapFromPairs, type PutSecretOptions, type SecretMetadata, type SecretVersionInfo as StoredVersion } from '../../store/index.js';
import type { NexusContext } from '../context.js';
import { secretListRoute } from './secret-list.js';
import { viaStore } from './store-errors.js';

/** Go map form (sorted by the encoder) of a stored null-prototype string map. */
function toGoMap(rec: Record<string, string>): Map<string, string> {
  const m = new Map<string, string>();
  for (const k of Object.keys(rec)) m.set(k, rec[k] as string);
  return m;
}

/**
 * The metadata response, keyed by each version's real number (gaps B3).
 * `versions` is omitted when empty (Go `omitempty`); `customMetadata` is additive.
 */
function metadataResponse(meta: SecretMetadata, versions: readonly StoredVersion[]): SecretMetadataResponse {
  const vs = new Map<string, SecretVersionInfo>();
  for (const v of versions) {
    vs.set(String(v.version), {
      createdTime: GoTime.fromDate(v.createdTime),
      version: v.version,
      deletedTime: v.deletedTime === null ? null : GoTime.fromDate(v.deletedTime),
    });
  }
  const metadata: SecretMetaDataContent = {
    currentVersion: meta.currentVersion,
    oldestVersion: meta.oldestVersion,
    createdTime: GoTime.fromDate(meta.createdTime),
    updatedTime: GoTime.fromDate(meta.updatedTime),
    maxVersions: meta.maxVersions,
  };
  if (meta.customMetadata !== undefined && Object.keys(meta.customMetadata).length > 0) {
    (metadata as { customMetadata?: ReadonlyMap<string, string> }).customMetadata = toGoMap(meta.customMetadata);
  }
  return vs.size === 0 ? { metadata } : { versions: vs, metadata };
}

/** True when `version` (0 = current) names a live version (SPIKE's 404 rules of a secret get). */
function isReadableVersion(meta: SecretMetadata, versions: readonly StoredVersion[], version: number): boolean {
  const v = version === 0 ? meta.currentVersion : version;
  if (v === 0) return false;
  const e = versions.find((x) => x.version === v);
  return e !== undefined && e.deletedTime === null;
}

export function secretRoutes(ctx: NexusContext): Route[] {
  if (ctx.store.kind === 'lite') return [];
  const { store, guards } = ctx;

  const put = defineRoute({
    path: PATHS.secrets,
    name: 'secret.put',
    body: SecretPutRequest,
    guard: guards.secretPut,
    errorShape: ERROR_SHAPES.plain,
    handle: async ({ body, log }: HandlerContext<SecretPutRequest>) => {
      // The operator's SPIKE_NEXUS_MAX_SECRET_VERSIONS is a ceiling: a larger per-secret
      // request is clamped (not refused), and the stored value reports what is kept.
      const opts: PutSecretOptions = { maxVersionsCeiling: ctx.cfg.maxSecretVersions };
      if (body.cas !== undefined) opts.cas = body.cas;
      if (body.maxVersions !== undefined) opts.maxVersions = body.maxVersions;
      if (body.maxVersions !== undefined && body.maxVersions > ctx.cfg.maxSecretVersions) {
        log.info({ requested: body.maxVersions, ceiling: ctx.cfg.maxSecretVersions }, 'maxVersions clamped to the operator ceiling');
      }
      if (body.customMetadata !== undefined) opts.customMetadata = stringMapFromPairs(body.customMetadata);
      const values = stringMapFromPairs(body.values);
      // `version` (additive): the version this put wrote — what a later `cas` compares with.
      const { version } = await viaStore(log, () => store.putSecret(body.path, values, opts));
      return { version };
    },
  });

  const get = defineRoute({
    path: PATHS.secrets,
    action: ACTIONS.get,
    name: 'secret.get',
    body: SecretGetRequest,
    guard: guards.secretGet,
    errorShape: ERROR_SHAPES.secretGet,
    handle: async ({ body, log }: HandlerContext<SecretGetRequest>): Promise<SecretGetResponse> => {
      const r = await viaStore(log, () => store.getSecret(body.path, body.version));
      if (r === null) throw notFound();
      return { data: toGoMap(r.values) };
    },
  });

  const versionsRoute = (
    action: string,
    name: string,
    guard: typeof guards.secretDelete,
    op: (path: string, versions: number[]) => Promise<boolean>,
  ): Route =>
    defineRoute({
      path: PATHS.secrets,
      action,
      name,
      body: SecretVersionsRequest,
      guard,
      errorShape: ERROR_SHAPES.plain,
      handle: async ({ body, log }: HandlerContext<SecretVersionsRequest>) => {
        const ok = await viaStore(log, () => op(body.path, body.versions));
        if (!ok) throw notFound();
        return {};
      },
    });

  const del = versionsRoute(ACTIONS.delete, 'secret.delete', guards.secretDelete, (p, v) => store.deleteSecret(p, v));
  const undel = versionsRoute(ACTIONS.undelete, 'secret.undelete', guards.secretUndelete, (p, v) => store.undeleteSecret(p, v));
  const destroy = versionsRoute(ACTIONS.destroy, 'secret.destroy', guards.secretDestroy, (p, v) => store.destroySecret(p, v));

  const list = secretListRoute(ctx);

  const metadata = defineRoute({
    path: PATHS.secretsMetadata,
    action: ACTIONS.get,
    name: 'secret.metadata',
    body: SecretMetadataRequest,
    guard: guards.secretMetadata,
    errorShape: ERROR_SHAPES.secretMetadata,
    handle: async ({ body, log }: HandlerContext<SecretMetadataRequest>): Promise<SecretMetadataResponse> => {
      const r = await viaStore(log, () => store.getSecretMetadata(body.path));
      if (r === null || !isReadableVersion(r.metadata, r.versions, body.version)) throw notFound();
      return metadataResponse(r.metadata, r.versions);
    },
  });

  return [put, get, del, undel, destroy, list, metadata];
}

// warm.* of the configuration as a warm request (the same checks as POST /api/warm's body).
import type { WharfConfig } from '../config/schema.js';
import { Router, cacheNamespace } from '../registry/router.js';
import { parseImageRef } from './image-ref.js';
import { parseWarmRequest, type WarmRequest } from './warm-request.js';

/** The request warm.images stands for; undefined when it lists none. Throws INVALID_REQUEST naming a bad image. */
export function warmRequestFromConfig(config: Pick<WharfConfig, 'warm'>): WarmRequest | undefined {
  const { images, platforms, referrers, concurrency } = config.warm;
  if (images.length === 0) return undefined;
  try {
    return parseWarmRequest({ images, ...(platforms.length > 0 ? { platforms } : {}), referrers, concurrency });
  } catch (err) {
    throw new Error(`warm: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * What is wrong with warm.images (verify-config and serve list it): a reference that does not parse, or
 * whose registry no upstream stands for.
 */
export function warmImageProblems(config: Pick<WharfConfig, 'warm' | 'upstreams' | 'local'>): string[] {
  const router = new Router(config.upstreams, config.local.namespaces);
  const out: string[] = [];
  config.warm.images.forEach((text, i) => {
    try {
      const ref = parseImageRef(text);
      const target = router.route(`${ref.host}/${ref.path}`);
      if (target.kind !== 'upstream' || !target.repo.startsWith(`${cacheNamespace(ref.host)}/`)) {
        out.push(`${i}: ${text}: no upstream is configured for registry ${ref.host} (upstreams[].registry)`);
      }
    } catch (err) {
      out.push(`${i}: ${(err as Error).message}`);
    }
  });
  return out;
}

// What a warm job is asked to do, from the body of POST /api/warm or from warm.* in the configuration;
// checked once here, every problem a 400 INVALID_REQUEST that names it.
import { RegistryError } from '../registry/errors.js';
import { parseImageRef, type ImageRef } from './image-ref.js';
import { parsePlatform, type Platform } from './platform.js';

export interface WarmRequest {
  /** The images as written (reported under these names) with their parsed references. */
  images: Array<{ text: string; ref: ImageRef }>;
  /** Platforms of an index to warm; undefined: every child. */
  platforms?: Platform[];
  /** Also warm the referrers (signatures, SBOMs, attestations) of every manifest warmed. */
  referrers: boolean;
  /** Blob and manifest fetches of the job running at once. */
  concurrency: number;
}

export const MAX_IMAGES = 1000;
export const DEFAULT_CONCURRENCY = 4;
export const MAX_CONCURRENCY = 32;
const KEYS = new Set(['images', 'platforms', 'allPlatforms', 'referrers', 'concurrency']);

const invalid = (message: string): RegistryError => new RegistryError('INVALID_REQUEST', message);

/** The request in a body (already JSON-parsed); throws INVALID_REQUEST listing what is wrong. */
export function parseWarmRequest(body: unknown): WarmRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('the body must be a JSON object: {"images": ["docker.io/library/alpine:3.20"], "platforms": ["linux/amd64"], "referrers": false, "concurrency": 4}');
  }
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !KEYS.has(k));
  if (unknown.length > 0) throw invalid(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map((k) => `"${k.slice(0, 40)}"`).join(', ')}: images, platforms, allPlatforms, referrers, concurrency`);
  if (!Array.isArray(b.images) || b.images.length === 0 || b.images.length > MAX_IMAGES || !b.images.every((i) => typeof i === 'string')) {
    throw invalid(`images must be a list of 1 to ${MAX_IMAGES} image references (strings)`);
  }
  const problems: string[] = [];
  const images: WarmRequest['images'] = [];
  for (const text of b.images) {
    try {
      images.push({ text, ref: parseImageRef(text) });
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length > 0) throw invalid(problems.slice(0, 10).join('; ') + (problems.length > 10 ? `; and ${problems.length - 10} more` : ''));
  if (b.allPlatforms !== undefined && typeof b.allPlatforms !== 'boolean') throw invalid('allPlatforms must be true or false');
  if (b.referrers !== undefined && typeof b.referrers !== 'boolean') throw invalid('referrers must be true or false');
  let platforms: Platform[] | undefined;
  if (b.platforms !== undefined) {
    if (!Array.isArray(b.platforms) || b.platforms.length === 0 || b.platforms.length > 64 || !b.platforms.every((p) => typeof p === 'string')) {
      throw invalid('platforms must be a list of 1 to 64 strings os/arch[/variant]');
    }
    if (b.allPlatforms === true) throw invalid('give platforms or allPlatforms, not both');
    platforms = (b.platforms).map(parsePlatform);
  }
  let concurrency = DEFAULT_CONCURRENCY;
  if (b.concurrency !== undefined) {
    if (typeof b.concurrency !== 'number' || !Number.isInteger(b.concurrency) || b.concurrency < 1 || b.concurrency > MAX_CONCURRENCY) {
      throw invalid(`concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`);
    }
    concurrency = b.concurrency;
  }
  return { images, ...(platforms ? { platforms } : {}), referrers: b.referrers === true, concurrency };
}

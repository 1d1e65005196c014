// Manifest parsing and validation: what a manifest must contain for Wharf to store it, and the
// references it holds (the GC graph). The bytes are never rewritten: custom fields, `data` and
// annotations stay as the client sent them.
import { RegistryError } from './errors.js';
import { tryParseDigest, truncate } from '../oci/digest.js';
import {
  DOCKER_SCHEMA1,
  DOCKER_SCHEMA1_SIGNED,
  IMAGE_MANIFEST_TYPES,
  INDEX_TYPES,
  MANIFEST_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
  isNonDistributable,
} from '../oci/media-types.js';
import type { ManifestReference } from '../oci/references.js';

/** The largest manifest Wharf accepts (distribution-spec: registries SHOULD accept at least 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Descriptors per manifest accepted when no limit is configured (manifests.maxDescriptors). */
export const DEFAULT_MAX_DESCRIPTORS = 10_000;

export interface ParseOptions {
  /** Most descriptors (config, layers or child manifests, subject) one manifest may hold. */
  maxDescriptors?: number;
}

/** A manifest holding more descriptors than manifests.maxDescriptors allows. */
export class DescriptorLimitError extends RegistryError {
  constructor(
    readonly descriptors: number,
    readonly limit: number,
  ) {
    super(
      'MANIFEST_INVALID',
      `manifest holds ${descriptors} descriptors, more than the ${limit} this registry accepts (manifests.maxDescriptors)`,
      { detail: { descriptors, limit, setting: 'manifests.maxDescriptors' } },
    );
  }
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ParsedManifest {
  mediaType: string;
  subject: string | null;
  artifactType: string | null;
  annotations: Record<string, string> | null;
  /** Blobs (config, layers) and child manifests this one needs present in the repository. */
  references: ManifestReference[];
}

const invalid = (message: string, detail?: unknown): RegistryError =>
  new RegistryError('MANIFEST_INVALID', message, { detail: detail ?? null });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function descriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where} must be a descriptor object`);
  const { mediaType, digest, size, artifactType, annotations } = value;
  if (typeof mediaType !== 'string' || mediaType.length === 0) throw invalid(`${where}.mediaType must be a non-empty string`);
  if (typeof digest !== 'string' || !tryParseDigest(digest)) {
    throw invalid(`${where}.digest "${truncate(String(digest))}" is not a valid sha256 or sha512 digest`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}.size must be a non-negative integer`);
  if (artifactType !== undefined && typeof artifactType !== 'string') throw invalid(`${where}.artifactType must be a string`);
  if (annotations !== undefined) stringMap(annotations, `${where}.annotations`);
  return value as unknown as Descriptor;
}

function stringMap(value: unknown, where: string): Record<string, string> {
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw invalid(`${where} must be an object of strings`);
  }
  return value as Record<string, string>;
}

/**
 * Parses and validates a manifest body. `contentType` is the request's media type (may be undefined);
 * when both it and the body's `mediaType` field are present they must agree. Linear in the size of
 * the body: a 4 MiB manifest of ~37,000 descriptors takes tens of milliseconds (bench/manifest-parse.ts),
 * and one with more descriptors than `maxDescriptors` is refused before any of them is checked.
 */
export function parseManifest(body: Buffer, contentType: string | undefined, opts: ParseOptions = {}): ParsedManifest {
  const maxDescriptors = opts.maxDescriptors ?? DEFAULT_MAX_DESCRIPTORS;
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw invalid(`manifest is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw invalid('manifest must be a JSON object');

  const declared = doc.mediaType;
  if (declared !== undefined && typeof declared !== 'string') throw invalid('mediaType must be a string');
  if (contentType === DOCKER_SCHEMA1 || contentType === DOCKER_SCHEMA1_SIGNED || doc.schemaVersion === 1) {
    throw invalid('Docker schema 1 manifests are not supported: push an OCI or Docker schema 2 manifest');
  }
  let mediaType = contentType;
  if (mediaType === undefined || mediaType === 'application/json' || mediaType === 'application/octet-stream') {
    mediaType = declared ?? (Array.isArray(doc.manifests) ? OCI_INDEX : OCI_MANIFEST);
  }
  if (declared !== undefined && declared !== mediaType) {
    throw invalid(`Content-Type ${mediaType} does not match the manifest's mediaType ${declared}`, {
      contentType: mediaType,
      mediaType: declared,
    });
  }
  if (!MANIFEST_TYPES.has(mediaType)) {
    throw invalid(`unsupported manifest media type "${truncate(mediaType)}"`, { supported: [...MANIFEST_TYPES] });
  }
  if (doc.schemaVersion !== 2) throw invalid('schemaVersion must be 2');

  const listed = IMAGE_MANIFEST_TYPES.has(mediaType) ? doc.layers : INDEX_TYPES.has(mediaType) ? doc.manifests : undefined;
  const descriptors =
    (Array.isArray(listed) ? listed.length : 0) + (doc.config === undefined ? 0 : 1) + (doc.subject === undefined ? 0 : 1);
  if (descriptors > maxDescriptors) throw new DescriptorLimitError(descriptors, maxDescriptors);

  // References in first-seen order, each digest once (a Set: a lookup per descriptor, not a scan).
  const references: ManifestReference[] = [];
  const seen = new Set<string>();
  const reference = (digest: string, kind: ManifestReference['kind']) => {
    if (seen.has(digest)) return;
    seen.add(digest);
    references.push({ digest, kind });
  };
  let artifactType: string | null = null;
  if (doc.artifactType !== undefined) {
    if (typeof doc.artifactType !== 'string') throw invalid('artifactType must be a string');
    artifactType = doc.artifactType;
  }

  if (IMAGE_MANIFEST_TYPES.has(mediaType)) {
    const config = descriptor(doc.config, 'config');
    if (!Array.isArray(doc.layers)) throw invalid('layers must be an array');
    const layers = doc.layers.map((l, i) => descriptor(l, `layers[${i}]`));
    reference(config.digest, 'blob');
    for (const layer of layers) if (!isNonDistributable(layer.mediaType)) reference(layer.digest, 'blob');
    // image-spec: artifactType absent → the config media type is the artifact type.
    artifactType ??= config.mediaType;
  } else if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid('manifests must be an array');
    for (const [i, m] of doc.manifests.entries()) {
      reference(descriptor(m, `manifests[${i}]`).digest, 'manifest');
    }
  }

  let subject: string | null = null;
  if (doc.subject !== undefined) subject = descriptor(doc.subject, 'subject').digest;
  const annotations = doc.annotations === undefined ? null : stringMap(doc.annotations, 'annotations');
  return { mediaType, subject, artifactType, annotations, references };
}

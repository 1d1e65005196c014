// Manifest parsing and validation: what a manifest must contain for Wharf to store it, and the
// references it holds (the GC graph). The bytes are never rewritten: custom fields, `data` and
// annotations stay as the client sent them.
import { RegistryError } from './errors.js';
import { tryParseDigest, truncate } from './digest.js';
import {
  DOCKER_SCHEMA1,
  DOCKER_SCHEMA1_SIGNED,
  IMAGE_MANIFEST_TYPES,
  INDEX_TYPES,
  MANIFEST_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
  isNonDistributable,
} from './media-types.js';
import type { ManifestReference } from '../metadata/metadata-store.js';

/** The largest manifest Wharf accepts (distribution-spec: registries SHOULD accept at least 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

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
 * when both it and the body's `mediaType` field are present they must agree.
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
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

  const references: ManifestReference[] = [];
  let artifactType: string | null = null;
  if (doc.artifactType !== undefined) {
    if (typeof doc.artifactType !== 'string') throw invalid('artifactType must be a string');
    artifactType = doc.artifactType;
  }

  if (IMAGE_MANIFEST_TYPES.has(mediaType)) {
    const config = descriptor(doc.config, 'config');
    if (!Array.isArray(doc.layers)) throw invalid('layers must be an array');
    const layers = doc.layers.map((l, i) => descriptor(l, `layers[${i}]`));
    references.push({ digest: config.digest, kind: 'blob' });
    for (const layer of layers) {
      if (!isNonDistributable(layer.mediaType) && !references.some((r) => r.digest === layer.digest)) {
        references.push({ digest: layer.digest, kind: 'blob' });
      }
    }
    // image-spec: artifactType absent → the config media type is the artifact type.
    artifactType ??= config.mediaType;
  } else if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid('manifests must be an array');
    for (const [i, m] of doc.manifests.entries()) {
      const child = descriptor(m, `manifests[${i}]`);
      if (!references.some((r) => r.digest === child.digest)) references.push({ digest: child.digest, kind: 'manifest' });
    }
  }

  let subject: string | null = null;
  if (doc.subject !== undefined) subject = descriptor(doc.subject, 'subject').digest;
  const annotations = doc.annotations === undefined ? null : stringMap(doc.annotations, 'annotations');
  return { mediaType, subject, artifactType, annotations, references };
}

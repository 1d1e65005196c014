// On-disk layout of the filesystem blob store (layout version 1):
//
//   <data>/
//     blobs/<algorithm>/<first 2 hex>/<hex>   committed, content-addressed bytes (blobs and manifests)
//     uploads/<session uuid>                  bytes of an upload session, append-only
//     uploads/.ingest-<random>                a streaming write in progress (renamed into blobs/ once verified)
//     uploads/.fill-<random>                  a pull-through fill in progress, read by clients as it grows
//     trash/<algorithm>-<hex>.<random>        a blob the collector set aside: restored or purged next
//     metadata.db                             the embedded metadata store (SQLite, WAL)
//
// Only digests that passed parseDigest and session ids that are UUIDs are ever joined into a path.
import { join } from 'node:path';
import { checkDigest } from '../oci/digest.js';

export const LAYOUT_VERSION = 1;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const isSessionId = (id: string): boolean => UUID.test(id);

export function blobPath(root: string, digest: string): string {
  const { algorithm, hex } = checkDigest(digest);
  return join(root, 'blobs', algorithm, hex.slice(0, 2), hex);
}

/** The metadata database of a data directory (SQLite driver). */
export function metadataPath(root: string): string {
  return join(root, 'metadata.db');
}

export function uploadsDir(root: string): string {
  return join(root, 'uploads');
}

export function uploadPath(root: string, id: string): string {
  if (!isSessionId(id)) throw new Error(`not an upload session id: ${id}`);
  return join(root, 'uploads', id);
}

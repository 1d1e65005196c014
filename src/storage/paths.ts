// On-disk layout of the filesystem blob store (layout version 1):
//
//   <data>/
//     blobs/<algorithm>/<first 2 hex>/<hex>   committed, content-addressed bytes (blobs and manifests)
//     uploads/<session uuid>                  a session writer: bytes of an upload session, append-only
//     uploads/.writer-<random>                an anonymous writer (a monolithic push, a manifest, a pull-through
//                                             fill read by clients as it grows); .ingest-/.fill- from older versions
//     uploads/<writer>.copy                   a committed writer's copy on its way into blobs/ (no hard links)
//     trash/<algorithm>-<hex>.<random>        a blob the collector set aside: restored or purged next
//     metadata.db                             the embedded metadata store (SQLite, WAL)
//     metadata.generation                     bumped when the collector removes manifests: servers on the
//                                             store drop what they hold in memory (metadata/change-signal.ts)
//
// A committed writer's bytes get a second name in blobs/ (a hard link, or a copy renamed into place):
// the writer's own name stays until it is cancelled, so the blob can be put back under its digest.
// Only digests that passed parseDigest and writer ids of the shapes above are ever joined into a path.
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

/** The change signal of a data directory's metadata (metadata/change-signal.ts). */
export function changeSignalPath(root: string): string {
  return join(root, 'metadata.generation');
}

export function uploadsDir(root: string): string {
  return join(root, 'uploads');
}

const ANONYMOUS = /^\.(?:writer|ingest|fill)-[0-9a-f]+$/;

/** Whether `id` is a writer's id: an upload session's, or an anonymous writer's. */
export const isWriterId = (id: string): boolean => isSessionId(id) || ANONYMOUS.test(id);
const WRITER_FILE = /^(.+?)(?:\.copy)?$/;

/** Whether `name` in uploads/ is a writer's file (or the copy of one); what the stale-writer sweep looks at. */
export function isWriterFile(name: string): boolean {
  const id = WRITER_FILE.exec(name)?.[1];
  return id !== undefined && (isSessionId(id) || ANONYMOUS.test(id));
}

/** The file of a writer (an upload session or an anonymous writer), or of the copy of one. */
export function writerPath(root: string, id: string): string {
  if (!isWriterFile(id)) throw new Error(`not a blob writer id: ${id}`);
  return join(root, 'uploads', id);
}

export function uploadPath(root: string, id: string): string {
  if (!isSessionId(id)) throw new Error(`not an upload session id: ${id}`);
  return join(root, 'uploads', id);
}

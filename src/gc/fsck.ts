// Checks that metadata and blob files agree: every blob row has its file, every committed file has
// a row, local manifests reference recorded blobs, and tags point at manifests. Read-only; pages
// through the rows and one blob directory at a time.
import { stat } from 'node:fs/promises';
import type { MetadataStore } from '../metadata/metadata-store.js';
import { blobPath } from '../storage/paths.js';
import { BlobFiles } from './blob-files.js';

export interface FsckResult {
  ok: boolean;
  /** Digests with a blob row but no file. */
  missingFiles: string[];
  /** Files with no blob row. */
  orphanFiles: string[];
  /** Manifest references to blobs without a row (and manifests whose own bytes have no row). */
  danglingReferences: string[];
  /** Tags pointing at absent manifests, as repo:tag. */
  badTags: string[];
}

const PAGE = 1000;
/** At most this many entries per list (the counts matter, not a million lines). */
const MAX_LISTED = 1000;

export async function fsck(metadata: MetadataStore, dataDir: string): Promise<FsckResult> {
  const gc = metadata.gc;
  const missingFiles: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await gc.blobDigests(after, PAGE);
    for (const digest of page) {
      if (missingFiles.length < MAX_LISTED && !(await exists(blobPath(dataDir, digest)))) missingFiles.push(digest);
    }
    if (page.length < PAGE) break;
    after = page[page.length - 1];
  }

  const orphanFiles: string[] = [];
  for await (const batch of new BlobFiles(dataDir).walk()) {
    const recorded = await gc.existingBlobs(batch.map((f) => f.digest));
    for (const f of batch) if (!recorded.has(f.digest) && orphanFiles.length < MAX_LISTED) orphanFiles.push(f.digest);
  }

  const danglingReferences = await gc.danglingReferences(MAX_LISTED);
  const badTags = await gc.badTags(MAX_LISTED);
  const ok = missingFiles.length + orphanFiles.length + danglingReferences.length + badTags.length === 0;
  return { ok, missingFiles, orphanFiles, danglingReferences, badTags };
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

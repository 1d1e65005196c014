// Checks that metadata and stored blobs agree: every blob row has its bytes, every committed blob has
// a row, local manifests reference recorded blobs, and tags point at manifests. Read-only; pages
// through the rows and the store's listing.
import type { GcState } from '../metadata/gc-state.js';
import type { BlobStore } from '../storage/blob-store.js';

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

export async function fsck(gc: GcState, store: Pick<BlobStore, 'stat' | 'list'>): Promise<FsckResult> {
  const missingFiles: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await gc.blobDigests(after, PAGE);
    for (const digest of page) {
      if (missingFiles.length < MAX_LISTED && !(await store.stat(digest))) missingFiles.push(digest);
    }
    if (page.length < PAGE) break;
    after = page[page.length - 1];
  }

  const orphanFiles: string[] = [];
  for (after = undefined; ; ) {
    const page = await store.list(after, PAGE);
    const recorded = await gc.existingBlobs(page.map((b) => b.digest));
    for (const b of page) if (!recorded.has(b.digest) && orphanFiles.length < MAX_LISTED) orphanFiles.push(b.digest);
    if (page.length < PAGE) break;
    after = page[page.length - 1]?.digest;
  }

  const danglingReferences = await gc.danglingReferences(MAX_LISTED);
  const badTags = await gc.badTags(MAX_LISTED);
  const ok = missingFiles.length + orphanFiles.length + danglingReferences.length + badTags.length === 0;
  return { ok, missingFiles, orphanFiles, danglingReferences, badTags };
}

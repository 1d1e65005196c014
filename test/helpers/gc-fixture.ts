// A store of many small blobs and manifests written straight into a data directory (files and
// metadata rows, as the registry would leave them), for the collector's scale benchmark and its
// crash tests. Every other manifest is tagged; the untagged ones and what only they reference are
// garbage once `deleteUntagged` is on.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { blobPath } from '../../src/storage/paths.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Fixture {
  blobs: number;
  manifests: number;
  tagged: string[];
}

/** Writes `blobs` blobs and `manifests` manifests (each with distinct layers) under `dir`. */
export async function populateStore(dir: string, opts: { blobs: number; manifests: number; repos?: number }): Promise<Fixture> {
  await FsBlobStore.open(dir); // lays out the directories
  const database = SqliteDatabase.open(join(dir, 'metadata.db'));
  const metadata = new SqliteRegistryMetadata(database);
  const repos = opts.repos ?? 100;
  const perManifest = Math.max(2, Math.floor(opts.blobs / opts.manifests));
  const write = (bytes: Buffer): string => {
    const digest = sha(bytes);
    const file = blobPath(dir, digest);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, bytes);
    return digest;
  };
  const tagged: string[] = [];
  try {
    let made = 0;
    for (let m = 0; m < opts.manifests; m++) {
      const repo = `fixture/repo-${m % repos}`;
      const refs: string[] = [];
      for (let k = 0; k < perManifest && made < opts.blobs; k++, made++) {
        const bytes = Buffer.from(`blob ${made} `.padEnd(64 + (made % 512), '.'));
        const digest = write(bytes);
        await metadata.putBlob(digest, bytes.length, { local: true });
        await metadata.linkBlob(repo, digest);
        refs.push(digest);
      }
      const body = Buffer.from(JSON.stringify({ schemaVersion: 2, m, layers: refs }));
      const digest = write(body);
      await metadata.putBlob(digest, body.length, { local: true });
      const tags = m % 2 === 0 ? [`t${m}`] : [];
      await metadata.putManifest({
        repo,
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: body.length,
        subject: null,
        artifactType: null,
        annotations: null,
        references: refs.map((d) => ({ digest: d, kind: 'blob' as const })),
        tags,
      });
      if (tags.length > 0) tagged.push(`${repo}:${tags[0]}`);
    }
    // Blobs beyond what the manifests took: linked, referenced by nothing.
    for (; made < opts.blobs; made++) {
      const bytes = Buffer.from(`loose blob ${made}`);
      const digest = write(bytes);
      await metadata.putBlob(digest, bytes.length, { local: true });
      await metadata.linkBlob(`fixture/repo-${made % repos}`, digest);
    }
  } finally {
    await database.close();
  }
  return { blobs: opts.blobs, manifests: opts.manifests, tagged };
}

// Lists committed blob files in digest order, a page at a time, reading one two-hex directory after
// another (memory stays bounded by the page and one directory's names).
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredBlob } from './blob-store.js';
import { isCode, listDir } from './fs-dirs.js';
import { tryParseDigest } from '../oci/digest.js';

/** Files stat'ed at once. */
const STAT_PARALLEL = 16;

export async function listBlobs(root: string, after: string | undefined, limit: number): Promise<StoredBlob[]> {
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`page size must be a whole number >= 0, got ${limit}`);
  const out: StoredBlob[] = [];
  const blobsDir = join(root, 'blobs');
  // 'alg:' orders the directories as their digests order (':' sorts after digits).
  const algorithms = (await listDir(blobsDir)).sort((a, b) => (`${a}:` < `${b}:` ? -1 : 1));
  // Upper bounds: every digest in a directory sorts below `alg;` ( ';' follows ':') and `alg:xxg`.
  const passed = (bound: string): boolean => after !== undefined && bound <= after;
  for (const algorithm of algorithms) {
    if (passed(`${algorithm};`)) continue;
    for (const prefix of await listDir(join(blobsDir, algorithm))) {
      if (!/^[0-9a-f]{2}$/.test(prefix) || passed(`${algorithm}:${prefix}g`)) continue;
      const dir = join(blobsDir, algorithm, prefix);
      // Only content-addressed names: anything else (a stray temporary) is not a blob.
      const digests = (await listDir(dir))
        .filter((name) => name.startsWith(prefix))
        .map((name) => `${algorithm}:${name}`)
        .filter((d) => (after === undefined || d > after) && tryParseDigest(d) !== undefined);
      for (let i = 0; i < digests.length && out.length < limit; ) {
        const batch = digests.slice(i, i + Math.min(STAT_PARALLEL, limit - out.length));
        i += batch.length;
        const stats = await Promise.all(batch.map((d) => statBlob(join(dir, d.slice(algorithm.length + 1)), d)));
        for (const s of stats) if (s) out.push(s);
      }
      if (out.length >= limit) return out;
    }
  }
  return out;
}

async function statBlob(file: string, digest: string): Promise<StoredBlob | undefined> {
  try {
    const s = await stat(file);
    return { digest, size: s.size, modifiedAt: s.mtimeMs };
  } catch (err) {
    // Removed meanwhile (a collector): not listed.
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
}
